package queue_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"pombo/storage"
)

// down is a loopback address no test listens on: connecting is refused.
const down = "127.0.0.99"

func TestDeliverByMX(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	r := startRemote(t, ls[0], &remote{}, nil)
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	// Another domain served by the same host shares the session.
	e.dns.AddMX("other.test", 10, "MX.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()

	msg, _ := testMessage("hello")
	e.enqueue("alice@example.org", []string{"bob@remote.test", "carol@Other.TEST"}, msg)
	e.waitEmpty(10 * time.Second)

	got := r.messages()
	if len(got) != 1 {
		t.Fatalf("remote got %d messages, want 1", len(got))
	}
	m := got[0]
	if m.from != "alice@example.org" || strings.Join(m.rcpts, ",") != "bob@remote.test,carol@other.test" {
		t.Errorf("envelope: from %q rcpts %q", m.from, m.rcpts)
	}
	if !bytes.Equal(m.data, msg) {
		t.Errorf("remote got\n%q\nwant\n%q", m.data, msg)
	}
	if m.helo != "mx.example.org" {
		t.Errorf("EHLO %q", m.helo)
	}
	if m.mail.Body != smtp.Body8BitMIME || m.mail.Size != int64(len(msg)) {
		t.Errorf("MAIL parameters: BODY=%q SIZE=%d", m.mail.Body, m.mail.Size)
	}
	if n := r.sessionCount(); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
	// The queue row held the last reference to the message.
	if n, _, _ := e.st.BlobCount(context.Background()); n != 0 {
		t.Errorf("%d blobs left after delivery", n)
	}
}

func TestMXPreferenceFirstHostDown(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.3", "127.0.0.4")
	second := startRemote(t, ls[0], &remote{}, nil)
	third := startRemote(t, ls[1], &remote{}, nil)
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 30, "mx3.remote.test")
	e.dns.AddMX("remote.test", 10, "mx1.remote.test")
	e.dns.AddMX("remote.test", 20, "mx2.remote.test")
	e.dns.AddIP("mx1.remote.test", down)
	e.dns.AddIP("mx2.remote.test", "127.0.0.3")
	e.dns.AddIP("mx3.remote.test", "127.0.0.4")
	e.start()

	msg, _ := testMessage("preference")
	e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
	e.waitEmpty(10 * time.Second)
	if n := len(second.messages()); n != 1 {
		t.Errorf("second MX got %d messages, want 1", n)
	}
	if n := third.sessionCount(); n != 0 {
		t.Errorf("third MX was contacted %d times, want 0", n)
	}
}

func TestNullMXBounces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.dns.AddMX("nomail.test", 0, ".")
	e.dns.AddIP("nomail.test", down) // must not be used
	e.start()
	msg, id := testMessage("null mx")
	e.enqueue("alice@example.org", []string{"bob@nomail.test"}, msg)
	d := e.waitDSN(1)
	h := d.rcpt(t, "bob@nomail.test")
	if h.Get("Status") != "5.1.10" || h.Get("Action") != "failed" || h.Get("Remote-MTA") != "" {
		t.Errorf("per-recipient fields: %v", h.Map())
	}
	if !strings.Contains(d.text, "null MX") {
		t.Errorf("text part: %q", d.text)
	}
	if d.original.Get("Message-Id") != id {
		t.Errorf("original header Message-Id %q, want %q", d.original.Get("Message-Id"), id)
	}
	e.waitEmpty(5 * time.Second)
}

func TestTempFailureThenDelivered(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	var mu sync.Mutex
	calls := 0
	r := startRemote(t, ls[0], &remote{onRcpt: func(string) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		}
		return nil
	}}, nil)
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	msg, id := testMessage("deferred")
	qid := e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)

	// First attempt: deferred with the remote's reply recorded.
	waitFor(t, 10*time.Second, "the first attempt", func() bool {
		it, err := e.st.QueueItem(context.Background(), qid)
		if err != nil {
			return true // already delivered: checked below
		}
		rc := it.Recipients[0]
		if rc.Attempts == 1 && rc.Status == storage.QueuePending {
			if rc.LastError != "451 4.3.0 try later" || rc.RemoteMTA != "mx.remote.test" || rc.StatusCode != "4.3.0" {
				t.Errorf("after a 451: %+v", rc)
			}
			return true
		}
		return false
	})
	e.waitEmpty(15 * time.Second)
	if n := r.countByMessageID(t)[id+" bob@remote.test"]; n != 1 {
		t.Fatalf("delivered %d times, want 1", n)
	}
	if len(e.inbox()) != 0 {
		t.Fatal("a temporary failure produced a DSN")
	}
}

func TestPermanentFailureDSN(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	startRemote(t, ls[0], &remote{onRcpt: func(to string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
	}}, nil)
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	msg, id := testMessage("hello")
	e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)

	d := e.waitDSN(1)
	if from := d.header.Get("From"); !strings.Contains(from, "MAILER-DAEMON@mx.example.org") {
		t.Errorf("From: %q", from)
	}
	if to := d.header.Get("To"); !strings.Contains(to, "alice@example.org") {
		t.Errorf("To: %q", to)
	}
	if s := d.header.Get("Subject"); s != "Undelivered mail: hello" {
		t.Errorf("Subject: %q", s)
	}
	if d.header.Get("Auto-Submitted") != "auto-replied" || d.header.Get("In-Reply-To") != id {
		t.Errorf("Auto-Submitted %q In-Reply-To %q", d.header.Get("Auto-Submitted"), d.header.Get("In-Reply-To"))
	}
	if d.statusType != "message/delivery-status" || d.origType != "text/rfc822-headers" {
		t.Errorf("part types %s, %s", d.statusType, d.origType)
	}
	if d.perMessage.Get("Reporting-MTA") != "dns; mx.example.org" {
		t.Errorf("Reporting-MTA %q", d.perMessage.Get("Reporting-MTA"))
	}
	if _, err := time.Parse(time.RFC1123Z, d.perMessage.Get("Arrival-Date")); err != nil {
		t.Errorf("Arrival-Date: %v", err)
	}
	if len(d.perRcpt) != 1 {
		t.Fatalf("%d recipient blocks", len(d.perRcpt))
	}
	h := d.rcpt(t, "bob@remote.test")
	want := map[string]string{
		"Action":          "failed",
		"Status":          "5.1.1",
		"Remote-MTA":      "dns; mx.remote.test",
		"Diagnostic-Code": "smtp; 550 5.1.1 no such user here",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if _, err := time.Parse(time.RFC1123Z, h.Get("Last-Attempt-Date")); err != nil {
		t.Errorf("Last-Attempt-Date: %v", err)
	}
	if !strings.Contains(d.text, "bob@remote.test") || !strings.Contains(d.text, "no such user here") {
		t.Errorf("text part: %q", d.text)
	}
	if d.original.Get("Subject") != "hello" || d.original.Get("Message-Id") != id {
		t.Errorf("original header: %v", d.original.Map())
	}
	e.waitEmpty(5 * time.Second)
	// Only the DSN's blob is left: the queued message is freed.
	if n, _, _ := e.st.BlobCount(context.Background()); n != 1 {
		t.Errorf("%d blobs, want 1", n)
	}
}

func TestBounceIsNeverBounced(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	r := startRemote(t, ls[0], &remote{onRcpt: func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no"}
	}}, nil)
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	msg, _ := testMessage("a bounce")
	e.enqueue("", []string{"bob@remote.test"}, msg)
	e.waitEmpty(10 * time.Second)
	if r.sessionCount() != 1 {
		t.Errorf("%d sessions", r.sessionCount())
	}
	if n := len(e.inbox()); n != 0 {
		t.Fatalf("a failed bounce produced %d messages", n)
	}
	if n, _, _ := e.st.BlobCount(context.Background()); n != 0 {
		t.Errorf("%d blobs left", n)
	}
}

func TestMixedRecipientsInOneSession(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	var mu sync.Mutex
	tempCalls := 0
	r := startRemote(t, ls[0], &remote{onRcpt: func(to string) error {
		switch to {
		case "perm@remote.test":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "unknown"}
		case "temp@remote.test":
			mu.Lock()
			defer mu.Unlock()
			tempCalls++
			if tempCalls == 1 {
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
			}
		}
		return nil
	}}, nil)
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	msg, id := testMessage("mixed")
	e.enqueue("alice@example.org", []string{"ok@remote.test", "perm@remote.test", "temp@remote.test"}, msg)

	d := e.waitDSN(1)
	if len(d.perRcpt) != 1 || d.rcpt(t, "perm@remote.test").Get("Status") != "5.1.1" {
		t.Errorf("DSN recipients: %v", d.perRcpt)
	}
	e.waitEmpty(15 * time.Second)
	r.mu.Lock()
	first := r.rcptLog[0]
	r.mu.Unlock()
	if strings.Join(first, ",") != "ok@remote.test,perm@remote.test,temp@remote.test" {
		t.Errorf("first session RCPTs: %v", first)
	}
	got := r.messages()
	if len(got) != 2 || strings.Join(got[0].rcpts, ",") != "ok@remote.test" || strings.Join(got[1].rcpts, ",") != "temp@remote.test" {
		t.Fatalf("deliveries: %+v", got)
	}
	counts := r.countByMessageID(t)
	if counts[id+" ok@remote.test"] != 1 || counts[id+" temp@remote.test"] != 1 || len(counts) != 2 {
		t.Errorf("copies: %v", counts)
	}
	// The DSN is still the only message in the INBOX.
	if n := len(e.inbox()); n != 1 {
		t.Errorf("INBOX has %d messages", n)
	}
}

func TestSTARTTLSOpportunistic(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	// A certificate nobody trusts: opportunistic TLS takes it anyway.
	cert, _ := selfSigned(t, []string{"other-name.test"}, nil)
	r := startRemote(t, ls[0], &remote{}, &tls.Config{Certificates: []tls.Certificate{cert}})
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	msg, _ := testMessage("secret")
	e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
	e.waitEmpty(10 * time.Second)
	got := r.messages()
	if len(got) != 1 || !got[0].tls {
		t.Fatalf("want one message over TLS, got %+v", got)
	}
	if got[0].helo != "mx.example.org" {
		t.Errorf("EHLO after STARTTLS: %q", got[0].helo)
	}
}

func TestSTARTTLSHandshakeFailureFallsBackToPlaintext(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	// STARTTLS offered, but the server has no certificate: every
	// handshake fails.
	r := startRemote(t, ls[0], &remote{}, &tls.Config{})
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	msg, _ := testMessage("plain")
	e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
	e.waitEmpty(10 * time.Second)
	got := r.messages()
	if len(got) != 1 || got[0].tls {
		t.Fatalf("want one message in plaintext, got %+v", got)
	}
	if n := r.sessionCount(); n != 2 {
		t.Errorf("%d sessions, want 2 (TLS, then plaintext)", n)
	}
}

func TestDNSFailures(t *testing.T) {
	t.Parallel()
	t.Run("NXDOMAIN bounces at once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, 1)
		// With retries an hour apart, only an immediate bounce can
		// reach the INBOX within the test.
		e.opts.RetryInitial = time.Hour
		e.opts.RetryMax = time.Hour
		e.start()
		msg, _ := testMessage("nx")
		e.enqueue("alice@example.org", []string{"bob@nx.test"}, msg)
		d := e.waitDSN(1)
		if s := d.rcpt(t, "bob@nx.test").Get("Status"); s != "5.1.2" {
			t.Errorf("Status %q, want 5.1.2", s)
		}
	})
	t.Run("CNAME loop is retried, then bounced", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, 1)
		e.dns.AddCNAME("loop.test", "loop2.test")
		e.dns.AddCNAME("loop2.test", "loop.test")
		e.opts.GiveUpAfter = 2 * time.Second
		e.start()
		msg, _ := testMessage("loop")
		qid := e.enqueue("alice@example.org", []string{"bob@loop.test"}, msg)
		waitFor(t, 10*time.Second, "a deferred attempt", func() bool {
			it, err := e.st.QueueItem(context.Background(), qid)
			if err != nil {
				t.Fatal("bounced without a retry")
			}
			rc := it.Recipients[0]
			if rc.Attempts >= 1 && rc.Status == storage.QueuePending {
				if rc.StatusCode != "4.4.3" {
					t.Errorf("after SERVFAIL: %+v", rc)
				}
				return true
			}
			return false
		})
		d := e.waitDSN(1)
		h := d.rcpt(t, "bob@loop.test")
		if h.Get("Status") != "5.4.7" {
			t.Errorf("Status %q, want 5.4.7", h.Get("Status"))
		}
		if !strings.Contains(d.text, "gave up") || !strings.Contains(d.text, "DNS") {
			t.Errorf("text: %q", d.text)
		}
	})
	t.Run("MX host without address is retried", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, 1)
		e.dns.AddMX("remote.test", 10, "ghost.remote.test")
		e.dns.AddIP("remote.test", down) // not an implicit MX: there is an MX
		e.start()
		msg, _ := testMessage("ghost")
		qid := e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
		waitFor(t, 10*time.Second, "a deferred attempt", func() bool {
			it, err := e.st.QueueItem(context.Background(), qid)
			if err != nil {
				t.Fatal(err)
			}
			rc := it.Recipients[0]
			return rc.Attempts >= 1 && rc.Status == storage.QueuePending && strings.Contains(rc.LastError, "ghost.remote.test")
		})
	})
}

func TestHugeMXSet(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	r := startRemote(t, ls[0], &remote{}, nil)
	e := newEnv(t, port)
	// 1000 MX records: too big for UDP, so the resolver goes to TCP.
	for i := 1; i <= 1000; i++ {
		name := "h" + strconv.Itoa(i) + ".huge.test"
		e.dns.AddMX("huge.test", uint16(i), name)
		e.dns.AddIP(name, down)
		good := "g" + strconv.Itoa(i) + ".big.test"
		e.dns.AddMX("big.test", uint16(i), good)
		e.dns.AddIP(good, "127.0.0.2")
	}
	e.start()
	msg, _ := testMessage("huge")
	qid := e.enqueue("alice@example.org", []string{"bob@huge.test"}, msg)
	waitFor(t, 20*time.Second, "a deferred attempt", func() bool {
		it, err := e.st.QueueItem(context.Background(), qid)
		return err == nil && it.Recipients[0].Attempts >= 1
	})
	// Only the ten best hosts were looked up.
	for i := 1; i <= 1000; i++ {
		n := e.dns.Queries("h"+strconv.Itoa(i)+".huge.test", 1 /* A */)
		if i <= 10 && n == 0 {
			t.Errorf("host %d was not tried", i)
		}
		if i > 10 && n != 0 {
			t.Fatalf("host %d was looked up: more than 10 MX hosts tried", i)
		}
	}
	msg2, _ := testMessage("big")
	e.enqueue("alice@example.org", []string{"bob@big.test"}, msg2)
	waitFor(t, 10*time.Second, "delivery via the best of 1000 MX", func() bool { return len(r.messages()) == 1 })
}

func TestRemoteDropsConnectionMidData(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	r := startRemote(t, ls[0], &remote{dropMidData: 1}, nil)
	e := newEnv(t, port)
	// Long enough for the poll below to see the first attempt's state
	// before the retry claims the recipient, short enough for waitEmpty.
	e.opts.RetryInitial, e.opts.RetryMax = 4*time.Second, 4*time.Second
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	msg, id := testMessage("big")
	msg = append(msg, bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"), 20000)...)
	qid := e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
	waitFor(t, 10*time.Second, "the failed attempt", func() bool {
		it, err := e.st.QueueItem(context.Background(), qid)
		if err != nil {
			t.Fatal("message left the queue after a dropped DATA")
		}
		rc := it.Recipients[0]
		if rc.Attempts == 1 {
			if rc.Status != storage.QueuePending {
				t.Errorf("after a dropped DATA: %+v", rc)
			}
			return true
		}
		return false
	})
	e.waitEmpty(15 * time.Second)
	if n := r.countByMessageID(t)[id+" bob@remote.test"]; n != 1 {
		t.Fatalf("delivered %d times", n)
	}
	if got := r.messages()[0].data; !bytes.Equal(got, msg) {
		t.Fatalf("retried message differs: %d octets, want %d", len(got), len(msg))
	}
}

// scripted serves each connection with fn: a hostile "SMTP server".
func scripted(t *testing.T, l net.Listener, fn func(c net.Conn)) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				fn(c)
			}()
		}
	}()
}

func TestRemoteGarbage(t *testing.T) {
	t.Parallel()
	cases := map[string]func(c net.Conn){
		"HTTP instead of SMTP": func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		},
		"endless line": func(c net.Conn) {
			c.Write(bytes.Repeat([]byte("2"), 1<<20))
		},
		"endless multi-line EHLO reply": func(c net.Conn) {
			c.Write([]byte("220 hi\r\n"))
			buf := make([]byte, 512)
			c.Read(buf)
			for i := 0; i < 100000; i++ {
				if _, err := c.Write([]byte("250-PIPELINING\r\n")); err != nil {
					return
				}
			}
		},
		"mixed reply codes": func(c net.Conn) {
			c.Write([]byte("220-hi\r\n554 no\r\n"))
		},
		"binary": func(c net.Conn) {
			c.Write([]byte{0, 1, 2, 0xff, '\r', '\n'})
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			port, ls := listenSamePort(t, "127.0.0.2")
			scripted(t, ls[0], fn)
			e := newEnv(t, port)
			// Only the first attempt is checked: a retry due within the
			// poll (1 s by default, slow under load) would claim the
			// recipient again and show it "sending".
			e.opts.RetryInitial = time.Hour
			e.opts.RetryMax = time.Hour
			e.dns.AddMX("remote.test", 10, "mx.remote.test")
			e.dns.AddIP("mx.remote.test", "127.0.0.2")
			e.start()
			msg, _ := testMessage("garbage")
			qid := e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
			waitFor(t, 10*time.Second, "the failed attempt", func() bool {
				it, err := e.st.QueueItem(context.Background(), qid)
				if err != nil {
					t.Fatal("message left the queue")
				}
				rc := it.Recipients[0]
				if rc.Attempts == 1 {
					if rc.Status != storage.QueuePending || !strings.HasPrefix(rc.StatusCode, "4.") {
						t.Errorf("after garbage: %+v", rc)
					}
					return true
				}
				return false
			})
		})
	}
}

func TestSMTPUTF8(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2", "127.0.0.3")
	plain := startRemote(t, ls[0], &remote{}, nil)
	utf8 := startRemote(t, ls[1], &remote{}, nil)
	utf8.srv.EnableSMTPUTF8 = true
	e := newEnv(t, port)
	e.dns.AddMX("old.test", 10, "mx.old.test")
	e.dns.AddIP("mx.old.test", "127.0.0.2")
	e.dns.AddMX("new.test", 10, "mx.new.test")
	e.dns.AddIP("mx.new.test", "127.0.0.3")
	e.start()
	msg, _ := testMessage("ünïcode")
	e.enqueue("alice@example.org", []string{"bøb@old.test", "jürgen@new.test"}, msg)
	d := e.waitDSN(1)
	if d.statusType != "message/global-delivery-status" {
		t.Errorf("DSN status part %s", d.statusType)
	}
	found := false
	for _, h := range d.perRcpt {
		if h.Get("Final-Recipient") == "utf-8; bøb@old.test" && h.Get("Status") == "5.6.7" {
			found = true
		}
	}
	if !found {
		t.Errorf("DSN recipients: %v", d.perRcpt)
	}
	e.waitEmpty(10 * time.Second)
	if plain.sessionCount() != 1 || len(plain.messages()) != 0 {
		t.Error("the server without SMTPUTF8 got the message")
	}
	got := utf8.messages()
	if len(got) != 1 || !got[0].mail.UTF8 || got[0].rcpts[0] != "jürgen@new.test" {
		t.Fatalf("SMTPUTF8 server got %+v", got)
	}
}

func TestMessageLargerThanRemoteSIZE(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	r := startRemote(t, ls[0], &remote{}, nil)
	r.srv.MaxMessageBytes = 1000
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	msg, _ := testMessage("large")
	msg = append(msg, bytes.Repeat([]byte("x"), 2000)...)
	e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
	d := e.waitDSN(1)
	if s := d.rcpt(t, "bob@remote.test").Get("Status"); s != "5.3.4" {
		t.Errorf("Status %q, want 5.3.4", s)
	}
	if len(r.messages()) != 0 {
		t.Error("the message was sent anyway")
	}
}
