package smtp

import (
	"bytes"
	"net/mail"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func testTrace(helo string) *trace {
	return &trace{
		helo:  helo,
		ip:    netip.MustParseAddr("192.0.2.7"),
		proto: "ESMTP",
		host:  "mx.example.test",
		id:    "abc123",
		date:  time.Date(2026, 2, 3, 4, 5, 6, 0, time.FixedZone("", -3*3600)),
	}
}

func TestPrefixFormat(t *testing.T) {
	tr := testTrace("client.example")
	got := string(tr.prefix("bob@remote.test", "alice+x@example.test", "alice@example.test"))
	want := "Return-Path: <bob@remote.test>\r\n" +
		"Delivered-To: alice@example.test\r\n" +
		"Received: from client.example ([192.0.2.7])\r\n" +
		"\tby mx.example.test (pombo) with ESMTP id abc123\r\n" +
		"\tfor <alice+x@example.test>;\r\n" +
		"\tTue, 03 Feb 2026 04:05:06 -0300\r\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}

	tr.tls, tr.cipher, tr.proto = "TLS 1.3", "TLS_AES_128_GCM_SHA256", "UTF8SMTPS"
	tr.ip = netip.MustParseAddr("2001:db8::1")
	got = tr.received("")
	want = "Received: from client.example ([IPv6:2001:db8::1])\r\n" +
		"\t(using TLS 1.3 with cipher TLS_AES_128_GCM_SHA256)\r\n" +
		"\tby mx.example.test (pombo) with UTF8SMTPS id abc123;\r\n" +
		"\tTue, 03 Feb 2026 04:05:06 -0300\r\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestProtocol(t *testing.T) {
	for _, tc := range []struct {
		tls, auth, utf8 bool
		want            string
	}{
		{false, false, false, "ESMTP"},
		{true, false, false, "ESMTPS"},
		{false, true, false, "ESMTPA"},
		{true, true, false, "ESMTPSA"},
		{true, false, true, "UTF8SMTPS"},
		{true, true, true, "UTF8SMTPSA"},
	} {
		if got := protocol(tc.tls, tc.auth, tc.utf8); got != tc.want {
			t.Errorf("protocol(%v,%v,%v) = %s, want %s", tc.tls, tc.auth, tc.utf8, got, tc.want)
		}
	}
}

func TestFormatPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "<>",
		"a.b@example.test":    "<a.b@example.test>",
		"john doe@x.test":     `<"john doe"@x.test>`,
		`a"b\c@x.test`:        `<"a\"b\\c"@x.test>`,
		".dot@x.test":         `<".dot"@x.test>`,
		"josé@exemplo.test":   "<josé@exemplo.test>",
		"user+tag@x.test":     "<user+tag@x.test>",
		"weird(comment)@x.tt": `<"weird(comment)"@x.tt>`,
	} {
		if got := formatPath(in); got != want {
			t.Errorf("formatPath(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCleanHelo(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "unknown",
		"mail.example.org":       "mail.example.org",
		"[192.0.2.1]":            "[192.0.2.1]",
		"evil\r\nX-Injected: 1":  "evil??X-Injected:?1",
		"a (comment) b":          "a??comment??b",
		strings.Repeat("h", 300): strings.Repeat("h", 255),
	} {
		if got := cleanHelo(in); got != want {
			t.Errorf("cleanHelo(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkHeaderBlock asserts that b is a well-formed block of header fields:
// CRLF line ends only, lines of at most 998 octets, continuation lines
// folded with a tab, and that net/mail reads the wanted fields from it.
func checkHeaderBlock(t *testing.T, b []byte, fields ...string) {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		t.Fatalf("does not end in CRLF: %q", b)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
	for i, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			t.Fatalf("bare CR or LF in %q", l)
		}
		if len(l)+2 > 1000 {
			t.Fatalf("line of %d octets", len(l)+2)
		}
		if i > 0 && !strings.HasPrefix(l, "\t") && !strings.Contains(l, ": ") {
			t.Fatalf("line %q is neither a field nor a continuation", l)
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(append(append([]byte{}, b...), "\r\nbody"...)))
	if err != nil {
		t.Fatalf("net/mail: %v\n%s", err, b)
	}
	for _, f := range fields {
		if n := len(m.Header[f]); n != 1 {
			t.Fatalf("%d %s fields in\n%s", n, f, b)
		}
	}
	if n := len(m.Header); n != len(fields) {
		t.Fatalf("%d fields, want %d:\n%s", n, len(fields), b)
	}
}

func FuzzTrace(f *testing.F) {
	f.Add("client.example", "bob@remote.test", "alice@example.test", false, false)
	f.Add("evil\r\nX-Injected: yes", `"a b"@x`, "alice+tag@example.test", true, true)
	f.Add("[IPv6:::1]", "", "x@y", false, true)
	f.Add("é(;)", "josé@exemplo.test", "a@b", true, false)
	f.Fuzz(func(t *testing.T, helo, from, rcpt string, tls, utf8 bool) {
		// Addresses reach the trace only after checkAddress, as in a session.
		if checkAddress(from, utf8, true) != nil || rcpt == "" || checkAddress(rcpt, utf8, false) != nil {
			return
		}
		tr := testTrace(helo)
		if tls {
			tr.tls, tr.cipher = "TLS 1.3", "TLS_AES_128_GCM_SHA256"
		}
		tr.proto = protocol(tls, false, utf8)
		p := tr.prefix(from, rcpt, "alice@example.test")
		checkHeaderBlock(t, p, "Return-Path", "Delivered-To", "Received")
		checkHeaderBlock(t, []byte(tr.received("")), "Received")
		rp := strings.TrimPrefix(strings.SplitN(string(p), "\r\n", 2)[0], "Return-Path: ")
		if !strings.HasPrefix(rp, "<") || !strings.HasSuffix(rp, ">") {
			t.Fatalf("Return-Path %q is not a path", rp)
		}
	})
}
