package smtp_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"pombo/testutil"
)

// A message with what a byte-for-byte check must survive: a leading dot
// (dot-stuffing), 8-bit UTF-8, trailing spaces, an empty line at the end.
const sampleMessage = "From: Bob <bob@remote.test>\n" +
	"To: Alice <alice@example.test>\n" +
	"Subject: =?utf-8?q?ol=C3=A1?=\n" +
	"Message-ID: <sample-1@remote.test>\n" +
	"Date: Mon, 2 Feb 2026 10:00:00 +0000\n" +
	"MIME-Version: 1.0\n" +
	"Content-Type: text/plain; charset=utf-8\n" +
	"Content-Transfer-Encoding: 8bit\n" +
	"\n" +
	"Olá Alice,\n" +
	".a line that starts with a dot\n" +
	"..and one with two\n" +
	"trailing spaces   \n" +
	"\n" +
	"Bob\n"

func swaks(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := testutil.RequireTool(t, "swaks")
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSwaksDeliversToInbox(t *testing.T) {
	e := start(t, nil)
	for _, tc := range []struct {
		name  string
		extra []string
		with  string
		tls   bool
	}{
		{"plain", nil, "ESMTP", false},
		{"starttls", []string{"--tls"}, "ESMTPS", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.mailbox(e.alice, "INBOX"))
			// swaks ends the data with CRLF "." CRLF after the file's
			// content: without the last LF, what it sends is exactly
			// sampleMessage.
			file := writeFile(t, "msg.eml", strings.TrimSuffix(sampleMessage, "\n"))
			args := append([]string{"--server", e.addr, "--helo", "client.example",
				"--from", "bob@remote.test", "--to", "alice@example.test", "--data", "@" + file}, tc.extra...)
			out, err := swaks(t, args...)
			if err != nil {
				t.Fatalf("swaks: %v\n%s", err, out)
			}
			if !regexp.MustCompile(`(?m)^<[-~]  250 2\.0\.0 Ok: stored as \w+`).MatchString(out) {
				t.Fatalf("no 250 after DATA:\n%s", out)
			}
			msgs := e.mailbox(e.alice, "INBOX")
			if len(msgs) != before+1 {
				t.Fatalf("INBOX has %d messages, want %d", len(msgs), before+1)
			}
			m := msgs[len(msgs)-1]
			prefix, body := splitPrefix(t, m.data, "From: Bob")
			if want := crlf(sampleMessage); string(body) != want {
				t.Fatalf("body differs:\n got %q\nwant %q", body, want)
			}
			p := string(prefix)
			for _, re := range []string{
				`^Return-Path: <bob@remote\.test>\r\n`,
				`\r\nDelivered-To: alice@example\.test\r\n`,
				`\r\nReceived: from client\.example \(\[127\.0\.0\.1\]\)\r\n`,
				`\tby mx\.example\.test \(pombo\) with ` + tc.with + ` id \w+\r\n\tfor <alice@example\.test>;\r\n\t\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n$`,
			} {
				if !regexp.MustCompile(re).MatchString(p) {
					t.Errorf("trace prefix does not match %s:\n%s", re, p)
				}
			}
			if got := strings.Contains(p, "(using TLS 1.3 with cipher "); got != tc.tls {
				t.Errorf("TLS comment present = %v, want %v:\n%s", got, tc.tls, p)
			}
			if m.msg.Size != int64(len(m.data)) {
				t.Errorf("size %d, but %d octets read", m.msg.Size, len(m.data))
			}
		})
	}
}

func TestSwaksUnknownUserGets550(t *testing.T) {
	e := start(t, nil)
	out, err := swaks(t, "--server", e.addr, "--from", "bob@remote.test", "--to", "nobody@example.test")
	if err == nil {
		t.Fatalf("swaks succeeded:\n%s", out)
	}
	if !strings.Contains(out, "<** 550 5.1.1 ") {
		t.Fatalf("want 550 5.1.1:\n%s", out)
	}
	if n := e.blobs(); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestSwaksRelayDeniedGets554(t *testing.T) {
	e := start(t, nil)
	out, err := swaks(t, "--server", e.addr, "--from", "bob@remote.test", "--to", "someone@elsewhere.test")
	if err == nil {
		t.Fatalf("swaks succeeded:\n%s", out)
	}
	if !strings.Contains(out, "<** 554 5.7.1 ") {
		t.Fatalf("want 554 5.7.1:\n%s", out)
	}
	// Even with the local sender of a local user, and over TLS.
	out, _ = swaks(t, "--server", e.addr, "--tls", "--from", "alice@example.test", "--to", "someone@elsewhere.test")
	if !strings.Contains(out, "<~* 554 5.7.1 ") {
		t.Fatalf("want 554 5.7.1 over TLS:\n%s", out)
	}
	if n := e.blobs(); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	if got := len(e.mailbox(e.alice, "INBOX")); got != 0 {
		t.Fatalf("INBOX has %d messages", got)
	}
	if q, err := e.srv.Store.QueueList(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("queue: %v, %v", q, err)
	}
}

func TestEHLOAdvertises(t *testing.T) {
	e := start(t, nil)
	r := dialRaw(t, e.addr)
	caps := r.ehlo()
	for _, c := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 52428800", "ENHANCEDSTATUSCODES", "CHUNKING", "STARTTLS"} {
		if !regexp.MustCompile(`(?m)^250[- ]` + c + `\r$`).MatchString(caps) {
			t.Errorf("EHLO lacks %q:\n%s", c, caps)
		}
	}
	if strings.Contains(caps, "AUTH") {
		t.Errorf("port 25 advertises AUTH:\n%s", caps)
	}
	r.startTLS()
	caps = r.ehlo()
	if strings.Contains(caps, "STARTTLS") {
		t.Errorf("STARTTLS advertised under TLS:\n%s", caps)
	}
	if !strings.Contains(caps, "CHUNKING") {
		t.Errorf("EHLO under TLS lacks CHUNKING:\n%s", caps)
	}
}

// countAll is the number of messages in all of a user's mailboxes.
func (e *env) countAll(userID int64) int {
	e.t.Helper()
	mbs, err := e.srv.Store.Mailboxes(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, mb := range mbs {
		n += int(mb.Messages)
	}
	return n
}
