// Package testutil holds helpers shared by pombo's tests.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// RequireTool returns the path of an external program a test drives. When
// it is missing the test is skipped, except under CI (CI=true), where a
// missing tool fails the test: CI must never pass by skipping.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if _, err := os.Stat(dir + "/" + name); err == nil {
			return dir + "/" + name
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (./test.sh installs it)", name)
	}
	t.Skipf("%s is not installed; run ./test.sh to install it", name)
	return ""
}
