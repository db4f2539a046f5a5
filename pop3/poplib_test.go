package pop3_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"pombo/storage"
)

// TestPoplib runs a whole session with Python's poplib (STLS, USER/PASS,
// STAT, LIST, UIDL, RETR of each message compared with storage, TOP, DELE,
// RSET, QUIT) and checks the QUIT removed the one message marked.
func TestPoplib(t *testing.T) {
	python := requireTool(t, "python3")
	e := start(t, nil)
	for _, m := range []string{msgDots, msgLF, bigMessage(), msgNoBody, "Subject: last\r\n\r\n..\r\n"} {
		e.deliver(e.aliceID, m)
	}
	dir := t.TempDir()
	var ids []int64
	err := e.srv.Store.Messages(context.Background(), e.inbox, nil, func(m *storage.Message) error {
		ids = append(ids, m.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d", i)), e.stored(id), 0o600)
	}
	script, _ := filepath.Abs("testdata/poplib_session.py")
	host, port, _ := cutHostPort(e.plainAddr())
	out, err := exec.Command(python, script, host, port, alice, alicePW, dir).CombinedOutput()
	if err != nil || string(out) != "OK\n" {
		t.Fatalf("poplib: %v\n%s", err, out)
	}
	if n := len(e.uids()); n != len(ids)-1 {
		t.Errorf("after the poplib session: %d messages, want %d", n, len(ids)-1)
	}
}
