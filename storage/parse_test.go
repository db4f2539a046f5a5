package storage

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"mime"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

const corpusDir = "/work/shared/corpus"

var corpus struct {
	once sync.Once
	msgs [][]byte
	err  error
}

// corpusMessages returns the messages of a 300-message corpus written by
// make_corpus.py (real mail from Python's and SpamAssassin's test data plus
// generated mail), split from the mbox on its "From " lines.
func corpusMessages(t testing.TB) [][]byte {
	t.Helper()
	script := filepath.Join(corpusDir, "make_corpus.py")
	if _, err := os.Stat(script); err != nil {
		t.Skipf("no corpus: %v", err)
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 for the corpus")
	}
	corpus.once.Do(func() {
		dir, err := os.MkdirTemp("", "pombo-corpus")
		if err != nil {
			corpus.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "x.mbox")
		if b, err := exec.Command("python3", script, "--count", "300", "--out", out).CombinedOutput(); err != nil {
			corpus.err = fmt.Errorf("make_corpus: %v: %s", err, b)
			return
		}
		mbox, err := os.ReadFile(out)
		if err != nil {
			corpus.err = err
			return
		}
		corpus.msgs = splitMbox(mbox)
	})
	if corpus.err != nil {
		t.Fatal(corpus.err)
	}
	if len(corpus.msgs) != 300 {
		t.Fatalf("corpus has %d messages, want 300", len(corpus.msgs))
	}
	return corpus.msgs
}

func splitMbox(mbox []byte) [][]byte {
	var msgs [][]byte
	start := -1
	for off := 0; off < len(mbox); {
		end := bytes.IndexByte(mbox[off:], '\n')
		if end < 0 {
			end = len(mbox)
		} else {
			end += off + 1
		}
		if bytes.HasPrefix(mbox[off:], []byte("From ")) {
			if start >= 0 {
				msgs = append(msgs, mbox[start:off])
			}
			start = end
		}
		off = end
	}
	if start >= 0 {
		msgs = append(msgs, mbox[start:])
	}
	return msgs
}

func parse(t testing.TB, raw []byte) *ParsedMessage {
	t.Helper()
	pm, err := ParseMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("ParseMessage: %v", err)
	}
	checkInvariants(t, raw, pm)
	return pm
}

// checkInvariants holds for any input: it is what the fuzz target asserts.
func checkInvariants(t testing.TB, raw []byte, pm *ParsedMessage) {
	t.Helper()
	if pm.HeaderSize < 0 || pm.HeaderSize+pm.Body.Size != int64(len(raw)) {
		t.Fatalf("HeaderSize %d + Body.Size %d != %d", pm.HeaderSize, pm.Body.Size, len(raw))
	}
	if d := depth(&pm.Body); d > MaxMIMEDepth+1 {
		t.Fatalf("depth %d > %d", d, MaxMIMEDepth+1)
	}
	if n := countParts(&pm.Body); n > MaxMIMEParts+MaxMIMEDepth {
		t.Fatalf("%d parts", n)
	}
	if len(pm.Text) > MaxSearchText || !utf8.ValidString(pm.Text) {
		t.Fatalf("Text: %d bytes, valid UTF-8 %v", len(pm.Text), utf8.ValidString(pm.Text))
	}
	if len(pm.Headers) > MaxHeaderBytes || !utf8.ValidString(pm.Headers) {
		t.Fatalf("Headers: %d bytes, valid UTF-8 %v", len(pm.Headers), utf8.ValidString(pm.Headers))
	}
	checkEnvelope(t, &pm.Envelope)
	checkPart(t, "", &pm.Body)
	if _, err := json.Marshal(pm); err != nil {
		t.Fatalf("json: %v", err)
	}
}

func checkEnvelope(t testing.TB, e *Envelope) {
	t.Helper()
	for _, l := range [][]Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		if len(l) > MaxAddresses {
			t.Fatalf("%d addresses", len(l))
		}
		for _, a := range l {
			if !utf8.ValidString(a.Name + a.Mailbox + a.Host) {
				t.Fatalf("address not UTF-8: %q", a)
			}
		}
	}
	if !utf8.ValidString(e.Subject) {
		t.Fatalf("subject not UTF-8: %q", e.Subject)
	}
}

func checkPart(t testing.TB, path string, p *BodyPart) {
	t.Helper()
	if p.Size < 0 || p.Lines < 0 {
		t.Fatalf("part %s: size %d lines %d", path, p.Size, p.Lines)
	}
	if p.Type == "" || p.Subtype == "" || p.Type != strings.ToLower(p.Type) || p.Subtype != strings.ToLower(p.Subtype) {
		t.Fatalf("part %s: type %q/%q", path, p.Type, p.Subtype)
	}
	if p.Type == "multipart" && len(p.Children) == 0 {
		t.Fatalf("part %s: multipart without children", path)
	}
	isMsg := p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global")
	if isMsg != (p.Envelope != nil && p.Message != nil) {
		t.Fatalf("part %s: %s/%s with envelope %v message %v", path, p.Type, p.Subtype, p.Envelope != nil, p.Message != nil)
	}
	var sum int64
	for i := range p.Children {
		c := &p.Children[i]
		checkPart(t, fmt.Sprintf("%s%d.", path, i+1), c)
		sum += c.Size
	}
	if sum > p.Size {
		t.Fatalf("part %s: children sizes %d > size %d", path, sum, p.Size)
	}
	if p.Message != nil {
		checkEnvelope(t, p.Envelope)
		checkPart(t, path+"m.", p.Message)
		if p.Message.Size > p.Size {
			t.Fatalf("part %s: inner body %d > size %d", path, p.Message.Size, p.Size)
		}
	}
}

func depth(p *BodyPart) int {
	d := 0
	for i := range p.Children {
		d = max(d, depth(&p.Children[i]))
	}
	if p.Message != nil {
		d = max(d, depth(p.Message))
	}
	return d + 1
}

func countParts(p *BodyPart) int {
	n := 1
	for i := range p.Children {
		n += countParts(&p.Children[i])
	}
	if p.Message != nil {
		n += countParts(p.Message)
	}
	return n
}

// refLines is the Lines rule: line ends, plus one for a last line without one.
func refLines(b []byte) int64 {
	n := int64(bytes.Count(b, []byte("\n")))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// refCompare checks a part against go-message's independent reading of the
// same bytes: its multipart reader gives each part's body, whose length must
// be the part's Size. It returns how many parts it compared.
func refCompare(t *testing.T, path string, p *BodyPart, h textproto.Header, body []byte) int {
	t.Helper()
	if p.Size != int64(len(body)) {
		t.Fatalf("part %s (%s/%s): Size %d, reference %d", path, p.Type, p.Subtype, p.Size, len(body))
	}
	if (p.Type == "text" || p.Message != nil) && p.Lines != refLines(body) {
		t.Fatalf("part %s: Lines %d, reference %d", path, p.Lines, refLines(body))
	}
	n := 1
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return n
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		mr := textproto.NewMultipartReader(bytes.NewReader(body), params["boundary"])
		for i := 0; ; i++ {
			part, err := mr.NextPart()
			if err == io.EOF {
				if i == 0 && len(p.Children) == 1 && p.Children[0].Size == 0 {
					break // no parts: the parser supplies an empty one
				}
				if i != len(p.Children) {
					t.Fatalf("part %s: %d children, reference %d", path, len(p.Children), i)
				}
				break
			}
			if err != nil {
				return n // the reference cannot read it; nothing to compare
			}
			b, err := io.ReadAll(part)
			if err != nil {
				return n
			}
			if i >= len(p.Children) {
				t.Fatalf("part %s: %d children, reference has more", path, len(p.Children))
			}
			n += refCompare(t, fmt.Sprintf("%s%d.", path, i+1), &p.Children[i], part.Header, b)
		}
	case mt == "message/rfc822":
		if p.Message == nil {
			t.Fatalf("part %s: message/rfc822 without Message", path)
		}
		ih, ib, ok := refSplit(body)
		if ok {
			n += refCompare(t, path+"m.", p.Message, ih, ib)
			if want := normWS(decodeRef(ih.Get("Subject"))); normWS(p.Envelope.Subject) != want {
				t.Fatalf("part %s: inner subject %q, reference %q", path, p.Envelope.Subject, want)
			}
		}
	}
	return n
}

// refSplit reads a header section with go-message and returns the body.
func refSplit(raw []byte) (textproto.Header, []byte, bool) {
	r := bytes.NewReader(raw)
	br := bufio.NewReader(r)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return h, nil, false
	}
	consumed := len(raw) - r.Len() - br.Buffered()
	return h, raw[consumed:], true
}

func decodeRef(s string) string {
	d, err := (&mime.WordDecoder{CharsetReader: charset.Reader}).DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

func normWS(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestParseCorpusSizes(t *testing.T) {
	compared := 0
	for i, raw := range corpusMessages(t) {
		for _, crlf := range []bool{false, true} {
			if crlf {
				if bytes.IndexByte(raw, '\r') >= 0 {
					continue
				}
				raw = bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
			}
			pm := parse(t, raw)
			h, body, ok := refSplit(raw)
			if !ok {
				t.Logf("message %d: reference cannot read the header", i)
				continue
			}
			if int64(len(raw)-len(body)) != pm.HeaderSize {
				t.Fatalf("message %d (crlf %v): HeaderSize %d, reference %d", i, crlf, pm.HeaderSize, len(raw)-len(body))
			}
			compared += refCompare(t, fmt.Sprintf("msg %d crlf %v: ", i, crlf), &pm.Body, h, body)
		}
	}
	if compared < 600 {
		t.Fatalf("only %d parts compared", compared)
	}
}

// The same message with LF or CRLF line ends has the same structure and
// text; only the sizes differ.
func TestParseCorpusLineEnds(t *testing.T) {
	for i, raw := range corpusMessages(t) {
		if bytes.IndexByte(raw, '\r') >= 0 {
			continue
		}
		lf := parse(t, raw)
		crlf := parse(t, bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n")))
		if !reflect.DeepEqual(lf.Envelope, crlf.Envelope) {
			t.Fatalf("message %d: envelopes differ:\n%+v\n%+v", i, lf.Envelope, crlf.Envelope)
		}
		if lf.Text != crlf.Text || lf.Headers != crlf.Headers {
			t.Fatalf("message %d: text or headers differ", i)
		}
		var shape func(p *BodyPart) string
		shape = func(p *BodyPart) string {
			s := fmt.Sprintf("%s/%s %d %v(", p.Type, p.Subtype, p.Lines, p.Params)
			for i := range p.Children {
				s += shape(&p.Children[i])
			}
			if p.Message != nil {
				s += shape(p.Message)
			}
			return s + ")"
		}
		if a, b := shape(&lf.Body), shape(&crlf.Body); a != b {
			t.Fatalf("message %d: structures differ:\n%s\n%s", i, a, b)
		}
	}
}

func TestParseCorpusEnvelopeMatchesNetMail(t *testing.T) {
	checked := 0
	for i, raw := range corpusMessages(t) {
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			continue
		}
		pm := parse(t, raw)
		ap := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader}}
		for _, f := range []struct {
			name string
			got  []Address
		}{{"From", pm.Envelope.From}, {"To", pm.Envelope.To}, {"Cc", pm.Envelope.Cc}} {
			// pombo merges repeated address fields, as Dovecot does.
			v := strings.Join(msg.Header[f.name], ", ")
			want, err := ap.ParseList(v)
			if v == "" || err != nil {
				continue
			}
			if len(want) != len(f.got) {
				t.Fatalf("message %d %s %q: %d addresses, net/mail %d", i, f.name, v, len(f.got), len(want))
			}
			for j, w := range want {
				g := f.got[j]
				if g.Name != w.Name || g.Mailbox+"@"+g.Host != w.Address {
					t.Fatalf("message %d %s: got %+v, net/mail %+v", i, f.name, g, w)
				}
			}
			checked++
		}
		if d, err := mail.ParseDate(msg.Header.Get("Date")); err == nil && !d.Equal(pm.Envelope.Date) {
			t.Fatalf("message %d: date %v, net/mail %v", i, pm.Envelope.Date, d)
		}
		if want := normWS(decodeRef(msg.Header.Get("Subject"))); normWS(pm.Envelope.Subject) != want {
			t.Fatalf("message %d: subject %q, want %q", i, pm.Envelope.Subject, want)
		}
		if id := msg.Header.Get("Message-Id"); id != "" && "<"+pm.Envelope.MessageID+">" != strings.TrimSpace(id) {
			t.Fatalf("message %d: Message-ID %q, header %q", i, pm.Envelope.MessageID, id)
		}
	}
	if checked < 300 {
		t.Fatalf("only %d address fields checked", checked)
	}
}

func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.TrimPrefix(s, "\n"), "\n", "\r\n"))
}

// sizeOf returns the length of the body between the end of the line
// containing after and the CRLF before the next line starting with until.
func sizeOf(t *testing.T, raw []byte, after, until string) int64 {
	t.Helper()
	i := bytes.Index(raw, []byte(after))
	if i < 0 {
		t.Fatalf("no %q", after)
	}
	i += bytes.Index(raw[i:], []byte("\r\n\r\n")) + 4
	j := bytes.Index(raw[i:], []byte("\r\n"+until))
	if j < 0 {
		t.Fatalf("no %q after %q", until, after)
	}
	return int64(j)
}

func TestParseAlternativeQuotedPrintableUTF8(t *testing.T) {
	raw := crlf(`
From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>
To: a@example.com
Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus =?iso-8859-1?q?M=FCnchen?=
Date: Tue, 4 Jun 2024 10:00:00 +0200
Content-Type: multipart/alternative; boundary="alt"

preamble
--alt
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Gr=C3=BC=C3=9Fe aus M=C3=BCnchen, sch=C3=B6ne Stra=C3=9Fe. Ein sehr langer Sa=
tz mit weichem Umbruch.
--alt
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: base64

PHA+R3L832UgPGI+YXVzPC9iPiBN/G5jaGVuPC9wPjxzdHlsZT5wIHtjb2xvcjogcmVkfTwvc3R5
bGU+
--alt--
epilogue
`)
	pm := parse(t, raw)
	b := pm.Body
	if b.Type != "multipart" || b.Subtype != "alternative" || len(b.Children) != 2 {
		t.Fatalf("body %s/%s with %d children", b.Type, b.Subtype, len(b.Children))
	}
	txt, htm := b.Children[0], b.Children[1]
	if txt.Type != "text" || txt.Subtype != "plain" || txt.Params["charset"] != "utf-8" || txt.Encoding != "quoted-printable" {
		t.Fatalf("text part %+v", txt)
	}
	if want := sizeOf(t, raw, "charset=\"utf-8\"", "--alt"); txt.Size != want || txt.Lines != 2 {
		t.Fatalf("text part size %d lines %d, want %d 2", txt.Size, txt.Lines, want)
	}
	if want := sizeOf(t, raw, "iso-8859-1\r\nContent-Transfer-Encoding: base64", "--alt--"); htm.Size != want || htm.Lines != 2 {
		t.Fatalf("html part size %d lines %d, want %d 2", htm.Size, htm.Lines, want)
	}
	for _, w := range []string{"Grüße aus München, schöne Straße.", "langer Satz mit", "Grüße aus München"} {
		if !strings.Contains(pm.Text, w) {
			t.Errorf("Text %q lacks %q", pm.Text, w)
		}
	}
	for _, w := range []string{"<b>", "color", "=C3", "preamble", "epilogue"} {
		if strings.Contains(pm.Text, w) {
			t.Errorf("Text %q has %q", pm.Text, w)
		}
	}
	if pm.Envelope.Subject != "Grüße aus München" {
		t.Errorf("subject %q", pm.Envelope.Subject)
	}
	if f := pm.Envelope.From; len(f) != 1 || f[0] != (Address{"Jürgen Müller", "jm", "example.de"}) {
		t.Errorf("from %+v", f)
	}
	if !reflect.DeepEqual(pm.Envelope.Sender, pm.Envelope.From) || !reflect.DeepEqual(pm.Envelope.ReplyTo, pm.Envelope.From) {
		t.Errorf("sender %+v reply-to %+v: want From", pm.Envelope.Sender, pm.Envelope.ReplyTo)
	}
	if !strings.Contains(pm.Headers, "from: Jürgen Müller <jm@example.de>\n") || !strings.Contains(pm.Headers, "subject: Grüße aus München\n") {
		t.Errorf("Headers %q", pm.Headers)
	}
	if want := time.Date(2024, 6, 4, 8, 0, 0, 0, time.UTC); !pm.Envelope.Date.Equal(want) {
		t.Errorf("date %v", pm.Envelope.Date)
	}
	if want := int64(bytes.Index(raw, []byte("\r\n\r\n")) + 4); pm.HeaderSize != want {
		t.Errorf("HeaderSize %d, want %d", pm.HeaderSize, want)
	}
}

func TestParseRFC2047(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain subject", "plain subject"},
		{"=?UTF-8?B?w6nDqMOg?=", "éèà"},
		{"=?utf-8?q?hello_world?=", "hello world"},
		{"=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"},
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},                // RFC 2047 §8: space between words dropped
		{"=?utf-8?q?a?=  x  =?utf-8?q?b?=", "a  x  b"},       // text between words kept
		{"=?UTF-8?B?5pel5pys?= =?UTF-8?B?6Kqe?=", "日本語"},     // characters whole in each word
		{"=?UTF-8?B?5pel5g==?= =?UTF-8?B?nKzoqp4=?=", "日本語"}, // a character split across two words
		{"=?utf-8*en?q?lang?=", "lang"},                      // RFC 2231 §5 language
		{"=?koi8-r?b?8NLJ18XU?=", "Привет"},
		{"=?x-unknown-cs?q?abc?=", "abc"},
		{"=?utf-8?x?bad?= =?utf-8?q", "=?utf-8?x?bad?= =?utf-8?q"},
		{"caf\xe9", "café"}, // raw Latin-1 in a header
		{"Grüße", "Grüße"},  // raw UTF-8 (RFC 6532)
		{"=?=?=?=?", "=?=?=?=?"},
	} {
		if got := decodeText(tc.in); got != tc.want {
			t.Errorf("decodeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	pm := parse(t, crlf("Subject: =?utf-8?q?Caf=C3=A9?=\n =?utf-8?b?IOKYlQ==?=\n\nhi\n"))
	if pm.Envelope.Subject != "Café ☕" {
		t.Errorf("folded subject %q", pm.Envelope.Subject)
	}
}

// The RFC 2047 decoder must not rescan: mime.WordDecoder is quadratic on
// this shape, which fits in one header section.
func BenchmarkParseRFC2047Hostile(b *testing.B) {
	v := strings.Repeat("=?a?z?", 40000) + "?="
	for b.Loop() {
		decodeText(v)
	}
}

func TestParseAddresses(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Address
	}{
		{`a@b.c`, []Address{{"", "a", "b.c"}}},
		{`"Doe, John" <jd@x.org>, b@y`, []Address{{"Doe, John", "jd", "x.org"}, {"", "b", "y"}}},
		{`John Q. Public <jqp@x>`, []Address{{"John Q. Public", "jqp", "x"}}},
		{`jqp@x (John Public)`, []Address{{"John Public", "jqp", "x"}}},
		{`team: a@x, "B" <b@y>; c@z`, []Address{{"", "a", "x"}, {"B", "b", "y"}, {"", "c", "z"}}},
		{`undisclosed-recipients:;`, nil},
		{`<@route,@r2:u@h>`, []Address{{"", "u", "h"}}},
		{`"a b"@x`, []Address{{"", "a b", "x"}}},
		{`=?utf-8?q?Z=C3=B6e?= <z@x>`, []Address{{"Zöe", "z", "x"}}},
		{`"=?utf-8?q?Z=C3=B6e?=" <z@x>`, []Address{{"Zöe", "z", "x"}}},
		{`garbage without at, ok@x`, []Address{{"", "garbage without at", ""}, {"", "ok", "x"}}},
		{`,, ,a@x,,`, []Address{{"", "a", "x"}}},
		{`Broken <a@x`, []Address{{"Broken", "a", "x"}}},
		{`Zoë <zoe@exämple.org>`, []Address{{"Zoë", "zoe", "exämple.org"}}},
	} {
		got := appendAddressList(nil, tc.in, MaxAddresses)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseDates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // RFC 3339, "" for zero
	}{
		{"Tue, 4 Jun 2024 10:00:00 +0200", "2024-06-04T10:00:00+02:00"},
		{"4 Jun 2024 10:00:00 +0200 (CEST)", "2024-06-04T10:00:00+02:00"},
		{"Tue,  4 Jun 2024 10:00:00 +0200 GMT", "2024-06-04T10:00:00+02:00"},
		{"Tue Jun  4 10:00:00 2024", "2024-06-04T10:00:00Z"},
		{"2024-06-04T10:00:00Z", "2024-06-04T10:00:00Z"},
		{"Tue, 4 Jun 2024 10:00:00 +9900", "2024-06-04T10:00:00Z"}, // zone dropped: JSON cannot carry it
		{"yesterday", ""},
		{"", ""},
	} {
		got := parseDate(tc.in)
		s := ""
		if !got.IsZero() {
			s = got.Format(time.RFC3339)
		}
		if s != tc.want {
			t.Errorf("parseDate(%q) = %q, want %q", tc.in, s, tc.want)
		}
		if _, err := json.Marshal(got); err != nil {
			t.Errorf("parseDate(%q): json: %v", tc.in, err)
		}
	}
}

func TestParseContentParams(t *testing.T) {
	pm := parse(t, crlf(`
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: APPLICATION/PDF; NAME="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="
Content-Disposition: attachment;
 filename*0*=utf-8''%E2%82%AC%20rate;
 filename*1=" list.pdf"; size=12
Content-Transfer-Encoding: BASE64
Content-ID: <part1@x>
Content-Description: =?utf-8?q?Lebenslauf_=E2=82=AC?=
Content-Language: en, de
Content-Location: http://x/y
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

AAAA
--b
Content-Type: text/plain; charset="utf-8"; charset=latin1; format=flowed; delsp=yes

body
--b
Content-Type: garbage
Content-Type: text/html

x
--b--
`))
	c := pm.Body.Children
	if len(c) != 3 {
		t.Fatalf("%d children", len(c))
	}
	want := BodyPart{
		Type: "application", Subtype: "pdf", Params: map[string]string{"name": "résumé.pdf"},
		ID: "<part1@x>", Description: "Lebenslauf €", Encoding: "base64", Size: 4,
		MD5: "Q2hlY2sgSW50ZWdyaXR5IQ==", Disposition: "attachment",
		DispositionParams: map[string]string{"filename": "€ rate list.pdf", "size": "12"},
		Language:          []string{"en", "de"}, Location: "http://x/y",
	}
	if !reflect.DeepEqual(c[0], want) {
		t.Errorf("attachment:\n got %+v\nwant %+v", c[0], want)
	}
	if p := c[1].Params; p["charset"] != "utf-8" || p["format"] != "flowed" || p["delsp"] != "yes" {
		t.Errorf("params %v", p)
	}
	// Content-Type without a subtype is invalid: RFC 2045 §5.2 default.
	if c[2].Type != "text" || c[2].Subtype != "plain" || c[2].Params["charset"] != "us-ascii" || c[2].Lines != 1 {
		t.Errorf("defaulted part %+v", c[2])
	}
}

func TestParseForwardedMessage(t *testing.T) {
	raw := crlf(`
From: a@x
Subject: Fwd: report
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

see attached
--outer
Content-Type: message/rfc822
Content-Disposition: attachment

From: "Bob B." <bob@y.org>
To: team@y.org
Cc: c@y.org
Reply-To: list@y.org
Subject: =?utf-8?q?Quarterly_r=C3=A9port?=
Message-ID: <inner.1@y.org>
In-Reply-To: <p1@y.org> <p2@y.org>
Date: Mon, 3 Jun 2024 09:00:00 +0000
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8

inner words
--inner--

--outer--
`)
	pm := parse(t, raw)
	if len(pm.Body.Children) != 2 {
		t.Fatalf("%d children", len(pm.Body.Children))
	}
	m := pm.Body.Children[1]
	if m.Type != "message" || m.Subtype != "rfc822" || m.Envelope == nil || m.Message == nil {
		t.Fatalf("attachment %+v", m)
	}
	e := m.Envelope
	if e.Subject != "Quarterly réport" || e.MessageID != "inner.1@y.org" ||
		!reflect.DeepEqual(e.InReplyTo, []string{"p1@y.org", "p2@y.org"}) ||
		!reflect.DeepEqual(e.From, []Address{{"Bob B.", "bob", "y.org"}}) ||
		!reflect.DeepEqual(e.Sender, e.From) ||
		!reflect.DeepEqual(e.ReplyTo, []Address{{"", "list", "y.org"}}) ||
		!reflect.DeepEqual(e.Cc, []Address{{"", "c", "y.org"}}) ||
		!e.Date.Equal(time.Date(2024, 6, 3, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("inner envelope %+v", e)
	}
	if m.Message.Type != "multipart" || m.Message.Subtype != "alternative" || len(m.Message.Children) != 1 {
		t.Errorf("inner body %+v", m.Message)
	}
	// The message/rfc822 body runs from its blank line to the CRLF before --outer--.
	start := bytes.Index(raw, []byte("attachment\r\n\r\n")) + len("attachment\r\n\r\n")
	end := bytes.Index(raw, []byte("\r\n--outer--"))
	if m.Size != int64(end-start) || m.Lines != refLines(raw[start:end]) {
		t.Errorf("size %d lines %d, want %d %d", m.Size, m.Lines, end-start, refLines(raw[start:end]))
	}
	if !strings.Contains(pm.Text, "inner words") || !strings.Contains(pm.Text, "see attached") {
		t.Errorf("Text %q", pm.Text)
	}
	if pm.Envelope.Subject != "Fwd: report" {
		t.Errorf("outer subject %q", pm.Envelope.Subject)
	}
}

// RFC 2046 §5.1.1: the line end before a delimiter belongs to the delimiter,
// and Lines counts a last line without a line end.
func TestParseBoundaryLineEnds(t *testing.T) {
	raw := crlf(`
Content-Type: multipart/mixed; boundary=b

--b

one
--b

two

--b

--b
Content-Type: text/plain
--b--
trailing`)
	pm := parse(t, raw)
	want := []struct{ size, lines int64 }{
		{3, 1}, // "one"
		{5, 1}, // "two\r\n"
		{0, 0}, // ""
		{0, 0}, // header ends at the delimiter
	}
	if len(pm.Body.Children) != len(want) {
		t.Fatalf("%d children", len(pm.Body.Children))
	}
	for i, w := range want {
		if c := pm.Body.Children[i]; c.Size != w.size || c.Lines != w.lines {
			t.Errorf("child %d: size %d lines %d, want %d %d", i+1, c.Size, c.Lines, w.size, w.lines)
		}
	}
	lf := parse(t, bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")))
	if c := lf.Body.Children[1]; c.Size != 4 || c.Lines != 1 {
		t.Errorf("LF child 2: size %d lines %d", c.Size, c.Lines)
	}
}

func TestParseMissingCloseBoundary(t *testing.T) {
	raw := crlf(`
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

first
--b
Content-Type: text/plain

never closed
still going
`)
	pm := parse(t, raw)
	c := pm.Body.Children
	if len(c) != 2 {
		t.Fatalf("%d children", len(c))
	}
	if c[0].Size != 5 || c[1].Size != int64(len("never closed\r\nstill going\r\n")) || c[1].Lines != 2 {
		t.Errorf("sizes %d %d lines %d", c[0].Size, c[1].Size, c[1].Lines)
	}
	if !strings.Contains(pm.Text, "still going") {
		t.Errorf("Text %q", pm.Text)
	}
	// A multipart whose boundary never appears still gets one (empty) child.
	pm = parse(t, crlf("Content-Type: multipart/mixed; boundary=zz\n\nno parts here\n"))
	if len(pm.Body.Children) != 1 || pm.Body.Children[0].Size != 0 {
		t.Errorf("children %+v", pm.Body.Children)
	}
}

func TestParseMissingBlankLineAfterHeaders(t *testing.T) {
	raw := crlf("Subject: hi\nFrom: a@b\nthis line is the body\nmore: body\n")
	pm := parse(t, raw)
	if want := int64(len("Subject: hi\r\nFrom: a@b\r\n")); pm.HeaderSize != want {
		t.Errorf("HeaderSize %d, want %d", pm.HeaderSize, want)
	}
	if pm.Envelope.Subject != "hi" || pm.Body.Lines != 2 || !strings.Contains(pm.Text, "this line is the body") {
		t.Errorf("subject %q lines %d text %q", pm.Envelope.Subject, pm.Body.Lines, pm.Text)
	}
	// Only a header, no line end at all.
	pm = parse(t, []byte("Subject: only"))
	if pm.HeaderSize != 13 || pm.Body.Size != 0 || pm.Envelope.Subject != "only" {
		t.Errorf("header-only: %+v", pm)
	}
	parse(t, nil)
	parse(t, []byte("\r\n"))
}

func TestParseBinaryGarbage(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 50; i++ {
		b := make([]byte, rnd.Intn(1<<16))
		rnd.Read(b)
		if i%2 == 1 { // garbage after a plausible header
			b = append(crlf("Content-Type: multipart/mixed; boundary=x\nSubject: \xff\xfe=?utf-8?b?////?=\n\n--x\n"), b...)
		}
		parse(t, b)
	}
}

// Dovecot CVE-2024-23184: 100,000 address fields made envelope parsing
// quadratic. Fields past MaxHeaderFields are ignored, addresses are capped.
func TestParseManyAddressFields(t *testing.T) {
	raw := hostileHeaders(100000)
	pm := parse(t, raw)
	if len(pm.Envelope.To) != MaxAddresses {
		t.Errorf("To has %d addresses, want %d", len(pm.Envelope.To), MaxAddresses)
	}
	if n := strings.Count(pm.Headers, "\n"); n > MaxHeaderFields {
		t.Errorf("Headers has %d fields", n)
	}
	if pm.Body.Size != 6 {
		t.Errorf("body size %d", pm.Body.Size)
	}
}

func hostileHeaders(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "To: u%d@example.com, \"User %d\" <v%d@example.com>\r\n", i, i, i)
	}
	b.WriteString("\r\nbody\r\n")
	return b.Bytes()
}

func TestParseHugeAddressLine(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("To: ")
	for i := 0; i < 100000; i++ {
		fmt.Fprintf(&b, "u%d@example.com, ", i)
	}
	b.WriteString("last@example.com\r\nSubject: after\r\n\r\nbody")
	pm := parse(t, b.Bytes())
	if len(pm.Envelope.To) != MaxAddresses || pm.Envelope.To[999] != (Address{"", "u999", "example.com"}) {
		t.Errorf("To: %d addresses", len(pm.Envelope.To))
	}
	if pm.Envelope.Subject != "" {
		t.Errorf("subject %q kept past MaxHeaderBytes", pm.Envelope.Subject)
	}
	if pm.Body.Size != 4 {
		t.Errorf("body size %d", pm.Body.Size)
	}
}

func nested(n int) []byte {
	var b bytes.Buffer
	b.WriteString("Subject: deep\r\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ndeepest\r\n")
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.Bytes()
}

func TestParseDeepNesting(t *testing.T) {
	for _, n := range []int{MaxMIMEDepth - 2, 10000} {
		pm := parse(t, nested(n))
		if d := depth(&pm.Body); d > MaxMIMEDepth {
			t.Errorf("%d levels: depth %d", n, d)
		}
		if n < MaxMIMEDepth && !strings.Contains(pm.Text, "deepest") {
			t.Errorf("%d levels: Text %q", n, pm.Text)
		}
	}
	// Nested message/rfc822 is bounded the same way.
	raw := bytes.Repeat([]byte("Content-Type: message/rfc822\r\n\r\n"), 10000)
	pm := parse(t, raw)
	if d := depth(&pm.Body); d > MaxMIMEDepth {
		t.Errorf("message/rfc822 depth %d", d)
	}
}

func TestParseManyParts(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/mixed; boundary=p\r\n\r\n")
	for i := 0; i < 2*MaxMIMEParts; i++ {
		b.WriteString("--p\r\n\r\nx\r\n")
	}
	b.WriteString("--p--\r\n")
	pm := parse(t, b.Bytes())
	if n := len(pm.Body.Children); n >= MaxMIMEParts {
		t.Errorf("%d children", n)
	}
}

// The body is streamed: parsing 20 MB allocates far less than 20 MB, the
// Text being capped.
func TestParseLargeMessageStreams(t *testing.T) {
	const size = 20 << 20
	line := []byte("All work and no play makes Jack a dull boy. 0123456789 abcdefghij\r\n")
	header := crlf("From: a@b\nSubject: big\nContent-Type: text/plain; charset=utf-8\n\n")
	mk := func() io.Reader {
		return io.MultiReader(bytes.NewReader(header), io.LimitReader(&repeatReader{b: line}, size))
	}
	var pm *ParsedMessage
	var err error
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	pm, err = ParseMessage(mk())
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("parsing 20 MB allocated %d bytes", alloc)
	if alloc > 8<<20 {
		t.Errorf("parsing 20 MB allocated %d bytes", alloc)
	}
	if pm.Body.Size != size || pm.HeaderSize != int64(len(header)) {
		t.Errorf("size %d header %d", pm.Body.Size, pm.HeaderSize)
	}
	if n := int64(len(pm.Text)); n > MaxSearchText || n < MaxSearchText-int64(len(line)) {
		t.Errorf("Text %d bytes", n)
	}
	if want := int64((size + len(line) - 1) / len(line)); pm.Body.Lines != want {
		t.Errorf("lines %d, want %d", pm.Body.Lines, want)
	}
}

type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

type errReader struct{ r io.Reader }

func (e errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func TestParseReaderError(t *testing.T) {
	_, err := ParseMessage(errReader{bytes.NewReader(hostileHeaders(10))})
	if err != io.ErrUnexpectedEOF {
		t.Errorf("err %v", err)
	}
}

func TestParseJSONRoundTrip(t *testing.T) {
	for _, raw := range corpusMessages(t)[:50] {
		pm := parse(t, raw)
		js, err := json.Marshal(pm.Body)
		if err != nil {
			t.Fatal(err)
		}
		var back BodyPart
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		js2, err := json.Marshal(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(js, js2) {
			t.Fatalf("round trip differs:\n%s\n%s", js, js2)
		}
	}
}

// message4K is a typical small message: a multipart/alternative with
// quoted-printable text and HTML, about 4 KB.
func message4K() []byte {
	var b bytes.Buffer
	b.WriteString("Received: from mx.example.net (mx.example.net [192.0.2.1]) by mail.example.com\r\n" +
		" with ESMTPS id abc123; Tue, 4 Jun 2024 10:00:00 +0200\r\n" +
		"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>\r\n" +
		"To: Alice <alice@example.com>, bob@example.com\r\n" +
		"Cc: \"Carol, C.\" <carol@example.com>\r\n" +
		"Subject: =?utf-8?q?Besprechung_morgen_=E2=80=93_Agenda?=\r\n" +
		"Date: Tue, 4 Jun 2024 10:00:00 +0200\r\n" +
		"Message-ID: <20240604100000.1234@example.de>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"=_alt_42\"\r\n\r\n" +
		"--=_alt_42\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	for b.Len() < 2300 {
		b.WriteString("Gr=C3=BC=C3=9Fe, the meeting agenda for tomorrow covers the budget and th=\r\ne release schedule.\r\n")
	}
	b.WriteString("--=_alt_42\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>")
	for b.Len() < 4000 {
		b.WriteString("<p>Gr&uuml;&szlig;e, the <b>meeting</b> agenda for tomorrow.</p>\r\n")
	}
	b.WriteString("</body></html>\r\n--=_alt_42--\r\n")
	return b.Bytes()
}

func BenchmarkParseMessage4K(b *testing.B) {
	raw := message4K()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessage(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseMessageHostileHeaders parses 100,000 To fields
// (CVE-2024-23184); it must stay linear: well under a second.
func BenchmarkParseMessageHostileHeaders(b *testing.B) {
	raw := hostileHeaders(100000)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessage(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseCorpus(b *testing.B) {
	msgs := corpusMessages(b)
	var n int64
	for _, m := range msgs {
		n += int64(len(m))
	}
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			if _, err := ParseMessage(bytes.NewReader(m)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// A CRLF split across the read buffer must still be one line end: bodies
// with lines around the buffer size keep exact sizes.
func TestParseLongLines(t *testing.T) {
	for n := lineBufSize - 4; n <= lineBufSize+4; n++ {
		for _, tail := range []string{"\r\n", "\r\n\r\n"} {
			body := strings.Repeat("x", n) + tail
			raw := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + body + "--b--\r\n")
			pm := parse(t, raw)
			c := pm.Body.Children[0]
			want := int64(len(body) - 2)
			if c.Size != want || c.Lines != 1 {
				t.Errorf("line of %d + %q: size %d lines %d, want %d 1", n, tail, c.Size, c.Lines, want)
			}
			if !strings.Contains(pm.Text, strings.Repeat("x", n)) {
				t.Errorf("line of %d: text has %d bytes", n, len(pm.Text))
			}
		}
	}
}
