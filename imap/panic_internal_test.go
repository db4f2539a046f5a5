package imap

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"pombo/auth"
	"pombo/storage"
)

// TestPanicEndsOnlyThatSession: a panic inside a command is recovered by
// imapserver, ends that connection, and leaves the others working.
func TestPanicEndsOnlyThatSession(t *testing.T) {
	st, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	hash, _ := auth.HashPassword("secret password")
	if _, err := st.AddUser(ctx, "u@example.test", hash, 0); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := New(Options{Store: st, Auth: &auth.Authenticator{Users: st, Log: log}, Log: log, AllowPlaintextFromLoopback: true})
	srv.testHook = func(name string) {
		if name == "Boom" {
			panic("injected")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer func() { l.Close(); srv.Close() }()

	dial := func() *imapclient.Client {
		c, err := imapclient.DialInsecure(l.Addr().String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login("u@example.test", "secret password").Wait(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	good, bad := dial(), dial()
	defer good.Close()
	if _, err := bad.Select("Boom", nil).Wait(); err == nil {
		t.Fatal("select that panics succeeded")
	}
	<-bad.Closed()
	if _, err := good.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("other session after panic: %v", err)
	}
	// The panicking session released its per-user slot.
	srv.mu.Lock()
	n := srv.perUser[1]
	srv.mu.Unlock()
	if n != 1 {
		t.Errorf("user has %d sessions counted, want 1", n)
	}
}
