package imap_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"pombo/auth"
	"pombo/imap"
	"pombo/testutil"
)

// hostileEnvelopes are header sections whose ENVELOPE is awkward to write:
// NIL fields, groups, 8-bit text, quotes and backslashes, empty values,
// strings past imapserver's 4096-octet limit for quoted strings (literals),
// names that need several encoded words, characters json.Marshal escapes,
// odd time zones.
var hostileEnvelopes = []string{
	"X-Nothing: at all\r\n",
	"From: <>\r\nTo: undisclosed-recipients:;\r\nSubject: \r\nMessage-ID: <>\r\nIn-Reply-To: \r\nCc: \r\n",
	"From: Team: a@x.example, \"B\" <b@y.example>;, c@z.example\r\nTo: Empty:;, Full: d@w.example;\r\n",
	"From: Jürgen Müller <jm@example.de>\r\nTo: δοκιμή@παράδειγμα.δοκιμή, \"日本 語\" <ja@例え.jp>\r\nSubject: Grüße 😀 aus Köln\r\n",
	"From: \"Doe, \\\"Johnny\\\" \\\\ Jr\" <j@x.example>\r\nSubject: a \"quoted\" \\ backslash \\\\ two\r\nMessage-ID: <\"odd id\"@x.example>\r\n",
	"From: =?utf-8?q?Caf=C3=A9_Owner?= <c@x.example>\r\nSubject: =?iso-8859-1?q?caf=E9?= =?utf-8?b?8J+YgA==?=\r\n",
	"From: \"=?utf-8?q?not_encoded?=\" <x@y.example>\r\nTo: \"a=b?c_d é\" <e@f.example>\r\n",
	"From: \"A & B <c>\" <ab@x.example>\r\nSubject: <b>&amp;</b> \u2028 \u2029 end\r\n",
	"From: tab\tname <t@x.example>\r\nSubject: ctl \x01 tab\there\r\n",
	"From: \xff\xfe <bad@x.example>\r\nSubject: \xff\xfe bad \xc3\r\n",
	"Subject: nul \x00 inside\r\nFrom: a@b.example\r\n",
	"Subject: bare \r cr\r\nFrom: a@b.example\r\n",
	"From: a@b.example\r\nSender: s@b.example\r\nReply-To: r@b.example, a@b.example\r\n",
	"From: a@b.example, c@d.example\r\nReply-To: c@d.example, a@b.example\r\nSender: a@b.example, c@d.example\r\n",
	"From: Zoë <z@x.example>\r\nSender: Zoë <z@x.example>\r\nReply-To: Zoë <z@other.example>\r\n",
	"From: x@y.example\r\nIn-Reply-To: <a@b> <c@d>\r\n\t<e@f>\r\nMessage-ID: <one@x> <two@x>\r\n",
	"Date: Tue, 04 Jun 2024 10:00:00 +0530\r\nFrom: a@b.example\r\n",
	"Date: Tue, 04 Jun 2024 10:00:00 -0000\r\nFrom: a@b.example\r\n",
	"Date: Sat, 31 Dec 9999 23:59:59 +1400\r\nFrom: a@b.example\r\n",
	"Date: not a date\r\nFrom: a@b.example\r\n",
	"Date: Mon, 01 Jan 0001 00:00:00 +0000\r\n",
	"Subject: " + strings.Repeat("long subject ", 400) + "\r\n",
	"Subject: " + strings.Repeat("ünïcödé ", 700) + "\r\n",
	"From: \"" + strings.Repeat("Ωmega ", 60) + "\" <long@x.example>\r\n",
	"From: \"" + strings.Repeat("plain ", 800) + "\" <longer@x.example>\r\n",
	"To: " + manyAddresses(1200) + "\r\n",
}

func manyAddresses(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",\r\n ")
		}
		fmt.Fprintf(&b, "\"Nom %d é\" <u%d@h%d.example>", i, i, i%7)
	}
	return b.String()
}

// FETCH ENVELOPE, from a mailbox of corpus and hostile mail, goes out
// byte for byte as it did when each envelope was decoded by encoding/json
// and handed to imapserver as it is (ServeSlowEnvelopes), with and without
// IMAP4rev2 (which lets imapserver quote 8-bit strings instead of sending
// literals), ahead of and after other items.
func TestFetchEnvelopeWire(t *testing.T) {
	count := 2000
	if testing.Short() {
		count = 300
	}
	msgs := corpus(t, count)
	e := start(t, nil)
	deliverAll(t, e.srv.Store, e.userID, "INBOX", msgs)
	for _, h := range hostileEnvelopes {
		e.deliver(t, "INBOX", h+"\r\nbody\r\n")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	lg := testutil.Logger()
	go imap.ServeSlowEnvelopes(imap.Options{
		Store:                      e.srv.Store,
		Auth:                       &auth.Authenticator{Users: e.srv.Store, Log: lg},
		Log:                        lg,
		AllowPlaintextFromLoopback: true,
	}, l)

	total := len(msgs) + len(hostileEnvelopes)
	for _, rev2 := range []bool{false, true} {
		for _, items := range []string{"ENVELOPE", "UID ENVELOPE"} {
			want := transcript(t, l.Addr().String(), rev2, items, total)
			got := transcript(t, e.addr, rev2, items, total)
			if !bytes.Equal(got, want) {
				t.Errorf("IMAP4rev2 %v, FETCH 1:* (%s): %s", rev2, items, firstDiff(got, want))
			}
		}
	}
}

// transcript logs in to addr, selects INBOX and returns the octets of the
// response to FETCH 1:* (items), checking it has n messages.
func transcript(t *testing.T, addr string, rev2 bool, items string, n int) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cmd := func(tag, s string, keep *[]byte) int {
		t.Helper()
		fmt.Fprintf(c, "%s %s\r\n", tag, s)
		got, status, err := scanResponse(br, tag, keep)
		if err != nil || status != "OK" {
			t.Fatalf("%s: %s: %s %v", addr, s, status, err)
		}
		return got
	}
	cmd("L", fmt.Sprintf("LOGIN %s %q", testUser, testPass), nil)
	if rev2 {
		cmd("E", "ENABLE IMAP4rev2", nil)
	}
	cmd("S", "SELECT INBOX", nil)
	var out []byte
	if got := cmd("F", "FETCH 1:* ("+items+")", &out); got != n {
		t.Fatalf("%s: %d FETCH responses, want %d", addr, got, n)
	}
	return out
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want []byte) string {
	gl, wl := bytes.SplitAfter(got, []byte("\n")), bytes.SplitAfter(want, []byte("\n"))
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w []byte
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if !bytes.Equal(g, w) {
			return fmt.Sprintf("line %d:\ngot  %.600q\nwant %.600q", i+1, g, w)
		}
	}
	return "same lines"
}
