package pop3_test

import (
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"pombo/config"
)

// TestBadCommands: a reply for each mistake, and the session goes on.
func TestBadCommands(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.MaxErrors = 100 })
	e.deliver(e.aliceID, msgDots)
	c := dial(t, e.plainAddr())
	c.fail("-ERR line too long", "CAPA %s", strings.Repeat("x", 300))
	c.fail("-ERR unknown command", "HELO there")
	c.fail("-ERR unknown command", "X")
	c.fail("-ERR unknown command", "APOP alice 0123456789abcdef0123456789abcdef")
	c.fail("-ERR unknown command", "LAST")
	c.fail("-ERR", "")
	c.fail("-ERR syntax error", "USER a\x00b")
	c.fail("-ERR syntax error", "USER a\tb")
	for _, cmd := range []string{"STAT", "LIST", "RETR 1", "DELE 1", "RSET", "NOOP", "TOP 1 1", "UIDL"} {
		c.fail("-ERR command not valid in this state", "%s", cmd)
	}
	c.login(alice, alicePW)
	for _, cmd := range []string{"USER " + alice, "PASS x", "AUTH PLAIN", "STLS"} {
		c.fail("-ERR command not valid in this state", "%s", cmd)
	}
	for _, cmd := range []string{"RETR", "RETR 0", "RETR 2", "RETR -1", "RETR +1", "RETR 1x", "RETR 99999999999", "RETR 1 2",
		"LIST 0", "LIST 1 2", "DELE", "UIDL x", "STAT 1", "NOOP 1", "RSET 1", "QUIT 1", "LIST  1"} {
		c.fail("-ERR", "%s", cmd)
	}
	c.ok("stat")
	c.ok("QUIT")
	if len(e.uids()) != 1 {
		t.Error("mistakes changed the maildrop")
	}
}

// TestTooManyErrors: the client is disconnected after max_errors mistakes,
// and nothing it marked is removed.
func TestTooManyErrors(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.MaxErrors = 3 })
	e.deliver(e.aliceID, msgDots)
	c := dial(t, e.plainAddr())
	c.login(alice, alicePW)
	c.ok("DELE 1")
	c.fail("-ERR", "BAD1")
	c.fail("-ERR", "BAD2")
	c.fail("-ERR", "RETR 9")
	c.closed()
	if len(e.uids()) != 1 {
		t.Error("a dropped client's DELE took effect")
	}
}

// TestEndlessLine: a line that never ends is not buffered; the client is
// disconnected.
func TestEndlessLine(t *testing.T) {
	e := start(t, nil)
	c := dial(t, e.plainAddr())
	go func() {
		chunk := []byte(strings.Repeat("A", 8192))
		for range 32 {
			if _, err := c.nc.Write(chunk); err != nil {
				return
			}
		}
	}()
	if l := c.line(); l != "-ERR line too long" {
		t.Fatalf("got %q", l)
	}
	// The server closes with our bytes unread: the client may see a reset.
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c.tp.R); len(b) > 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("connection not closed: %q %v", b, err)
	}
}

// TestIdleTimeout: a silent client is disconnected without a word (RFC 1939
// §3) and its DELE is forgotten.
func TestIdleTimeout(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.POP3IdleTimeout = config.Duration(300 * time.Millisecond) })
	e.deliver(e.aliceID, msgDots)
	c := dial(t, e.plainAddr())
	c.login(alice, alicePW)
	c.ok("DELE 1")
	t0 := time.Now()
	c.closed()
	if el := time.Since(t0); el < 200*time.Millisecond {
		t.Errorf("closed after %v", el)
	}
	if len(e.uids()) != 1 {
		t.Error("idle timeout removed a message")
	}
	// The maildrop is free again.
	c = dial(t, e.plainAddr())
	c.login(alice, alicePW)
	c.ok("QUIT")
}

// TestConnectionLimit: past max_connections_per_ip the client hears why, in
// POP3, on both listeners.
func TestConnectionLimit(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 1 })
	first := dial(t, e.plainAddr())
	first.ok("CAPA")
	first.lines()
	for _, tlsPort := range []bool{false, true} {
		var c *client
		if tlsPort {
			nc, err := tls.Dial("tcp", e.tlsAddr(), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			c = &client{t: t, nc: nc}
			c.tp = newTP(nc)
		} else {
			c = rawDial(t, e.plainAddr())
		}
		if l := c.line(); l != "-ERR [SYS/TEMP] too many connections" {
			t.Errorf("tls=%v: over the limit: %q", tlsPort, l)
		}
		c.closed()
	}
	first.ok("QUIT")
}
