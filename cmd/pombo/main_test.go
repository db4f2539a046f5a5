package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

type result struct {
	code           int
	stdout, stderr string
}

func pombo(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"pombo"}, args...), strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// tempConfig writes a config whose data_dir is in a temp dir.
func tempConfig(t *testing.T) (cfgPath, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	dataDir = filepath.Join(dir, "data")
	cfgPath = filepath.Join(dir, "pombo.toml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("hostname = \"mail.example.test\"\ndata_dir = %q\n", dataDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dataDir
}

func mustOK(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d: stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	return r
}

// mustFail checks the failure is one clear line on stderr.
func mustFail(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("succeeded, want failure containing %q; stdout %q", want, r.stdout)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "pombo: ") {
		t.Fatalf("error is not one line: %q", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q does not contain %q", r.stderr, want)
	}
}

func TestUserLifecycle(t *testing.T) {
	cfg, data := tempConfig(t)
	mustOK(t, pombo(t, "", "--config", cfg, "domain", "add", "example.test"))
	r := mustOK(t, pombo(t, "s3cret-Pass\n", "--config", cfg, "user", "add", "alice@example.test", "--password-stdin"))
	if !strings.Contains(r.stdout, "alice@example.test") {
		t.Fatalf("user add said %q", r.stdout)
	}
	r = mustOK(t, pombo(t, "", "--config", cfg, "user", "list"))
	if !strings.Contains(r.stdout, "alice@example.test") {
		t.Fatalf("user list: %q", r.stdout)
	}
	r = mustOK(t, pombo(t, "", "--config", cfg, "user", "list", "--json"))
	var users []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &users); err != nil || len(users) != 1 || users[0]["address"] != "alice@example.test" {
		t.Fatalf("user list --json: %q (%v)", r.stdout, err)
	}
	r = mustOK(t, pombo(t, "", "--config", cfg, "mailbox", "list", "alice@example.test"))
	for _, mb := range []string{"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"} {
		if !regexp.MustCompile(`(?m)^` + mb + `\s+0\s+0\s+0 B`).MatchString(r.stdout) {
			t.Errorf("mailbox list lacks %s:\n%s", mb, r.stdout)
		}
	}
	r = mustOK(t, pombo(t, "", "--config", cfg, "mailbox", "list", "--json", "alice@example.test"))
	var mbs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &mbs); err != nil || len(mbs) != 6 {
		t.Fatalf("mailbox list --json: %q", r.stdout)
	}

	// The database holds an argon2id hash and never the password.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, "pombo.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var hash string
	if err := db.QueryRow("SELECT password_hash FROM users WHERE address = 'alice@example.test'").Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$`).MatchString(hash) {
		t.Fatalf("stored hash %q is not argon2id PHC", hash)
	}
	for _, f := range []string{"pombo.db", "pombo.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(data, f))
		if bytes.Contains(b, []byte("s3cret-Pass")) {
			t.Fatalf("%s contains the password in clear", f)
		}
	}

	// Password change, alias, delete.
	mustOK(t, pombo(t, "n3w-Pass\n", "--config", cfg, "user", "passwd", "alice@example.test", "--password-stdin"))
	var hash2 string
	db.QueryRow("SELECT password_hash FROM users WHERE address = 'alice@example.test'").Scan(&hash2)
	if hash2 == hash {
		t.Fatal("passwd did not change the hash")
	}
	mustOK(t, pombo(t, "", "--config", cfg, "alias", "add", "postmaster@example.test", "alice@example.test"))
	r = mustOK(t, pombo(t, "", "--config", cfg, "alias", "list"))
	if !strings.Contains(r.stdout, "postmaster@example.test") {
		t.Fatalf("alias list: %q", r.stdout)
	}
	mustFail(t, pombo(t, "", "--config", cfg, "user", "del", "alice@example.test"), "--yes")
	mustOK(t, pombo(t, "", "--config", cfg, "user", "del", "alice@example.test", "--yes"))
	r = mustOK(t, pombo(t, "", "--config", cfg, "user", "list", "--json"))
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("after delete: %q", r.stdout)
	}
	mustOK(t, pombo(t, "", "--config", cfg, "domain", "del", "example.test"))
}

func TestBadInput(t *testing.T) {
	cfg, data := tempConfig(t)
	mustOK(t, pombo(t, "", "--config", cfg, "domain", "add", "example.test"))
	mustOK(t, pombo(t, "pw\n", "--config", cfg, "user", "add", "alice@example.test", "--password-stdin"))

	mustFail(t, pombo(t, "pw\n", "--config", cfg, "user", "add", "bob@unknown.test", "--password-stdin"), "pombo domain add unknown.test")
	mustFail(t, pombo(t, "pw\n", "--config", cfg, "user", "add", "alice@example.test", "--password-stdin"), "already exists")
	mustFail(t, pombo(t, "pw\n", "--config", cfg, "user", "add", "not an address", "--password-stdin"), "malformed address")
	mustFail(t, pombo(t, "\n", "--config", cfg, "user", "add", "carol@example.test", "--password-stdin"), "empty")
	mustFail(t, pombo(t, "", "--config", cfg, "user", "add", "carol@example.test"), "--password-stdin")
	mustFail(t, pombo(t, "", "--config", cfg, "user", "add"), "usage")
	mustFail(t, pombo(t, "", "--config", cfg, "mailbox", "list", "nobody@example.test"), "not found")

	// Nothing half-written: still exactly one user.
	r := mustOK(t, pombo(t, "", "--config", cfg, "user", "list", "--json"))
	var users []map[string]any
	json.Unmarshal([]byte(r.stdout), &users)
	if len(users) != 1 {
		t.Fatalf("users after failures: %s", r.stdout)
	}

	// Unknown config key.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte(fmt.Sprintf("data_dir = %q\n[smtp]\nlisen = [\"127.0.0.1:25\"]\n", data)), 0o600)
	mustFail(t, pombo(t, "", "--config", bad, "user", "list"), "smtp.lisen")
	mustFail(t, pombo(t, "", "--config", bad, "config", "check"), "bad.toml:3:")

	// A database written by a newer schema.
	db, err := sql.Open("sqlite3", filepath.Join(data, "pombo.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Exec("PRAGMA user_version = 999")
	db.Close()
	mustFail(t, pombo(t, "", "--config", cfg, "user", "list"), "newer")
}

func TestDataDirNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores permission bits; a path under a regular file cannot be
		// created by anyone.
		dir := t.TempDir()
		file := filepath.Join(dir, "file")
		os.WriteFile(file, nil, 0o600)
		cfg := filepath.Join(dir, "c.toml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\n", filepath.Join(file, "data"))), 0o600)
		mustFail(t, pombo(t, "", "--config", cfg, "domain", "add", "example.test"), "data directory")
		return
	}
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o500)
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\n", filepath.Join(ro, "data"))), 0o600)
	mustFail(t, pombo(t, "", "--config", cfg, "domain", "add", "example.test"), "data directory")
}

func TestConfigCheckExampleCreatesNothing(t *testing.T) {
	wd, _ := os.Getwd()
	example := filepath.Join(wd, "..", "..", "config.toml.example")
	tmp := t.TempDir()
	os.Chdir(tmp)
	defer os.Chdir(wd)
	r := mustOK(t, pombo(t, "", "--config", example, "config", "check"))
	if !strings.Contains(r.stdout, "configuration OK") || !strings.Contains(r.stdout, "max_message_size") {
		t.Fatalf("config check printed %q", r.stdout)
	}
	ents, _ := os.ReadDir(tmp)
	if len(ents) != 0 {
		t.Fatalf("config check created %v", ents)
	}
	if _, err := os.Stat("/var/lib/pombo/pombo.db"); err == nil {
		t.Log("note: /var/lib/pombo exists on this machine")
	}
}

func TestPermuteFlags(t *testing.T) {
	cases := []struct{ in, want string }{
		{"pombo user add a@b --password-stdin", "pombo user add --password-stdin a@b"},
		{"pombo --config x.toml user del a@b --yes", "pombo --config x.toml user del --yes a@b"},
		{"pombo mailbox list a@b --json", "pombo mailbox list --json a@b"},
		{"pombo serve --dev", "pombo serve --dev"},
		{"pombo alias add x@y -- --json", "pombo alias add x@y -- --json"},
	}
	for _, c := range cases {
		if got := strings.Join(permuteFlags(strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("permuteFlags(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// On one CPU, serve still runs two Ps (the storage writer blocks in cgo
// during fsync); a GOMAXPROCS set by the operator is left alone.
func TestTuneRuntimeKeepsTwoPs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	none := func(string) string { return "" }

	runtime.GOMAXPROCS(1)
	tuneRuntime(none)
	if n := runtime.GOMAXPROCS(0); n != 2 {
		t.Errorf("GOMAXPROCS %d after tuning one P, want 2", n)
	}
	runtime.GOMAXPROCS(3)
	tuneRuntime(none)
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Errorf("GOMAXPROCS %d after tuning three Ps, want 3 (never lowered)", n)
	}
	if gc := debug.SetGCPercent(100); gc != 200 {
		t.Errorf("GC percent %d, want 200", gc)
	}

	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(100)
	set := func(k string) string { return map[string]string{"GOMAXPROCS": "1", "GOGC": "50"}[k] }
	tuneRuntime(set)
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("GOMAXPROCS %d although the environment sets 1", n)
	}
	if gc := debug.SetGCPercent(100); gc != 100 {
		t.Errorf("GC percent changed to %d although the environment sets GOGC", gc)
	}
}
