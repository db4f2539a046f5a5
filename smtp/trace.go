package smtp

import (
	"crypto/tls"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// trace is what the trace header fields of one message say about its
// transaction.
type trace struct {
	helo   string     // as the client sent it
	ip     netip.Addr // the client's address
	tls    string     // "TLS 1.3", or "" without TLS
	cipher string
	proto  string // the "with" keyword: ESMTP, ESMTPS, UTF8SMTPS...
	host   string // this server
	id     string // this message, also in the 250 reply and the log
	date   time.Time
}

// protocol is the Received "with" keyword: RFC 3848 (ESMTP, ESMTPS, ESMTPA,
// ESMTPSA) and RFC 6531 §3.7.3 (UTF8SMTP...) when SMTPUTF8 was used. go-smtp
// does not tell HELO from EHLO, so a HELO client is labelled ESMTP too.
func protocol(tls, authed, utf8 bool) string {
	p := "ESMTP"
	if utf8 {
		p = "UTF8SMTP"
	}
	if tls {
		p += "S"
	}
	if authed {
		p += "A"
	}
	return p
}

func tlsNames(st tls.ConnectionState) (version, cipher string) {
	return tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)
}

// received returns the Received field (RFC 5321 §4.4), folded, CRLF
// terminated. rcpt is "" when the copy goes to several recipients.
func (t *trace) received(rcpt string) string {
	var b strings.Builder
	b.Grow(256)
	b.WriteString("Received: from ")
	b.WriteString(cleanHelo(t.helo))
	b.WriteString(" (")
	b.WriteString(addressLiteral(t.ip))
	b.WriteString(")\r\n")
	if t.tls != "" {
		b.WriteString("\t(using ")
		b.WriteString(t.tls)
		b.WriteString(" with cipher ")
		b.WriteString(t.cipher)
		b.WriteString(")\r\n")
	}
	b.WriteString("\tby ")
	b.WriteString(t.host)
	b.WriteString(" (pombo) with ")
	b.WriteString(t.proto)
	b.WriteString(" id ")
	b.WriteString(t.id)
	if rcpt != "" {
		b.WriteString("\r\n\tfor ")
		b.WriteString(formatPath(rcpt))
	}
	b.WriteString(";\r\n\t")
	b.WriteString(t.date.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

// prefix returns the trace fields put in front of one local recipient's
// copy: Return-Path (RFC 5321 §4.4, added at final delivery), Delivered-To
// (the mailbox it went into) and Received.
func (t *trace) prefix(from, rcpt, deliveredTo string) []byte {
	var b strings.Builder
	b.WriteString("Return-Path: ")
	b.WriteString(formatPath(from))
	b.WriteString("\r\nDelivered-To: ")
	b.WriteString(deliveredTo)
	b.WriteString("\r\n")
	b.WriteString(t.received(rcpt))
	return []byte(b.String())
}

// addressLiteral is the TCP-info of a Received field: "[192.0.2.1]" or
// "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3).
func addressLiteral(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "unknown"
	case ip.Is4():
		return "[" + ip.String() + "]"
	}
	return "[IPv6:" + ip.String() + "]"
}

// maxHelo bounds the HELO name written into Received.
const maxHelo = 255

// cleanHelo makes a client's HELO argument safe inside a header field:
// printable ASCII without the characters that would end the from-clause or
// open a comment; anything else becomes '?'.
func cleanHelo(h string) string {
	if h == "" {
		return "unknown"
	}
	if len(h) > maxHelo {
		h = h[:maxHelo]
	}
	ok := true
	for i := 0; i < len(h); i++ {
		if !heloChar(h[i]) {
			ok = false
			break
		}
	}
	if ok {
		return h
	}
	b := []byte(h)
	for i, c := range b {
		if !heloChar(c) {
			b[i] = '?'
		}
	}
	return string(b)
}

func heloChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._:[]", c) >= 0
}

// formatPath writes an address as an RFC 5321 path, "<local@domain>", with
// the local part quoted when it is not a dot-string (go-smtp hands it over
// unquoted). "" is the null path "<>".
func formatPath(addr string) string {
	if addr == "" {
		return "<>"
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "<" + quoteLocal(addr) + ">"
	}
	return "<" + quoteLocal(addr[:at]) + addr[at:] + ">"
}

func quoteLocal(l string) string {
	if isDotString(l) {
		return l
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(l); i++ {
		if l[i] == '"' || l[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(l[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isDotString reports whether l is an RFC 5321 Dot-string (atoms of atext
// joined by single dots); UTF-8 counts as atext (RFC 6531).
func isDotString(l string) bool {
	if l == "" || l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 0x80, c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return utf8.ValidString(l)
}
