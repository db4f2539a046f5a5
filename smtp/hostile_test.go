package smtp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"pombo/config"
)

// openData runs MAIL, RCPT and DATA for alice and waits for 354.
func (r *raw) openData() {
	r.t.Helper()
	r.send("MAIL FROM:<bob@remote.test>\r\n")
	r.expect("250 ")
	r.send("RCPT TO:<alice@example.test>\r\n")
	r.expect("250 ")
	r.send("DATA\r\n")
	r.expect("354 ")
}

// TestSmugglingNeverYieldsTwoMessages sends DATA payloads that end early
// for a server that takes a bare LF or CR as a line end, followed by a
// second transaction. Whatever pombo does with them, it must never store
// two messages (and it never stores the first one with a bare line end).
func TestSmugglingNeverYieldsTwoMessages(t *testing.T) {
	e := start(t, nil)
	smuggled := "MAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" +
		"Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
	for _, tc := range []struct {
		name, end string
		refused   bool // pombo sees the bare CR/LF and refuses
	}{
		{"LF.LF", "\n.\n", true},
		{"CRLF.LF", "\r\n.\n", true},
		{"LF.CRLF", "\n.\r\n", true},
		{"CR.CR", "\r.\r", true},
		{"CRLF.CR", "\r\n.\r", false}, // go-smtp drops ".\r" before pombo sees it
		{"CR.CRLF", "\r.\r\n", true},
		{"LF.CR", "\n.\r", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.countAll(e.alice)
			r := dialRaw(t, e.addr)
			r.ehlo()
			r.openData()
			r.send("Subject: first\r\n\r\nbody" + tc.end + smuggled)
			got := r.reply()
			if tc.refused {
				if !strings.HasPrefix(got, "554 5.6.0 ") {
					t.Fatalf("want 554 5.6.0, got %q", got)
				}
				r.expectClosed()
			} else if strings.HasPrefix(got, "250") {
				// go-smtp read on to the real end of data: one message.
				r.send("QUIT\r\n")
				r.expect("221 ")
			}
			n := e.countAll(e.alice) - before
			if n > 1 {
				t.Fatalf("%d messages stored from one DATA", n)
			}
			if tc.refused && n != 0 {
				t.Fatalf("refused message stored")
			}
			for _, m := range e.mailbox(e.alice, "INBOX") {
				if !strings.Contains(string(m.data), "Subject: first") {
					t.Fatalf("the smuggled message was stored on its own:\n%s", m.data)
				}
			}
		})
	}
}

func TestBareCRRefused(t *testing.T) {
	e := start(t, nil)
	r := dialRaw(t, e.addr)
	r.ehlo()
	r.openData()
	r.send("Subject: x\r\n\r\none\rtwo\r\n.\r\n")
	r.expect("554 5.6.0 ")
	r.expectClosed()
	if n := e.blobs(); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestBareLFInBDATRefused(t *testing.T) {
	e := start(t, nil)
	r := dialRaw(t, e.addr)
	r.ehlo()
	r.send("MAIL FROM:<bob@remote.test>\r\n")
	r.expect("250 ")
	r.send("RCPT TO:<alice@example.test>\r\n")
	r.expect("250 ")
	chunk := "Subject: x\r\n\r\nbody\n.\nMAIL FROM:<evil@remote.test>\r\n"
	r.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	r.expect("554 5.6.0 ")
	r.expectClosed()
	if n := e.blobs(); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestBDATDelivers(t *testing.T) {
	e := start(t, nil)
	r := dialRaw(t, e.addr)
	r.ehlo()
	r.send("MAIL FROM:<bob@remote.test>\r\n")
	r.expect("250 ")
	r.send("RCPT TO:<alice@example.test>\r\n")
	r.expect("250 ")
	msg := crlf(sampleMessage)
	a, b := msg[:100], msg[100:]
	// Pipelined: both chunks in one write.
	r.send(fmt.Sprintf("BDAT %d\r\n%sBDAT %d LAST\r\n%s", len(a), a, len(b), b))
	r.expect("250 2.0.0 Continue")
	r.expect("250 2.0.0 Ok: stored as ")
	msgs := e.mailbox(e.alice, "INBOX")
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if _, body := splitPrefix(t, msgs[0].data, "From: Bob"); string(body) != msg {
		t.Fatalf("body differs:\n got %q\nwant %q", body, msg)
	}
}

func TestLineLength(t *testing.T) {
	e := start(t, nil)
	ok := strings.Repeat("a", 998) // 1000 octets with CRLF: the limit
	long := strings.Repeat("b", 999)
	t.Run("DATA at the limit", func(t *testing.T) {
		r := dialRaw(t, e.addr)
		r.ehlo()
		r.openData()
		r.send("Subject: x\r\n\r\n" + ok + "\r\n" + ok + "\r\n.\r\n")
		r.expect("250 ")
	})
	for _, tc := range []struct {
		name string
		bdat bool
	}{{"DATA over the limit", false}, {"BDAT over the limit", true}} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.blobs()
			r := dialRaw(t, e.addr)
			r.ehlo()
			body := "Subject: x\r\n\r\n" + ok + "\r\n" + long + "\r\nafter\r\n"
			if tc.bdat {
				r.send("MAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
				r.expect("250 ")
				r.expect("250 ")
				r.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(body), body))
			} else {
				r.openData()
				r.send(body + ".\r\n")
			}
			got := r.reply()
			// When the chunk comes in the same read as the BDAT command,
			// go-smtp's own line limit trips first.
			if !strings.HasPrefix(got, "554 5.6.0 Message refused: line longer than 1000 octets") &&
				!(tc.bdat && strings.HasPrefix(got, "500 5.4.0 Too long line")) {
				t.Fatalf("got %q", got)
			}
			r.expectClosed()
			if n := e.blobs(); n != before {
				t.Fatalf("message stored")
			}
		})
	}
	t.Run("command line over the limit", func(t *testing.T) {
		r := dialRaw(t, e.addr)
		r.ehlo()
		r.send("MAIL FROM:<" + strings.Repeat("c", 1000) + "@remote.test>\r\n")
		r.expect("500 5.4.0 ")
		r.expectClosed()
	})
}

func TestMessageTooBigThenSessionGoesOn(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.MaxMessageSize = 1 << 20 })
	r := dialRaw(t, e.addr)
	r.ehlo()
	// Declared too big: refused at MAIL.
	r.send("MAIL FROM:<bob@remote.test> SIZE=2000000\r\n")
	r.expect("552 5.3.4 ")
	r.openData()
	line := strings.Repeat("x", 98) + "\r\n"
	r.send("Subject: big\r\n\r\n" + strings.Repeat(line, 15000) + ".\r\n")
	r.expect("552 5.3.4 Message too big")
	if n := e.blobs(); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	// The rest of the big message was drained: the session is in sync.
	r.openData()
	r.send("Subject: small\r\n\r\nsmall\r\n.\r\n")
	r.expect("250 ")
	if n := len(e.mailbox(e.alice, "INBOX")); n != 1 {
		t.Fatalf("%d messages in INBOX, want 1", n)
	}
}

func TestUnauthenticatedRelayAttempt(t *testing.T) {
	e := start(t, nil)
	r := dialRaw(t, e.addr)
	r.ehlo()
	// A local sender and an AUTH attempt do not make port 25 relay.
	r.send("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1wYXNzd29yZA==\r\n")
	if got := r.reply(); strings.HasPrefix(got, "235") {
		t.Fatalf("AUTH accepted on port 25: %q", got)
	}
	r.send("MAIL FROM:<alice@example.test>\r\n")
	r.expect("250 ")
	for _, to := range []string{
		"someone@elsewhere.test",
		"alice@example.test@elsewhere.test",
		"alice%example.test@elsewhere.test",
		"@example.test:someone@elsewhere.test",
		"someone@[127.0.0.1]",
	} {
		r.send("RCPT TO:<" + to + ">\r\n")
		if got := r.reply(); !strings.HasPrefix(got, "554 5.7.1") && !strings.HasPrefix(got, "501 ") {
			t.Errorf("RCPT TO:<%s>: %q", to, got)
		}
	}
	r.send("DATA\r\n")
	if got := r.reply(); strings.HasPrefix(got, "354") {
		t.Fatalf("DATA accepted without a recipient: %q", got)
	}
	if n := e.blobs(); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestHalfClosedMidDataStoresNothing(t *testing.T) {
	e := start(t, nil)
	for _, bdat := range []bool{false, true} {
		t.Run(fmt.Sprintf("bdat=%v", bdat), func(t *testing.T) {
			r := dialRaw(t, e.addr)
			r.ehlo()
			if bdat {
				r.send("MAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
				r.expect("250 ")
				r.expect("250 ")
				r.send("BDAT 1000 LAST\r\nSubject: half\r\n\r\npart of it\r\n")
			} else {
				r.openData()
				r.send("Subject: half\r\n\r\npart of it\r\n")
			}
			if err := r.c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			r.reply() // whatever the server says, if anything
			r.expectClosed()
			if n := e.blobs(); n != 0 {
				t.Fatalf("%d messages stored", n)
			}
		})
	}
}

func TestTooManyErrorsDisconnects(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.MaxErrors = 3 })
	r := dialRaw(t, e.addr)
	r.ehlo()
	r.send("MAIL FROM:<bob@remote.test>\r\n")
	r.expect("250 ")
	r.send("RCPT TO:<nobody1@example.test>\r\n")
	r.expect("550 5.1.1 ")
	r.send("RCPT TO:<nobody2@example.test>\r\n")
	r.expect("550 5.1.1 ")
	r.send("RCPT TO:<nobody3@example.test>\r\n")
	r.expect("421 4.7.0 Too many errors")
	r.expectClosed()
}

func TestTooManyErrorsPipelined(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.MaxErrors = 2 })
	r := dialRaw(t, e.addr)
	r.ehlo()
	// Pipelined commands after the limit are not looked up any more.
	var b strings.Builder
	b.WriteString("MAIL FROM:<bob@remote.test>\r\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "RCPT TO:<nobody%d@example.test>\r\n", i)
	}
	r.send(b.String())
	r.expect("250 ")
	r.expect("550 5.1.1 ")
	r.expect("421 4.7.0 ")
	r.expectClosed()
}

func TestTooManyRecipients(t *testing.T) {
	e := start(t, func(c *config.Config) {
		c.Limits.MaxRecipients = 3
		c.Limits.MaxErrors = 2 // 452 for too many recipients is not an error
	})
	bob := addUser(t, e, "bob@example.test")
	r := dialRaw(t, e.addr)
	r.ehlo()
	r.send("MAIL FROM:<carol@remote.test>\r\n")
	r.expect("250 ")
	for _, to := range []string{"alice@example.test", "alice+x@example.test", "bob@example.test"} {
		r.send("RCPT TO:<" + to + ">\r\n")
		r.expect("250 ")
	}
	for i := 0; i < 5; i++ {
		r.send("RCPT TO:<alice+more@example.test>\r\n")
		r.expect("452 4.5.3 ")
	}
	r.send("DATA\r\n")
	r.expect("354 ")
	r.send("Subject: many\r\n\r\nhi\r\n.\r\n")
	r.expect("250 ")
	// alice and alice+x are the same INBOX: one copy.
	if n := len(e.mailbox(e.alice, "INBOX")); n != 1 {
		t.Errorf("alice has %d messages, want 1", n)
	}
	if n := len(e.mailbox(bob, "INBOX")); n != 1 {
		t.Errorf("bob has %d messages, want 1", n)
	}
	if n := e.blobs(); n != 1 {
		t.Errorf("%d blobs, want 1 (stored once)", n)
	}
}

func TestConnectionLimitPerIP(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 2 })
	a := dialRaw(t, e.addr)
	b := dialRaw(t, e.addr)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &raw{t: t, c: c, br: newReader(c)}
	r.expect("421 4.7.0 ")
	r.expectClosed()
	// The two others still work, and a slot frees when one leaves.
	a.ehlo()
	b.send("QUIT\r\n")
	b.expect("221 ")
	b.expectClosed()
	var d *raw
	for i := 0; i < 50; i++ { // the server notices b's close asynchronously
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		d = &raw{t: t, c: c, br: newReader(c)}
		if strings.HasPrefix(d.reply(), "220 ") {
			break
		}
		c.Close()
		d = nil
		time.Sleep(20 * time.Millisecond)
	}
	if d == nil {
		t.Fatal("no slot after a connection closed")
	}
	d.ehlo()
}

// TestStartTLSDiscardsPipelinedPlaintext: commands sent in the same write
// as STARTTLS must not be run inside the TLS session (the STARTTLS command
// injection of CVE-2011-0411).
func TestStartTLSDiscardsPipelinedPlaintext(t *testing.T) {
	e := start(t, nil)
	for _, injected := range []string{"RSET\r\n", "MAIL FROM:<evil@remote.test>\r\n", "VRFY x\r\nNOOP\r\n"} {
		t.Run(strings.Fields(injected)[0], func(t *testing.T) {
			r := dialRaw(t, e.addr)
			r.ehlo()
			r.send("STARTTLS\r\n" + injected)
			r.expect("220 ")
			tc := tlsClient(r.c)
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			r.c, r.br = tc, newReader(tc)
			r.send("EHLO client.example\r\n")
			// The first reply inside TLS must be the one to EHLO.
			r.expect("250-Hello client.example")
			r.send("RCPT TO:<alice@example.test>\r\n")
			// No MAIL FROM survived into the TLS session.
			if got := r.reply(); strings.HasPrefix(got, "250") {
				t.Fatalf("injected MAIL FROM was kept: %q", got)
			}
			r.send("NOOP\r\n")
			r.expect("250 2.0.0 I have successfully done nothing")
		})
	}
}

func TestCommandTimeout(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.CommandTimeout = config.Duration(300 * time.Millisecond) })
	r := dialRaw(t, e.addr)
	r.ehlo()
	r.expect("421 4.4.2 ")
	r.expectClosed()
}

func TestDataTimeout(t *testing.T) {
	e := start(t, func(c *config.Config) {
		c.Limits.DataTimeout = config.Duration(400 * time.Millisecond)
		c.Limits.CommandTimeout = config.Duration(10 * time.Second)
	})
	for _, bdat := range []bool{false, true} {
		t.Run(fmt.Sprintf("bdat=%v", bdat), func(t *testing.T) {
			r := dialRaw(t, e.addr)
			r.ehlo()
			if bdat {
				r.send("MAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
				r.expect("250 ")
				r.expect("250 ")
			} else {
				r.openData()
			}
			// Each piece comes well within the command timeout; the
			// whole message does not come within the data timeout.
			r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			closed := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(r.br)
				closed <- string(b)
			}()
			var got string
		loop:
			for i := 0; ; i++ {
				if i == 200 {
					t.Fatal("still open after 200 pieces")
				}
				var err error
				if bdat {
					_, err = r.c.Write([]byte("BDAT 6\r\nline\r\n"))
				} else {
					_, err = r.c.Write([]byte("line\r\n"))
				}
				select {
				case got = <-closed:
					break loop
				case <-time.After(50 * time.Millisecond):
				}
				if err != nil {
					got = <-closed
					break
				}
			}
			if !strings.Contains(got, "421 4.4.2 ") {
				t.Errorf("no 421 4.4.2 before the close: %q", got)
			}
			if n := e.blobs(); n != 0 {
				t.Fatalf("%d messages stored", n)
			}
		})
	}
}

// TestCommandsAfterQuitAreIgnored: go-smtp runs commands pipelined after
// QUIT on a closed session; that must neither store anything nor log an
// error.
func TestCommandsAfterQuitAreIgnored(t *testing.T) {
	d := startDirect(t, nil)
	r := dialRaw(t, d.addr)
	r.ehlo()
	r.send("QUIT\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nhi\r\n.\r\n")
	r.expect("221 ")
	r.expectClosed()
	time.Sleep(100 * time.Millisecond) // go-smtp finishes the buffered commands
	if strings.Contains(d.log.String(), "level=ERROR") {
		t.Fatalf("error logged:\n%s", d.log)
	}
	if n, _, _ := d.st.BlobCount(context.Background()); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestEmptyMessageRefused(t *testing.T) {
	e := start(t, nil)
	r := dialRaw(t, e.addr)
	r.ehlo()
	r.openData()
	r.send(".\r\n")
	r.expect("554 5.6.0 ")
	// The session goes on.
	r.openData()
	r.send("Subject: not empty\r\n\r\nx\r\n.\r\n")
	r.expect("250 ")
}
