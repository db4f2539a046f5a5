package storage

// Parse once: at delivery every message goes through ParseMessage a single
// time, and what IMAP needs (ENVELOPE, BODYSTRUCTURE, header fields and text
// for SEARCH) is stored beside the raw bytes as JSON.
//
// Invariants of the parser:
//   - One pass over the raw message, line by line, through a 4 KiB bufio
//     buffer: bodies are counted and decoded as streams, never held whole.
//     Memory is bounded by the caps below (header blocks, part count, text).
//   - Linear time on any input: header blocks, address lists, RFC 2047 words
//     and MIME nesting are all capped, and no step rescans what it has read.
//   - Sizes are exact octets of the raw message (RFC 2046 §5.1.1: the line
//     end before a boundary delimiter belongs to the delimiter), so that
//     BODYSTRUCTURE sizes match BODY[n] fetches.
//   - Lines (text/* and message/rfc822) counts line ends in the body, plus one
//     when the body is not empty and does not end with a line end.
//   - It never fails on malformed mail; the result is always a valid
//     BODYSTRUCTURE: a multipart has at least one child (an empty text/plain
//     is supplied, as Dovecot does), and a message/rfc822 or message/global
//     part always has Envelope and Message. Parts that cannot be structured
//     (nesting past MaxMIMEDepth, too many parts, a multipart without a
//     boundary, a message/rfc822 in base64) become application/octet-stream
//     leaves, still sized.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"html"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

type Address struct {
	Name    string `json:"n,omitempty"`
	Mailbox string `json:"m,omitempty"`
	Host    string `json:"h,omitempty"`
}

type Envelope struct {
	Date      time.Time `json:"d,omitempty"` // zero if missing/unparseable
	Subject   string    `json:"s,omitempty"` // RFC 2047-decoded to UTF-8
	From      []Address `json:"f,omitempty"`
	Sender    []Address `json:"se,omitempty"` // defaults to From when absent (RFC 3501 ENVELOPE rule)
	ReplyTo   []Address `json:"r,omitempty"`  // defaults to From when absent
	To        []Address `json:"t,omitempty"`
	Cc        []Address `json:"c,omitempty"`
	Bcc       []Address `json:"b,omitempty"`
	InReplyTo []string  `json:"i,omitempty"`  // msg-ids without <>
	MessageID string    `json:"mi,omitempty"` // without <>
}

// BodyPart is one node of BODYSTRUCTURE (RFC 9051 §7.5.2).
type BodyPart struct {
	Type              string            `json:"t"`            // lower-case, e.g. "text"; default text/plain
	Subtype           string            `json:"st"`           // lower-case
	Params            map[string]string `json:"p,omitempty"`  // keys lower-case (charset, name, boundary...)
	ID                string            `json:"id,omitempty"` // Content-ID as written, with <>
	Description       string            `json:"de,omitempty"`
	Encoding          string            `json:"e,omitempty"` // Content-Transfer-Encoding, lower-case; "" means 7bit
	Size              int64             `json:"sz"`          // octets of the (still encoded) body as stored
	Lines             int64             `json:"l,omitempty"` // for text/* and message/rfc822: lines of the body
	MD5               string            `json:"md5,omitempty"`
	Disposition       string            `json:"di,omitempty"` // lower-case, e.g. "attachment"
	DispositionParams map[string]string `json:"dp,omitempty"`
	Language          []string          `json:"la,omitempty"`
	Location          string            `json:"lo,omitempty"`
	Children          []BodyPart        `json:"c,omitempty"`  // multipart/*
	Envelope          *Envelope         `json:"en,omitempty"` // message/rfc822
	Message           *BodyPart         `json:"m,omitempty"`  // message/rfc822: the inner body structure
}

type ParsedMessage struct {
	Envelope   Envelope
	Body       BodyPart
	HeaderSize int64  // octets of the top-level header section including the blank line
	Headers    string // top-level fields, one per line "name: value\n", name lower-case, value unfolded and decoded; at most MaxHeaderBytes
	Text       string // decoded text of the text/* parts joined by "\n"; at most MaxSearchText bytes
}

// Limits that keep a hostile message linear.
const (
	MaxHeaderFields = 1000      // fields kept per header section; more are ignored for parsing (raw message unchanged)
	MaxHeaderBytes  = 256 << 10 // per header section kept for parsing
	MaxAddresses    = 1000      // per address field in the envelope
	MaxMIMEDepth    = 20        // nesting beyond this is treated as an opaque leaf (application/octet-stream: still sized)
	MaxMIMEParts    = 10000
	MaxSearchText   = 1 << 20
)

const (
	lineBufSize    = 4096 // also the longest boundary line and field name recognised
	maxBoundaryLen = 256  // RFC 2046 allows 70; be lenient
	maxParams      = 64   // parameters kept per Content-Type / Content-Disposition
	maxMsgIDs      = 100  // msg-ids kept from In-Reply-To
)

// ParseMessage reads the whole raw message (RFC 5322, CRLF or LF line ends)
// once, streaming. It never fails on malformed mail; it returns an error only
// when r returns one.
func ParseMessage(r io.Reader) (*ParsedMessage, error) {
	p := &parser{lr: lineReader{br: bufio.NewReaderSize(r, lineBufSize)}}
	e, err := p.entity(1, nil, false)
	if err != nil {
		return nil, err
	}
	return &ParsedMessage{
		Envelope:   envelopeOf(e.header),
		Body:       e.part,
		HeaderSize: e.bodyStart,
		Headers:    e.header.searchText(),
		Text:       string(p.text.out),
	}, nil
}

// ---- line reader ----

// segment is a line, or a piece of a line longer than the read buffer.
type segment struct {
	data  []byte // content without the line end; valid until the next read
	eol   int    // length of the line end: 2 (CRLF), 1 (LF), 0 (line goes on, or end of stream)
	start bool   // data begins a line
	last  bool   // the stream ends after data
	off   int64  // stream offset of data
	eols  int64  // line ends in the stream before data
}

type lineReader struct {
	br     *bufio.Reader
	off    int64 // offset of the next unread byte
	eols   int64 // line ends read so far
	mid    bool  // inside a line
	eof    bool
	seg    segment
	pushed bool // seg was given back with unread
}

func (lr *lineReader) next() (*segment, error) {
	if lr.pushed {
		lr.pushed = false
	} else if err := lr.read(); err != nil {
		return nil, err
	}
	s := &lr.seg
	lr.off = s.off + int64(len(s.data)+s.eol)
	lr.eols = s.eols
	if s.eol > 0 {
		lr.eols++
	}
	lr.mid = s.eol == 0 && !s.last
	return s, nil
}

// unread gives back the segment last returned by next.
func (lr *lineReader) unread() {
	lr.pushed = true
	lr.off, lr.eols, lr.mid = lr.seg.off, lr.seg.eols, !lr.seg.start
}

func (lr *lineReader) read() error {
	s := &lr.seg
	s.off, s.eols, s.start = lr.off, lr.eols, !lr.mid
	if lr.eof {
		s.data, s.eol, s.last = nil, 0, true
		return nil
	}
	b, err := lr.br.ReadSlice('\n')
	switch err {
	case nil:
		s.last = false
		if n := len(b); n >= 2 && b[n-2] == '\r' {
			s.data, s.eol = b[:n-2], 2
		} else {
			s.data, s.eol = b[:n-1], 1
		}
	case bufio.ErrBufferFull:
		// A CR at the end of the buffer may start a CRLF: keep it for the
		// next read so that line ends are never split.
		if b[len(b)-1] == '\r' {
			_ = lr.br.UnreadByte()
			b = b[:len(b)-1]
		}
		s.data, s.eol, s.last = b, 0, false
	case io.EOF:
		lr.eof = true
		s.data, s.eol, s.last = b, 0, true
	default:
		return err
	}
	return nil
}

// matchBoundary reports which of the enclosing boundaries line delimits
// (RFC 2046 §5.1.1: any of them ends a part), and whether it is a close
// delimiter.
func matchBoundary(line []byte, bounds []string) (int, bool) {
	if len(line) < 3 || line[0] != '-' || line[1] != '-' {
		return -1, false
	}
	rest := line[2:]
	// Outermost first: a multipart that reuses an enclosing boundary gets no
	// parts, as in go-message and Python's email package.
	for i := range bounds {
		b := bounds[i]
		if len(rest) < len(b) || string(rest[:len(b)]) != b {
			continue
		}
		tail := rest[len(b):]
		if len(tail) >= 2 && tail[0] == '-' && tail[1] == '-' {
			return i, true // anything may follow a close delimiter
		}
		if len(bytes.Trim(tail, " \t")) == 0 {
			return i, false
		}
	}
	return -1, false
}

// ---- MIME structure ----

type parser struct {
	lr    lineReader
	parts int
	text  textAcc
}

// term tells how and where a body region ended.
type term struct {
	bound    int   // index in bounds of the delimiter found; -1 at the end of the stream
	closing  bool  // the delimiter is a close delimiter
	delimEOL int   // length of the delimiter line's own line end
	end      int64 // offset where the region's content ends
	eols     int64 // line ends in the stream before end
	endsNL   bool  // the content before end ends with a line end
}

// readBody consumes lines until a delimiter of bounds or the end of the
// stream, giving the content to sink. pending is the length of a line end
// just before the region that belongs to the next delimiter found at once.
func (p *parser) readBody(bounds []string, pending int, sink *textSink) (term, error) {
	pendingEmpty := false // the line whose end is pending has no content
	for {
		s, err := p.lr.next()
		if err != nil {
			return term{}, err
		}
		if s.start && (s.eol > 0 || s.last) && len(bounds) > 0 {
			if i, closing := matchBoundary(s.data, bounds); i >= 0 {
				t := term{bound: i, closing: closing, delimEOL: s.eol, end: s.off - int64(pending), eols: s.eols}
				if pending > 0 {
					t.eols-- // RFC 2046: that line end belongs to the delimiter
					t.endsNL = pendingEmpty
				}
				return t, nil
			}
		}
		if pending > 0 && sink != nil {
			sink.write(newline)
		}
		pending = 0
		if sink != nil && len(s.data) > 0 {
			sink.write(s.data)
		}
		if s.eol > 0 {
			pending, pendingEmpty = s.eol, s.start && len(s.data) == 0
		}
		if s.last {
			return term{bound: -1, end: p.lr.off, eols: p.lr.eols, endsNL: s.start && len(s.data) == 0}, nil
		}
	}
}

var newline = []byte{'\n'}

type entityResult struct {
	part      BodyPart
	header    *header
	bodyStart int64
	term      term // how the body ended
}

// entity parses a header section and its body, up to a delimiter of bounds.
func (p *parser) entity(depth int, bounds []string, digest bool) (entityResult, error) {
	h, err := p.readHeader(bounds)
	if err != nil {
		return entityResult{}, err
	}
	start, startEOLs := p.lr.off, p.lr.eols
	p.parts++
	part := partFromHeader(h, digest)
	t, err := p.body(&part, depth, bounds)
	if err != nil {
		return entityResult{}, err
	}
	part.Size = max(t.end-start, 0)
	if part.Type == "text" || part.Message != nil {
		part.Lines = max(t.eols-startEOLs, 0)
		if part.Size > 0 && !t.endsNL {
			part.Lines++
		}
	}
	return entityResult{part: part, header: h, bodyStart: start, term: t}, nil
}

func (p *parser) body(part *BodyPart, depth int, bounds []string) (term, error) {
	nest := depth < MaxMIMEDepth && p.parts < MaxMIMEParts
	switch {
	case part.Type == "multipart":
		b := part.Params["boundary"]
		if !nest || b == "" || len(b) > maxBoundaryLen {
			opaque(part)
			return p.readBody(bounds, 0, nil)
		}
		return p.multipart(part, depth, append(bounds[:len(bounds):len(bounds)], b))
	case part.Type == "message" && (part.Subtype == "rfc822" || part.Subtype == "global"):
		// RFC 2046 §5.2.1: only identity encodings; anything else is opaque.
		if !nest || (part.Encoding != "" && part.Encoding != "7bit" && part.Encoding != "8bit" && part.Encoding != "binary") {
			opaque(part)
			return p.readBody(bounds, 0, nil)
		}
		inner, err := p.entity(depth+1, bounds, false)
		if err != nil {
			return term{}, err
		}
		env := envelopeOf(inner.header)
		part.Envelope, part.Message = &env, &inner.part
		return inner.term, nil
	default:
		var sink *textSink
		if part.Type == "text" {
			sink = p.text.begin(part)
		}
		t, err := p.readBody(bounds, 0, sink)
		if sink != nil {
			p.text.end(sink)
		}
		return t, err
	}
}

func (p *parser) multipart(part *BodyPart, depth int, bounds []string) (term, error) {
	own := len(bounds) - 1
	digest := part.Subtype == "digest"
	t, err := p.readBody(bounds, 0, nil) // preamble
	for err == nil && t.bound == own && !t.closing {
		if p.parts >= MaxMIMEParts {
			t, err = p.readBody(bounds, 0, nil) // counted in our size, not structured
			continue
		}
		var e entityResult
		e, err = p.entity(depth+1, bounds, digest)
		t = e.term
		if err == nil {
			part.Children = append(part.Children, e.part)
		}
	}
	if err != nil {
		return term{}, err
	}
	if len(part.Children) == 0 {
		// RFC 9051 needs at least one body in a multipart.
		part.Children = []BodyPart{{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}}}
	}
	if t.bound == own { // close delimiter: the epilogue runs to an enclosing delimiter or the end
		t, err = p.readBody(bounds[:own], t.delimEOL, nil)
	}
	return t, err
}

// opaque turns a part that cannot be structured into a sized leaf.
func opaque(part *BodyPart) {
	part.Type, part.Subtype = "application", "octet-stream"
}

// ---- header sections ----

type hfield struct {
	name   string // lower-case
	vs, ve int    // value in header.text, unfolded (line ends removed)
}

type header struct {
	block  []byte // while reading
	text   string // block, once read
	fields []hfield
	used   int // bytes kept, names included
}

// readHeader reads a header section up to its blank line (consumed) and
// keeps at most MaxHeaderFields fields and MaxHeaderBytes bytes of it. A
// line that is neither a field nor a continuation ends the section without
// being consumed: the body starts there (as Postfix does).
func (p *parser) readHeader(bounds []string) (*header, error) {
	h, err := p.readFields(bounds)
	if err != nil {
		return nil, err
	}
	h.text, h.block = string(h.block), nil // one allocation for all values
	return h, nil
}

func (p *parser) readFields(bounds []string) (*header, error) {
	h := &header{}
	keep := false
	for {
		s, err := p.lr.next()
		if err != nil {
			return nil, err
		}
		switch {
		case !s.start:
			if keep {
				h.appendValue(s.data)
			}
		case len(s.data) == 0:
			return h, nil // blank line or end of stream
		case len(bounds) > 0 && (s.eol > 0 || s.last) && firstBound(s.data, bounds):
			p.lr.unread()
			return h, nil
		case s.data[0] == ' ' || s.data[0] == '\t':
			if keep {
				h.appendValue(s.data)
			}
		default:
			colon := fieldNameEnd(s.data)
			if colon < 0 {
				p.lr.unread()
				return h, nil
			}
			keep = len(h.fields) < MaxHeaderFields && h.used < MaxHeaderBytes
			if keep {
				name := fieldName(bytes.TrimRight(s.data[:colon], " \t"))
				h.used += len(name)
				h.fields = append(h.fields, hfield{name: name, vs: len(h.block), ve: len(h.block)})
				h.appendValue(s.data[colon+1:])
			}
		}
		if s.last {
			return h, nil
		}
	}
}

func firstBound(line []byte, bounds []string) bool {
	i, _ := matchBoundary(line, bounds)
	return i >= 0
}

func (h *header) appendValue(b []byte) {
	room := MaxHeaderBytes - h.used
	if room <= 0 {
		return
	}
	if len(b) > room {
		b = b[:room]
	}
	h.used += len(b)
	h.block = append(h.block, b...)
	h.fields[len(h.fields)-1].ve = len(h.block)
}

// fieldNameEnd returns the index of the colon ending a field name at the start
// of line (RFC 5322 §2.2: printable ASCII but colon; obsolete WSP before the
// colon allowed), or -1 if line is not a header field.
func fieldNameEnd(line []byte) int {
	wsp := false
	for i, c := range line {
		switch {
		case c == ':':
			if i == 0 {
				return -1
			}
			return i
		case c == ' ' || c == '\t':
			if i == 0 {
				return -1
			}
			wsp = true
		case c < 33 || c > 126 || wsp:
			return -1
		}
	}
	return -1
}

var commonFields = map[string]string{}

func init() {
	for _, n := range []string{"from", "to", "cc", "bcc", "sender", "reply-to", "subject", "date",
		"message-id", "in-reply-to", "references", "received", "return-path", "mime-version",
		"content-type", "content-transfer-encoding", "content-disposition", "content-id",
		"content-description", "content-language", "content-location", "content-md5",
		"dkim-signature", "list-id", "x-mailer", "user-agent", "delivered-to", "authentication-results"} {
		commonFields[n] = n
	}
}

// fieldName lower-cases a field name, without allocating for common ones.
func fieldName(b []byte) string {
	var buf [32]byte
	if len(b) <= len(buf) {
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if n, ok := commonFields[string(buf[:len(b)])]; ok {
			return n
		}
		return string(buf[:len(b)])
	}
	return strings.ToLower(string(b))
}

func (h *header) value(i int) string {
	f := h.fields[i]
	return h.text[f.vs:f.ve]
}

// get returns the first field called name (lower-case).
func (h *header) get(name string) (string, bool) {
	for i := range h.fields {
		if h.fields[i].name == name {
			return strings.TrimSpace(h.value(i)), true
		}
	}
	return "", false
}

// searchText renders the kept fields for SEARCH HEADER/FROM/TO/SUBJECT...
func (h *header) searchText() string {
	var sb strings.Builder
	for i := range h.fields {
		v := decodeText(h.value(i))
		if strings.ContainsAny(v, "\r\n") {
			v = strings.Map(func(r rune) rune {
				if r == '\r' || r == '\n' {
					return ' '
				}
				return r
			}, v)
		}
		line := h.fields[i].name + ": " + v + "\n"
		if sb.Len()+len(line) > MaxHeaderBytes {
			break
		}
		sb.WriteString(line)
	}
	return sb.String()
}

// ---- body part fields ----

func partFromHeader(h *header, digest bool) BodyPart {
	var bp BodyPart
	if v, ok := h.get("content-type"); ok {
		mt, params := parseParamValue(v)
		if typ, sub, ok := strings.Cut(mt, "/"); ok && isToken(typ) && isToken(sub) {
			bp.Type, bp.Subtype = typ, sub
		}
		bp.Params = params
	}
	if bp.Type == "" {
		// RFC 2045 §5.2, RFC 2046 §5.1.5: the defaults.
		if digest {
			bp.Type, bp.Subtype = "message", "rfc822"
		} else {
			bp.Type, bp.Subtype = "text", "plain"
			if bp.Params["charset"] == "" {
				if bp.Params == nil {
					bp.Params = map[string]string{}
				}
				bp.Params["charset"] = "us-ascii"
			}
		}
	}
	if v, ok := h.get("content-transfer-encoding"); ok {
		bp.Encoding = strings.Clone(strings.ToLower(firstToken(v)))
	}
	if v, ok := h.get("content-id"); ok {
		bp.ID = validUTF8(v)
	}
	if v, ok := h.get("content-description"); ok {
		bp.Description = decodeText(v)
	}
	if v, ok := h.get("content-md5"); ok {
		bp.MD5 = validUTF8(v)
	}
	if v, ok := h.get("content-disposition"); ok {
		d, params := parseParamValue(v)
		if isToken(d) {
			bp.Disposition, bp.DispositionParams = d, params
		}
	}
	if v, ok := h.get("content-language"); ok {
		for _, l := range strings.Split(v, ",") {
			if l = strings.TrimSpace(l); l != "" && len(bp.Language) < maxParams {
				bp.Language = append(bp.Language, validUTF8(l))
			}
		}
	}
	if v, ok := h.get("content-location"); ok {
		bp.Location = validUTF8(v)
	}
	return bp
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 127 || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

func firstToken(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t;("); i >= 0 {
		v = v[:i]
	}
	return v
}

type param2231 struct {
	idx int
	ext bool
	val string
}

// parseParamValue parses "value; a=b; c="d"" leniently (RFC 2045 §5.1, with
// RFC 2231 extended and continued parameters, and RFC 2047 words in values as
// many mailers send them). It returns the lower-cased value.
func parseParamValue(v string) (string, map[string]string) {
	head, rest, _ := strings.Cut(v, ";")
	head = strings.Clone(strings.ToLower(strings.Join(strings.Fields(stripComments(head)), "")))
	var params map[string]string
	var cont map[string][]param2231
	var bases []string // of cont, in order, so that the result is deterministic
	n := 0
	for rest != "" && n < maxParams*4 {
		var name, val string
		rest = strings.TrimLeft(rest, " \t;")
		eq := strings.IndexAny(rest, "=;")
		if eq < 0 || rest[eq] == ';' {
			if eq < 0 {
				break
			}
			rest = rest[eq:]
			continue
		}
		name = strings.Clone(strings.ToLower(strings.TrimSpace(rest[:eq])))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		if strings.HasPrefix(rest, `"`) {
			val, rest = unquotePrefix(rest)
		} else {
			val, rest, _ = strings.Cut(rest, ";")
			val = strings.TrimSpace(val)
		}
		if name == "" {
			continue
		}
		n++
		if base, suffix, ok := strings.Cut(name, "*"); ok && base != "" {
			// RFC 2231 §3, §4: name*, name*N, name*N*
			ext := strings.HasSuffix(suffix, "*") || suffix == ""
			idx := 0
			if num := strings.TrimSuffix(suffix, "*"); num != "" {
				idx = atoiSmall(num)
				if idx < 0 {
					continue
				}
			}
			if cont == nil {
				cont = map[string][]param2231{}
			}
			if _, seen := cont[base]; !seen {
				bases = append(bases, base)
			}
			cont[base] = append(cont[base], param2231{idx, ext, val})
			continue
		}
		if params == nil {
			params = map[string]string{}
		}
		if _, dup := params[name]; !dup && len(params) < maxParams {
			params[name] = decodeParam(val)
		}
	}
	for _, base := range bases {
		if params == nil {
			params = map[string]string{}
		}
		if _, ok := params[base]; !ok && len(params) >= maxParams {
			continue
		}
		params[base] = join2231(cont[base]) // RFC 2231 wins over a plain value
	}
	return head, params
}

func atoiSmall(s string) int {
	if len(s) == 0 || len(s) > 3 {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func join2231(pieces []param2231) string {
	slices.SortStableFunc(pieces, func(a, b param2231) int { return a.idx - b.idx })
	cs := ""
	var buf []byte
	for i, p := range pieces {
		if p.idx != i {
			break // a gap or a duplicate ends the value
		}
		v := p.val
		if p.ext {
			if i == 0 {
				// charset'language'value
				if c, r, ok := strings.Cut(v, "'"); ok {
					if _, r2, ok := strings.Cut(r, "'"); ok {
						cs, v = c, r2
					}
				}
			}
			buf = appendPercentDecoded(buf, v)
		} else {
			buf = append(buf, v...)
		}
	}
	if cs == "" {
		return decodeParam(string(buf))
	}
	return charsetToUTF8(cs, buf)
}

func appendPercentDecoded(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}

func decodeParam(v string) string {
	if strings.Contains(v, "=?") {
		return decodeText(v)
	}
	return validUTF8(v)
}

// unquotePrefix reads the quoted-string at the start of s.
func unquotePrefix(s string) (string, string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// stripComments removes RFC 5322 comments outside quoted strings.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case depth == 0 && quoted:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == '"' {
				quoted = false
			}
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		default:
			if c == '"' {
				quoted = true
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ---- envelope ----

func envelopeOf(h *header) Envelope {
	var e Envelope
	if v, ok := h.get("date"); ok {
		e.Date = parseDate(v)
	}
	if v, ok := h.get("subject"); ok {
		e.Subject = decodeText(v)
	}
	e.From = h.addresses("from")
	e.Sender = h.addresses("sender")
	e.ReplyTo = h.addresses("reply-to")
	e.To = h.addresses("to")
	e.Cc = h.addresses("cc")
	e.Bcc = h.addresses("bcc")
	// RFC 3501 §7.4.2: absent or empty Sender and Reply-To take From.
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	if v, ok := h.get("in-reply-to"); ok {
		e.InReplyTo = msgIDs(v, maxMsgIDs)
	}
	if v, ok := h.get("message-id"); ok {
		if ids := msgIDs(v, 1); len(ids) > 0 {
			e.MessageID = ids[0]
		}
	}
	return e
}

// addresses parses every kept field called name into one list (several To
// fields are merged, as Dovecot does), at most MaxAddresses long.
func (h *header) addresses(name string) []Address {
	var out []Address
	for i := range h.fields {
		if h.fields[i].name == name && len(out) < MaxAddresses {
			out = appendAddressList(out, h.value(i), MaxAddresses)
		}
	}
	return out
}

// msgIDs returns up to max msg-ids of v without their angle brackets; a
// value without brackets counts as one id if it is a single word.
func msgIDs(v string, max int) []string {
	var ids []string
	rest := v
	for len(ids) < max {
		lt := strings.IndexByte(rest, '<')
		if lt < 0 {
			break
		}
		gt := strings.IndexByte(rest[lt:], '>')
		if gt < 0 {
			break
		}
		if id := strings.Join(strings.Fields(rest[lt+1:lt+gt]), ""); id != "" {
			ids = append(ids, validUTF8(id))
		}
		rest = rest[lt+gt+1:]
	}
	if len(ids) == 0 {
		if f := strings.Fields(v); len(f) == 1 && f[0] != "<>" {
			ids = append(ids, validUTF8(strings.Trim(f[0], "<>")))
		}
	}
	return ids
}

var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon, 2 January 2006 15:04:05 -0700",
	"Monday, 2 Jan 2006 15:04:05 -0700",
	"Monday, January 2, 2006 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05",
	"2 Jan 2006",
}

// parseDate parses a Date field with net/mail and lenient fallbacks; the
// zero time if nothing fits. Times JSON cannot carry are normalized.
func parseDate(v string) time.Time {
	if len(v) > 200 {
		v = v[:200]
	}
	t, err := time.Parse(dateLayouts[0], v) // the common form, without net/mail's failed tries
	if err != nil {
		t, err = mail.ParseDate(v)
	}
	if err != nil {
		s := strings.Join(strings.Fields(stripComments(v)), " ")
		s = strings.ReplaceAll(s, " ,", ",")
		for tries := 0; tries < 3 && s != "" && err != nil; tries++ {
			for _, l := range dateLayouts {
				if t, err = time.Parse(l, s); err == nil {
					break
				}
			}
			if i := strings.LastIndexByte(s, ' '); i >= 0 {
				s = s[:i] // drop trailing junk, e.g. "+0000 GMT"
			} else {
				s = ""
			}
		}
		if err != nil {
			return time.Time{}
		}
	}
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		t = t.UTC()
	}
	return t
}

// appendAddressList parses an address list leniently (RFC 5322 §3.4) and
// appends to out until it holds max addresses. Groups are flattened; a
// piece that is not an address becomes {Mailbox: raw}; it runs in time
// linear in len(v).
func appendAddressList(out []Address, v string, max int) []Address {
	start, paren := 0, 0
	quoted, angle := false, false
	for i := 0; i < len(v) && len(out) < max; i++ {
		c := v[i]
		switch {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case paren > 0:
			if c == '\\' {
				i++
			} else if c == '(' {
				paren++
			} else if c == ')' {
				paren--
			}
		case c == '"':
			quoted = true
		case c == '(':
			paren++
		case angle:
			if c == '>' {
				angle = false
			}
		case c == '<':
			angle = true
		case c == ',' || c == ';':
			out = appendAddress(out, v[start:i])
			start = i + 1
		case c == ':': // "group-name:" — flattened
			start = i + 1
		}
	}
	if len(out) < max && start < len(v) {
		out = appendAddress(out, v[start:])
	}
	return out
}

func appendAddress(out []Address, s string) []Address {
	s = strings.TrimSpace(s)
	if s == "" {
		return out
	}
	var a Address
	display, spec, hasAngle, comment := splitAddress(s)
	if hasAngle {
		a.Name = phrase(display)
		if a.Name == "" {
			a.Name = phrase(comment)
		}
	} else if strings.Contains(spec, "@") {
		a.Name = phrase(comment)
	} else {
		return append(out, Address{Mailbox: validUTF8(strings.Join(strings.Fields(s), " "))})
	}
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "@") { // obsolete route: @a,@b:user@host
		if _, r, ok := strings.Cut(spec, ":"); ok {
			spec = r
		}
	}
	if at := lastAt(spec); at >= 0 {
		a.Mailbox, a.Host = localPart(spec[:at]), strings.Join(strings.Fields(spec[at+1:]), "")
	} else {
		a.Mailbox = localPart(spec)
	}
	a.Mailbox, a.Host = validUTF8(a.Mailbox), validUTF8(a.Host)
	if a.Mailbox == "" && a.Host == "" && a.Name == "" {
		return out
	}
	return append(out, a)
}

// splitAddress separates "display <spec>" (or a bare spec) and collects
// comment text outside quotes.
func splitAddress(s string) (display, spec string, hasAngle bool, comment string) {
	var disp, sp, com strings.Builder
	paren, quoted, inAngle := 0, false, false
	cur := &sp
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			cur.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else if c == '"' {
				quoted = false
			}
		case paren > 0:
			if c == '\\' && i+1 < len(s) {
				i++
				com.WriteByte(s[i])
			} else if c == '(' {
				paren++
			} else if c == ')' {
				paren--
				if paren == 0 {
					com.WriteByte(' ')
				}
			} else {
				com.WriteByte(c)
			}
		case c == '(':
			paren++
		case c == '"':
			quoted = true
			cur.WriteByte(c)
		case c == '<' && !hasAngle:
			hasAngle, inAngle = true, true
			disp.WriteString(sp.String())
			sp.Reset()
		case c == '>' && inAngle:
			inAngle = false
			cur = new(strings.Builder) // text after '>' is ignored
		default:
			cur.WriteByte(c)
		}
	}
	return disp.String(), sp.String(), hasAngle, com.String()
}

func lastAt(spec string) int {
	quoted := false
	at := -1
	for i := 0; i < len(spec); i++ {
		switch spec[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case '@':
			if !quoted {
				at = i
			}
		}
	}
	return at
}

// localPart removes whitespace and the quotes of a quoted local part.
func localPart(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		v, _ := unquotePrefix(s)
		return v
	}
	return strings.Join(strings.Fields(s), "")
}

// phrase turns a display name into text: quotes removed, white space
// collapsed, RFC 2047 words decoded.
func phrase(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '"' {
			b.WriteByte(c)
			continue
		}
		v, rest := unquotePrefix(s[i:])
		b.WriteString(v)
		i = len(s) - len(rest) - 1
	}
	return decodeText(strings.Join(strings.Fields(b.String()), " "))
}

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
