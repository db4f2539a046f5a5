package imap_test

import (
	"crypto/tls"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"pombo/config"
)

func noLoopbackPlaintext(c *config.Config) { c.Auth.AllowPlaintextFromLoopback = false }

func TestLoginRefusedWithoutTLS(t *testing.T) {
	e := start(t, noLoopbackPlaintext)
	r := dialRaw(t, e.addr, false)
	caps := r.cmd("C", "CAPABILITY")
	if !strings.Contains(caps[0], "LOGINDISABLED") || !strings.Contains(caps[0], "STARTTLS") || strings.Contains(caps[0], "AUTH=PLAIN") {
		t.Errorf("plaintext capabilities: %q", caps[0])
	}
	out := r.cmd("L", fmt.Sprintf("LOGIN %s %q", testUser, testPass))
	if !strings.HasPrefix(out[len(out)-1], "L NO") {
		t.Errorf("LOGIN without TLS: %q", out)
	}
	out = r.cmd("A", "AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnk=")
	if !strings.HasPrefix(out[len(out)-1], "A NO") {
		t.Errorf("AUTHENTICATE without TLS: %q", out)
	}

	// After STARTTLS, LOGIN works.
	c, err := imapclient.DialStartTLS(e.addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		t.Fatalf("login after STARTTLS: %v", err)
	}
	// Implicit TLS: no STARTTLS offered, login works.
	rt := dialRaw(t, e.tlsAddr, true)
	caps = rt.cmd("C", "CAPABILITY")
	if strings.Contains(caps[0], "STARTTLS") || strings.Contains(caps[0], "LOGINDISABLED") || !strings.Contains(caps[0], "AUTH=PLAIN") {
		t.Errorf("TLS capabilities: %q", caps[0])
	}
	out = rt.cmd("A", "AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnk=")
	if !strings.HasPrefix(out[len(out)-1], "A OK") {
		t.Errorf("AUTHENTICATE PLAIN over TLS: %q", out)
	}
}

func TestLoginFailures(t *testing.T) {
	e := start(t, nil)
	r := dialRaw(t, e.addr, false)
	out := r.cmd("L", fmt.Sprintf("LOGIN %s wrongpassword", testUser))
	if !strings.Contains(out[len(out)-1], "NO [AUTHENTICATIONFAILED]") {
		t.Errorf("wrong password: %q", out)
	}
	// The throttle (5 per account by default) answers UNAVAILABLE.
	var last string
	for i := 0; i < 6; i++ {
		out = r.cmd("L", fmt.Sprintf("LOGIN %s wrongpassword", testUser))
		last = out[len(out)-1]
	}
	if !strings.Contains(last, "UNAVAILABLE") {
		t.Errorf("throttled login: %q", last)
	}
}

func TestHostileInput(t *testing.T) {
	e := start(t, nil)

	t.Run("huge literal before login", func(t *testing.T) {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		r := dialRaw(t, e.addr, false)
		// imapserver refuses the literal without a continuation request
		// but then waits for the rest of the line (a go-imap beta.8 quirk):
		// the client's next line gets the error.
		r.send("a1 LOGIN {400000000}\r\n")
		r.send("x\r\n")
		l := r.line()
		if strings.HasPrefix(l, "+") {
			t.Fatalf("huge literal accepted: %q", l)
		}
		if !strings.HasPrefix(l, "a1 NO") && !strings.HasPrefix(l, "a1 BAD") {
			t.Errorf("huge literal: %q", l)
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if after.HeapAlloc > before.HeapAlloc+64<<20 {
			t.Errorf("heap grew by %d", after.HeapAlloc-before.HeapAlloc)
		}
	})
	t.Run("huge non-sync literal before login", func(t *testing.T) {
		r := dialRaw(t, e.addr, false)
		r.send("a1 LOGIN {400000000+}\r\n" + strings.Repeat("x", 10000) + "\r\n")
		l := r.line()
		if !strings.HasPrefix(l, "a1 NO") && !strings.HasPrefix(l, "a1 BAD") {
			t.Errorf("huge literal: %q", l)
		}
	})
	t.Run("append before login", func(t *testing.T) {
		r := dialRaw(t, e.addr, false)
		r.send("a1 APPEND INBOX {1000}\r\n")
		if l := r.line(); !strings.HasPrefix(l, "a1 NO") {
			t.Errorf("APPEND before login: %q", l)
		}
	})
	t.Run("append over the limit", func(t *testing.T) {
		r := dialRaw(t, e.addr, false)
		r.login()
		r.send(fmt.Sprintf("a1 APPEND INBOX {%d}\r\n", 51<<20))
		if l := r.line(); !strings.HasPrefix(l, "a1 NO [TOOBIG]") {
			t.Errorf("APPEND over limit: %q", l)
		}
		out := r.cmd("a2", "NOOP")
		if !strings.HasPrefix(out[len(out)-1], "a2 OK") {
			t.Errorf("after refused APPEND: %q", out)
		}
	})
	t.Run("buffered literal after login", func(t *testing.T) {
		r := dialRaw(t, e.addr, false)
		r.login()
		r.send("a1 CREATE {100000}\r\n")
		r.send("\r\n")
		if l := r.line(); !strings.HasPrefix(l, "a1 NO") && !strings.HasPrefix(l, "a1 BAD") {
			t.Errorf("big mailbox-name literal: %q", l)
		}
	})
	t.Run("unterminated literal then close", func(t *testing.T) {
		r := dialRaw(t, e.addr, false)
		r.login()
		r.send("a1 APPEND INBOX {5000}\r\n")
		r.line() // continuation
		r.send("only a little")
		r.c.Close()
		// The server survives: a new session works.
		r2 := dialRaw(t, e.addr, false)
		r2.login()
	})
	t.Run("deep parentheses", func(t *testing.T) {
		r := dialRaw(t, e.addr, false)
		r.login()
		r.cmd("s", "SELECT INBOX")
		depth := 20000
		out := r.cmd("a1", "SEARCH "+strings.Repeat("(", depth)+"ALL"+strings.Repeat(")", depth))
		if l := out[len(out)-1]; !strings.HasPrefix(l, "a1 BAD") && !strings.HasPrefix(l, "a1 NO") && !strings.HasPrefix(l, "a1 OK") {
			t.Errorf("deep parens: %q", l)
		}
		out = r.cmd("a2", "SEARCH "+strings.Repeat("NOT ", 5000)+"ALL")
		if l := out[len(out)-1]; !strings.HasPrefix(l, "a2 BAD") {
			t.Errorf("deep NOT: %q", l)
		}
		out = r.cmd("a3", "NOOP")
		if !strings.HasPrefix(out[len(out)-1], "a3 OK") {
			t.Errorf("after deep nesting: %q", out)
		}
	})
	t.Run("invalid modified UTF-7", func(t *testing.T) {
		r := dialRaw(t, e.addr, false)
		r.login()
		for i, name := range []string{"&Jjo", "&-&", "&AGE-", "a&ZeVnLIqe"} {
			out := r.cmd(fmt.Sprintf("c%d", i), "CREATE "+name)
			if l := out[len(out)-1]; !strings.Contains(l, "BAD") && !strings.Contains(l, "NO") {
				t.Errorf("CREATE %s: %q", name, l)
			}
		}
	})
	t.Run("10000 pipelined commands", func(t *testing.T) {
		r := dialRaw(t, e.addr, false)
		r.login()
		var b strings.Builder
		for i := 0; i < 10000; i++ {
			fmt.Fprintf(&b, "p%d NOOP\r\n", i)
		}
		go r.c.Write([]byte(b.String()))
		r.until("p9999 ")
	})
	t.Run("unknown command before login ends the connection", func(t *testing.T) {
		r := dialRaw(t, e.addr, false)
		r.send("GET / HTTP/1.1\r\n")
		l := r.line()
		if !strings.Contains(l, "BYE") && !strings.Contains(l, "BAD") {
			t.Errorf("cross-protocol: %q", l)
		}
	})
}
