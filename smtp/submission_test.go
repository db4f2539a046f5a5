package smtp_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pombo/config"
	"pombo/testutil"
)

// sub is a real pombo with alice and bob at example.test, and the address
// of its submission (STARTTLS) listener.
type sub struct {
	*env
	sub string
	bob int64
}

func startSub(t *testing.T, mutate func(*config.Config)) *sub {
	t.Helper()
	e := start(t, func(c *config.Config) {
		c.DNS.Resolver = "127.0.0.1:1" // nothing there: remote mail stays queued
		if mutate != nil {
			mutate(c)
		}
	})
	s := &sub{env: e, sub: e.srv.Addr("submission.listen")}
	if s.sub == "" {
		t.Fatal("no submission listener")
	}
	s.bob = addUser(t, e, "bob@example.test")
	return s
}

func plain(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
}

// login authenticates alice on r.
func loginAlice(r *raw) {
	r.t.Helper()
	r.send("AUTH PLAIN " + plain("", "alice@example.test", "alice-password") + "\r\n")
	r.expect("235 ")
}

func (s *sub) queued(t *testing.T) int {
	t.Helper()
	q, err := s.srv.Store.QueueList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(q)
}

func runSwaks(t *testing.T, args ...string) string {
	t.Helper()
	bin := testutil.RequireTool(t, "swaks")
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("swaks %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestSubmissionSwaksLocalAndRemote: swaks submits over STARTTLS with AUTH
// to a local user (delivered, Message-ID and Date added, ESMTPSA) and to a
// remote one (queued as alice's).
func TestSubmissionSwaksLocalAndRemote(t *testing.T) {
	s := startSub(t, nil)
	msg := filepath.Join(t.TempDir(), "msg")
	os.WriteFile(msg, []byte("From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hello bob\r\n\r\nhi there\r\n"), 0o600)
	out := runSwaks(t, "--server", s.sub, "--tls", "--auth", "PLAIN", "--auth-user", "alice@example.test",
		"--auth-password", "alice-password", "--from", "alice@example.test",
		"--to", "bob@example.test,friend@elsewhere.test", "--data", msg)
	if !strings.Contains(out, "<~  250 2.0.0 Ok: queued as") {
		t.Fatalf("swaks:\n%s", out)
	}
	got := s.mailbox(s.bob, "INBOX")
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	data := string(got[0].data)
	for _, want := range []string{"\r\nMessage-ID: <", "\r\nDate: ", " (pombo) with ESMTPSA id ", "Subject: hello bob\r\n\r\nhi there\r\n", "Delivered-To: bob@example.test\r\n"} {
		if !strings.Contains(data, want) {
			t.Errorf("message lacks %q:\n%s", want, data)
		}
	}
	q, err := s.srv.Store.QueueList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Sender != "alice@example.test" || q[0].UserID != s.alice ||
		len(q[0].Recipients) != 1 || q[0].Recipients[0].Address != "friend@elsewhere.test" ||
		q[0].Subject != "hello bob" || q[0].MessageID == "" {
		t.Fatalf("queue: %+v", q)
	}
	// The alice of the mailbox is not the alice of the queue's copy alone:
	// nothing went into alice's own INBOX.
	if n := len(s.mailbox(s.alice, "INBOX")); n != 0 {
		t.Fatalf("alice has %d messages", n)
	}

	// Hostile twin: a wrong password is refused with 535 and nothing is sent.
	cmd := exec.Command(testutil.RequireTool(t, "swaks"), "--server", s.sub, "--tls", "--auth", "PLAIN",
		"--auth-user", "alice@example.test", "--auth-password", "wrong", "--from", "alice@example.test",
		"--to", "bob@example.test", "--data", msg)
	o, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(o), "535 5.7.8") {
		t.Fatalf("wrong password: err %v\n%s", err, o)
	}
	if n := len(s.mailbox(s.bob, "INBOX")); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
}

// TestSubmissionKeepsHeaders: a message with its own Message-ID and Date
// gets no second one.
func TestSubmissionKeepsHeaders(t *testing.T) {
	s := startSub(t, nil)
	r := dialRaw(t, s.sub)
	r.ehlo()
	loginAlice(r)
	r.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("354 ")
	r.send("From: alice@example.test\r\nMessage-Id: <own@x>\r\ndate: Mon, 2 Jan 2006 15:04:05 +0000\r\n\r\nbody\r\n.\r\n")
	r.expect("250 ")
	got := s.mailbox(s.bob, "INBOX")
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	d := strings.ToLower(string(got[0].data))
	if strings.Count(d, "message-id:") != 1 || strings.Count(d, "\ndate:") != 1 {
		t.Fatalf("message:\n%s", got[0].data)
	}
}

func TestSubmissionNeedsAuth(t *testing.T) {
	s := startSub(t, nil)
	r := dialRaw(t, s.sub)
	ehlo := r.ehlo()
	if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Fatalf("loopback with allow_plaintext_from_loopback: AUTH not offered:\n%s", ehlo)
	}
	r.send("MAIL FROM:<alice@example.test>\r\n")
	r.expect("530 5.7.0 ")
	// After AUTH the same command is accepted.
	loginAlice(r)
	r.send("MAIL FROM:<alice@example.test>\r\n")
	r.expect("250 ")
}

func TestSubmissionSenderChecks(t *testing.T) {
	s := startSub(t, nil)
	ctx := context.Background()
	if err := s.srv.Store.AddAlias(ctx, "sales@example.test", []string{"alice@example.test"}); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, s.sub)
	r.ehlo()
	loginAlice(r)
	// Envelope sender of another user, of nobody, and the null sender.
	for _, from := range []string{"bob@example.test", "someone@elsewhere.test", ""} {
		r.send("MAIL FROM:<" + from + ">\r\n")
		r.expect("553 5.7.1 ")
	}
	// The alias is alice's, in any case.
	r.send("MAIL FROM:<Sales@Example.TEST>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("354 ")
	// From: header of bob: refused at the end of DATA, nothing delivered.
	r.send("From: Bob <bob@example.test>\r\nSubject: forged\r\n\r\nx\r\n.\r\n")
	r.expect("553 5.7.1 ")
	// Two From: addresses, one of them not hers.
	r.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("354 ")
	r.send("From: alice@example.test, mallory@elsewhere.test\r\n\r\nx\r\n.\r\n")
	r.expect("553 5.7.1 ")
	// No From: at all.
	r.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("354 ")
	r.send("Subject: anonymous\r\n\r\nx\r\n.\r\n")
	r.expect("553 5.7.1 ")
	if n := len(s.mailbox(s.bob, "INBOX")); n != 0 {
		t.Fatalf("bob got %d refused messages", n)
	}
	// The alias in From: (folded, with a display name) is fine.
	r.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("354 ")
	r.send("From: \"Sales\"\r\n <sales@example.test>\r\nSubject: ok\r\n\r\nx\r\n.\r\n")
	r.expect("250 ")
	// A display name in a charset Go does not know is no reason to refuse.
	r.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("354 ")
	r.send("From: =?koi8-r?B?4czJ08E=?= <alice@example.test>\r\n\r\nx\r\n.\r\n")
	r.expect("250 ")
	if n := len(s.mailbox(s.bob, "INBOX")); n != 2 {
		t.Fatalf("bob has %d messages", n)
	}
}

// TestSubmissionAuthNeedsTLS: with allow_plaintext_from_loopback = false,
// AUTH is neither offered nor accepted before STARTTLS, and works after.
func TestSubmissionAuthNeedsTLS(t *testing.T) {
	s := startSub(t, func(c *config.Config) { c.Auth.AllowPlaintextFromLoopback = false })
	r := dialRaw(t, s.sub)
	ehlo := r.ehlo()
	if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO before STARTTLS:\n%s", ehlo)
	}
	r.send("AUTH PLAIN " + plain("", "alice@example.test", "alice-password") + "\r\n")
	r.expect("538 5.7.11 ")
	r.send("MAIL FROM:<alice@example.test>\r\n")
	r.expect("530 5.7.0 ")
	r.startTLS()
	ehlo = r.ehlo()
	if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Fatalf("EHLO after STARTTLS:\n%s", ehlo)
	}
	loginAlice(r)
	r.send("MAIL FROM:<alice@example.test>\r\n")
	r.expect("250 ")
}

// TestSubmissionImplicitTLS: port 465 style, AUTH LOGIN, ESMTPSA.
func TestSubmissionImplicitTLS(t *testing.T) {
	s := startSub(t, func(c *config.Config) { c.Auth.AllowPlaintextFromLoopback = false })
	c, err := tls.Dial("tcp", s.srv.Addr("submission.tls_listen"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	r := &raw{t: t, c: c, br: newReader(c)}
	t.Cleanup(func() { c.Close() })
	r.expect("220 ")
	ehlo := r.ehlo()
	if strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Fatalf("EHLO:\n%s", ehlo)
	}
	b64 := base64.StdEncoding.EncodeToString
	r.send("AUTH LOGIN\r\n")
	r.expect("334 VXNlcm5hbWU6")
	r.send(b64([]byte("alice@example.test")) + "\r\n")
	r.expect("334 UGFzc3dvcmQ6")
	r.send(b64([]byte("alice-password")) + "\r\n")
	r.expect("235 ")
	r.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("354 ")
	r.send("From: alice@example.test\r\n\r\nover 465\r\n.\r\n")
	r.expect("250 ")
	got := s.mailbox(s.bob, "INBOX")
	if len(got) != 1 || !strings.Contains(string(got[0].data), " with ESMTPSA id ") {
		t.Fatalf("bob: %+v", got)
	}
}

// TestSubmissionAuthFailures: an authzid of another user is refused even
// with the right password; wrong passwords get 535 until the throttle says
// 454.
func TestSubmissionAuthFailures(t *testing.T) {
	s := startSub(t, func(c *config.Config) {
		c.Auth.MaxFailuresPerIP = 3
		c.Auth.MaxFailuresPerAccount = 100
	})
	r := dialRaw(t, s.sub)
	r.ehlo()
	r.send("AUTH PLAIN " + plain("bob@example.test", "alice@example.test", "alice-password") + "\r\n")
	r.expect("535 5.7.8 ")
	r.send("MAIL FROM:<bob@example.test>\r\n")
	r.expect("530 5.7.0 ")
	r.send("AUTH PLAIN " + plain("", "alice@example.test", "nope") + "\r\n")
	r.expect("535 5.7.8 ")
	r.send("AUTH PLAIN " + plain("", "alice@example.test", "nope") + "\r\n")
	r.expect("535 5.7.8 ")
	// Three failures from this IP: even the right password is throttled.
	r2 := dialRaw(t, s.sub)
	r2.ehlo()
	r2.send("AUTH PLAIN " + plain("", "alice@example.test", "alice-password") + "\r\n")
	r2.expect("454 4.7.0 ")
}

func TestSubmissionLimits(t *testing.T) {
	s := startSub(t, func(c *config.Config) {
		c.Submission.MaxRecipientsPerMessage = 2
		c.Submission.MaxMessagesPerHour = 2
	})
	r := dialRaw(t, s.sub)
	r.ehlo()
	loginAlice(r)
	r.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<x@elsewhere.test>\r\nRCPT TO:<y@elsewhere.test>\r\nDATA\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("452 4.5.3 ")
	r.expect("354 ")
	r.send("From: alice@example.test\r\n\r\none\r\n.\r\n")
	r.expect("250 ")
	if n := s.queued(t); n != 1 {
		t.Fatalf("%d queued", n)
	}
	r.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("354 ")
	r.send("From: alice@example.test\r\n\r\ntwo\r\n.\r\n")
	r.expect("250 ")
	// The third message of the hour, on another connection too.
	r.send("MAIL FROM:<alice@example.test>\r\n")
	r.expect("450 4.7.1 ")
	r2 := dialRaw(t, s.sub)
	r2.ehlo()
	loginAlice(r2)
	r2.send("MAIL FROM:<alice@example.test>\r\n")
	r2.expect("450 4.7.1 ")
	// Bob has his own allowance.
	r2.send("AUTH PLAIN " + plain("", "bob@example.test", "password-of-bob@example.test") + "\r\n")
	r2.expect("503 ") // already authenticated on this connection
	r3 := dialRaw(t, s.sub)
	r3.ehlo()
	r3.send("AUTH PLAIN " + plain("", "bob@example.test", "password-of-bob@example.test") + "\r\n")
	r3.expect("235 ")
	r3.send("MAIL FROM:<bob@example.test>\r\n")
	r3.expect("250 ")
	if n := len(s.mailbox(s.bob, "INBOX")); n != 2 {
		t.Fatalf("bob has %d messages", n)
	}
}

// TestSubmissionBDAT: the From: check and the added fields work the same
// for BDAT.
func TestSubmissionBDAT(t *testing.T) {
	s := startSub(t, nil)
	r := dialRaw(t, s.sub)
	r.ehlo()
	loginAlice(r)
	forged := "From: bob@example.test\r\n\r\nx\r\n"
	r.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(forged), forged))
	r.expect("553 5.7.1 ")
	good := "From: alice@example.test\r\nSubject: chunked\r\n\r\nx\r\n"
	r.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.send(fmt.Sprintf("BDAT 10\r\n%sBDAT %d LAST\r\n%s", good[:10], len(good)-10, good[10:]))
	r.expect("250 ")
	r.expect("250 ")
	got := s.mailbox(s.bob, "INBOX")
	if len(got) != 1 || !strings.Contains(string(got[0].data), "\r\nMessage-ID: <") ||
		!strings.HasSuffix(string(got[0].data), good) {
		t.Fatalf("bob: %+v", got)
	}
}
