package storage

import (
	"bytes"
	"encoding/base64"
	"html"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// ---- RFC 2047 and charsets ----

// decodeText decodes RFC 2047 encoded words in an unstructured value and
// returns valid UTF-8 (bytes that are not UTF-8 are read as Latin-1). Unlike
// mime.WordDecoder it never rescans: linear in len(v).
func decodeText(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "=?") {
		return validUTF8(v)
	}
	var out []byte
	var pend []byte // decoded bytes of adjacent words in one charset, so that characters split across words survive
	pendCS := ""
	flush := func() {
		if len(pend) > 0 {
			out = append(out, charsetToUTF8(pendCS, pend)...)
			pend = pend[:0]
		}
	}
	pos, emitted, lastEnd := 0, 0, -1
	for pos < len(v) {
		k := strings.Index(v[pos:], "=?")
		if k < 0 {
			break
		}
		k += pos
		cs, data, end, ok := encodedWord(v, k)
		if !ok {
			pos = k + 2
			continue
		}
		between := v[emitted:k]
		// RFC 2047 §6.2: white space between adjacent encoded words is dropped.
		if lastEnd != emitted || strings.Trim(between, " \t\r\n") != "" {
			flush()
			out = append(out, validUTF8(between)...)
		}
		if !strings.EqualFold(cs, pendCS) {
			flush()
		}
		pend, pendCS = append(pend, data...), cs
		pos, emitted, lastEnd = end, end, end
	}
	flush()
	out = append(out, validUTF8(v[emitted:])...)
	return string(out)
}

// encodedWord parses "=?charset?E?text?=" at v[k:].
func encodedWord(v string, k int) (cs string, data []byte, end int, ok bool) {
	i := k + 2
	q := strings.IndexByte(v[i:min(len(v), i+76)], '?')
	if q <= 0 {
		return "", nil, 0, false
	}
	cs = v[i : i+q]
	if strings.ContainsAny(cs, " \t\r\n") {
		return "", nil, 0, false
	}
	cs, _, _ = strings.Cut(cs, "*") // RFC 2231 §5 language suffix
	i += q + 1
	if i+2 > len(v) || v[i+1] != '?' {
		return "", nil, 0, false
	}
	enc := v[i] | 0x20
	i += 2
	q = strings.IndexByte(v[i:], '?')
	if q < 0 || i+q+1 >= len(v) || v[i+q+1] != '=' {
		return "", nil, 0, false
	}
	text := v[i : i+q]
	switch enc {
	case 'b':
		t := strings.TrimRight(text, "=")
		d, err := base64.RawStdEncoding.DecodeString(t)
		if err != nil {
			return "", nil, 0, false
		}
		data = d
	case 'q':
		data = make([]byte, 0, len(text))
		for j := 0; j < len(text); j++ {
			c := text[j]
			switch {
			case c == '_':
				c = ' '
			case c == '=' && j+2 < len(text) && isHex(text[j+1]) && isHex(text[j+2]):
				c = unhex(text[j+1])<<4 | unhex(text[j+2])
				j += 2
			}
			data = append(data, c)
		}
	default:
		return "", nil, 0, false
	}
	return cs, data, i + q + 2, true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

func isUTF8Charset(cs string) bool {
	switch strings.ToLower(strings.TrimSpace(cs)) {
	case "", "utf-8", "utf8", "x-utf_8j", "us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968", "x-unknown", "unknown-8bit":
		return true
	}
	return false
}

// charsetToUTF8 converts b from cs; an unknown charset keeps the bytes
// (read as UTF-8, else Latin-1).
func charsetToUTF8(cs string, b []byte) string {
	if !isUTF8Charset(cs) {
		if d := decoderFor(cs); d != nil {
			if out, err := d.Bytes(b); err == nil {
				return toUTF8(out)
			}
		}
	}
	return toUTF8(b)
}

// decoderFor finds a MIME charset the way go-message's charset package does
// (IANA names, then WHATWG labels), but gives a decoder for whole buffers:
// its streaming reader allocates 8 KiB per call, which a header of many
// short encoded words in alternating charsets would turn into a CPU sink.
func decoderFor(cs string) *encoding.Decoder {
	cs = strings.TrimSpace(cs)
	enc, err := ianaindex.MIME.Encoding(cs)
	if enc == nil || err != nil {
		enc, err = ianaindex.MIME.Encoding("cs" + cs)
	}
	if enc == nil || err != nil {
		enc, err = htmlindex.Get(cs)
	}
	if enc == nil || err != nil {
		return nil
	}
	return enc.NewDecoder()
}

// validUTF8 returns a copy of s (never a substring: the result must not
// pin a whole header section in memory), each byte that is not part of
// valid UTF-8 read as Latin-1.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return strings.Clone(s)
	}
	return toUTF8([]byte(s))
}

// toUTF8 returns b as a string, each byte that is not part of valid UTF-8
// read as Latin-1.
func toUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	d, _ := appendUTF8(make([]byte, 0, len(b)+len(b)/4), b, -1)
	return string(d)
}

// appendUTF8 appends b to dst as valid UTF-8 (invalid bytes read as
// Latin-1), CRLF turned into LF, stopping before dst would pass limit bytes
// (no limit if limit < 0); complete is false if it stopped there.
func appendUTF8(dst, b []byte, limit int) (_ []byte, complete bool) {
	for len(b) > 0 {
		run := b
		if k := bytes.IndexByte(b, '\r'); k >= 0 {
			run = b[:k]
		}
		if !utf8.Valid(run) {
			run = run[:validPrefix(run)]
		}
		if limit >= 0 && len(dst)+len(run) > limit {
			return append(dst, cutUTF8(run, limit-len(dst))...), false
		}
		dst = append(dst, run...)
		b = b[len(run):]
		if len(b) == 0 {
			break
		}
		// b[0] is '\r' or a byte that is not UTF-8.
		if b[0] == '\r' && len(b) > 1 && b[1] == '\n' {
			b = b[1:]
			continue
		}
		var enc [utf8.UTFMax]byte
		seq := enc[:utf8.EncodeRune(enc[:], rune(b[0]))] // Latin-1
		if limit >= 0 && len(dst)+len(seq) > limit {
			return dst, false
		}
		dst = append(dst, seq...)
		b = b[1:]
	}
	return dst, true
}

// cutUTF8 returns valid UTF-8 b cut to at most n bytes at a character
// boundary.
func cutUTF8(b []byte, n int) []byte {
	for n > 0 && n < len(b) && !utf8.RuneStart(b[n]) {
		n--
	}
	return b[:min(n, len(b))]
}

// validPrefix returns the length of the longest valid UTF-8 prefix of b.
func validPrefix(b []byte) int {
	n := 0
	for n < len(b) {
		if b[n] < utf8.RuneSelf {
			n++
			continue
		}
		r, size := utf8.DecodeRune(b[n:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		n += size
	}
	return n
}

// ---- text for SEARCH BODY/TEXT ----

// textAcc collects the decoded text of the text/* parts, at most
// MaxSearchText bytes.
type textAcc struct {
	out  []byte
	full bool
}

const (
	encIdentity = iota
	encQP
	encBase64
)

// textSink decodes one part's transfer encoding as its lines stream by,
// keeping at most limit decoded bytes.
type textSink struct {
	enc     int
	charset string
	html    bool
	// direct: UTF-8 text decodes straight into textAcc.out (buf starts as
	// it); otherwise into buf, converted at the end.
	direct bool
	sepAt  int // len(textAcc.out) before this part and its separator
	start  int // where this part's text starts in buf
	buf    []byte
	limit  int // len(buf) stops growing here
	// quoted-printable state: 0 plain, 1 after '=', 2 after '=' and a hex
	// digit, 3 after '=' and white space (soft line break with padding)
	qp   int
	qpHi byte
	// base64 state
	b64     uint32
	b64n    int
	b64done bool
}

func (a *textAcc) begin(part *BodyPart) *textSink {
	room := MaxSearchText - len(a.out) - 1
	if a.full || room <= 0 {
		return nil
	}
	s := &textSink{charset: part.Params["charset"], html: part.Subtype == "html", sepAt: len(a.out)}
	switch part.Encoding {
	case "quoted-printable":
		s.enc = encQP
	case "base64":
		s.enc = encBase64
	}
	s.direct = !s.html && isUTF8Charset(s.charset)
	if s.direct {
		s.buf = a.out
		if len(s.buf) > 0 {
			s.buf = append(s.buf, '\n')
		}
		s.start = len(s.buf)
		a.out = nil // owned by s until end
	}
	s.limit = s.start + room + room/4 + 64 // decoding CRLF and HTML shrinks the text
	switch cs := strings.ToLower(s.charset); {
	case strings.HasPrefix(cs, "utf-16"), strings.HasPrefix(cs, "ucs-2"):
		s.limit = 2*room + 64
	case strings.HasPrefix(cs, "utf-32"), strings.HasPrefix(cs, "ucs-4"):
		s.limit = 4*room + 64
	}
	return s
}

func (s *textSink) write(b []byte) {
	if len(s.buf) >= s.limit {
		return
	}
	if len(s.buf)+len(b) > cap(s.buf) {
		// Double, up to the limit: append alone grows large slices by 1.25x,
		// allocating several times the final size.
		c := min(max(2*cap(s.buf), len(s.buf)+len(b), 512), s.limit+4)
		s.buf = append(make([]byte, 0, c), s.buf...)
	}
	switch s.enc {
	case encIdentity:
		s.buf = append(s.buf, b[:min(len(b), s.limit-len(s.buf))]...)
	case encQP:
		s.writeQP(b)
	case encBase64:
		s.writeBase64(b)
	}
}

// writeQP decodes quoted-printable (RFC 2045 §6.7) leniently: a '=' that
// starts no valid escape is kept as is.
func (s *textSink) writeQP(b []byte) {
	for i := 0; i < len(b) && len(s.buf) < s.limit; i++ {
		c := b[i]
		switch s.qp {
		case 0:
			if c == '=' {
				s.qp = 1
				continue
			}
			run := b[i:]
			if k := bytes.IndexByte(run, '='); k >= 0 {
				run = run[:k]
			}
			run = run[:min(len(run), s.limit-len(s.buf))]
			s.buf = append(s.buf, run...)
			i += len(run) - 1
		case 1:
			switch {
			case c == '\n': // soft line break
				s.qp = 0
			case c == ' ' || c == '\t' || c == '\r':
				s.qp = 3
			case isHex(c):
				s.qpHi, s.qp = c, 2
			default:
				s.buf = append(s.buf, '=', c)
				s.qp = 0
			}
		case 2:
			s.qp = 0
			if isHex(c) {
				s.buf = append(s.buf, unhex(s.qpHi)<<4|unhex(c))
			} else {
				s.buf = append(s.buf, '=', s.qpHi)
				i--
			}
		case 3:
			if c == '\n' {
				s.qp = 0
			} else if c != ' ' && c != '\t' && c != '\r' {
				s.qp = 0
				i--
			}
		}
	}
}

var b64val = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// writeBase64 decodes base64 leniently: characters outside the alphabet are
// skipped, and '=' ends the data.
func (s *textSink) writeBase64(b []byte) {
	for _, c := range b {
		if s.b64done || len(s.buf) >= s.limit {
			return
		}
		if c == '=' {
			s.flushBase64()
			s.b64done = true
			return
		}
		v := b64val[c]
		if v == 0xff {
			continue
		}
		s.b64 = s.b64<<6 | uint32(v)
		s.b64n++
		if s.b64n == 4 {
			s.buf = append(s.buf, byte(s.b64>>16), byte(s.b64>>8), byte(s.b64))
			s.b64, s.b64n = 0, 0
		}
	}
}

func (s *textSink) flushBase64() {
	switch s.b64n {
	case 2:
		s.buf = append(s.buf, byte(s.b64>>4))
	case 3:
		s.buf = append(s.buf, byte(s.b64>>10), byte(s.b64>>2))
	}
	s.b64, s.b64n = 0, 0
}

func (a *textAcc) end(s *textSink) {
	if s.enc == encBase64 && !s.b64done {
		s.flushBase64()
	}
	if s.enc == encQP && s.qp == 2 {
		s.buf = append(s.buf, '=', s.qpHi)
	}
	b := s.buf[s.start:]
	if s.direct {
		a.out = s.buf[:s.sepAt]
		if bytes.IndexByte(b, '\r') < 0 && utf8.Valid(b) {
			// The common case: the text is in place already.
			if len(bytes.TrimSpace(b)) > 0 {
				a.out = s.buf
				if len(a.out) > MaxSearchText {
					a.out = cutUTF8(a.out, MaxSearchText)
					a.full = true
				}
			}
			return
		}
		b = bytes.Clone(b)
	}
	if !isUTF8Charset(s.charset) {
		b = []byte(charsetToUTF8(s.charset, b))
	}
	if s.html {
		b = stripHTML(b)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	if len(a.out) > 0 {
		a.out = append(a.out, '\n')
	}
	a.out = slices.Grow(a.out, min(len(b), MaxSearchText-len(a.out)))
	var complete bool
	a.out, complete = appendUTF8(a.out, b, MaxSearchText)
	a.full = !complete
}

// stripHTML drops tags, comments, scripts and styles, and unescapes
// entities: crude, but enough for SEARCH.
func stripHTML(b []byte) []byte {
	out := make([]byte, 0, len(b)/2)
	for i := 0; i < len(b); {
		if b[i] != '<' {
			k := bytes.IndexByte(b[i:], '<')
			if k < 0 {
				k = len(b) - i
			}
			out = append(out, b[i:i+k]...)
			i += k
			continue
		}
		if bytes.HasPrefix(b[i:], []byte("<!--")) {
			j := bytes.Index(b[i+4:], []byte("-->"))
			if j < 0 {
				break
			}
			i += 4 + j + 3
			continue
		}
		j := bytes.IndexByte(b[i:], '>')
		if j < 0 {
			break
		}
		var nb [8]byte
		name := tagName(&nb, b[i+1:i+j])
		i += j + 1
		switch string(name) {
		case "script":
			i = skipToClose(b, i, "script")
		case "style":
			i = skipToClose(b, i, "style")
		case "br", "p", "/p", "div", "/div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "/table":
			out = append(out, '\n')
		case "td", "th":
			out = append(out, ' ')
		}
	}
	if bytes.IndexByte(out, '&') < 0 {
		return out
	}
	return []byte(html.UnescapeString(string(out)))
}

// tagName lower-cases the name at the start of tag into buf.
func tagName(buf *[8]byte, tag []byte) []byte {
	n := 0
	for n < len(tag) && n < len(buf) {
		c := tag[n]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '/' && n == 0) {
			break
		}
		buf[n] = c
		n++
	}
	return buf[:n]
}

// skipToClose returns the offset after "</name...>" at or after i.
func skipToClose(b []byte, i int, name string) int {
	for {
		j := bytes.Index(b[i:], []byte("</"))
		if j < 0 {
			return len(b)
		}
		i += j + 2
		if len(b)-i >= len(name) && strings.EqualFold(string(b[i:i+len(name)]), name) {
			if k := bytes.IndexByte(b[i:], '>'); k >= 0 {
				return i + k + 1
			}
			return len(b)
		}
	}
}
