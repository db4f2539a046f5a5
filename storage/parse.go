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
	"io"
	"time"
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
	return parseWith(bufio.NewReaderSize(r, lineBufSize), new([]byte))
}

// parseWith parses the message br reads. The text is gathered in *text's
// memory, and *text is left holding the buffer (empty) for another message.
func parseWith(br *bufio.Reader, text *[]byte) (*ParsedMessage, error) {
	p := &parser{lr: lineReader{br: br}, text: textAcc{out: (*text)[:0]}}
	defer func() { *text = p.text.out[:0] }()
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
