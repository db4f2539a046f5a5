package storage

// Locating a MIME part (RFC 9051 §6.4.5 section numbers) in a stored
// message, for FETCH BODY[1.2], BINARY[2] and the like. The parse stored at
// delivery has the structure and sizes but not the offsets, so the message
// is read again up to the end of the part asked for, with the very same
// line reader, header and boundary rules as ParseMessage: offsets found here
// agree with the sizes in BODYSTRUCTURE. Memory stays bounded as in
// ParseMessage; nothing of the bodies is kept.

import (
	"bufio"
	"errors"
	"io"
	"slices"
)

// PartSpan is where one part lies in the message as OpenMessage yields it.
type PartSpan struct {
	HeaderStart int64 // its MIME header (BODY[n.MIME])
	BodyStart   int64
	End         int64 // end of its body (exclusive)
	Part        BodyPart
	// MessageBodyStart, for a message/rfc822 or message/global part, is
	// where the body of the encapsulated message starts (its header is
	// BodyStart..MessageBodyStart); otherwise -1.
	MessageBodyStart int64
}

var errSpanFound = errors.New("span found")

type spanFinder struct {
	p      *parser
	target []int
	found  *PartSpan
}

// LocatePart reads the message from r (positioned at its start) until the
// part with section number path (non-empty) is complete. It returns
// ErrNotFound when the message has no such part.
func LocatePart(r io.Reader, path []int) (*PartSpan, error) {
	if len(path) == 0 {
		return nil, ErrNotFound
	}
	f := &spanFinder{p: &parser{lr: lineReader{br: bufio.NewReaderSize(r, lineBufSize)}}, target: path}
	_, _, err := f.entity(1, nil, false, nil, true)
	if errors.Is(err, errSpanFound) {
		return f.found, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, ErrNotFound
}

// entity walks one header and body. path is its section number; msg is
// true for a message (the top one or an encapsulated one), whose part 1 is
// its body when it is not a multipart.
func (f *spanFinder) entity(depth int, bounds []string, digest bool, path []int, msg bool) (term, int64, error) {
	hstart := f.p.lr.off
	h, err := f.p.readHeader(bounds)
	if err != nil {
		return term{}, 0, err
	}
	start := f.p.lr.off
	f.p.parts++
	part := partFromHeader(h, digest)
	// The body of a message that is not multipart is its part 1: what it
	// holds (a message/rfc822 body's own parts) is numbered below that.
	bpath := path
	if msg && part.Type != "multipart" {
		bpath = append(path[:len(path):len(path)], 1)
	}
	t, inner, err := f.body(&part, depth, bounds, bpath)
	if err != nil {
		return term{}, 0, err
	}
	span := &PartSpan{HeaderStart: hstart, BodyStart: start, End: max(t.end, start), Part: part, MessageBodyStart: inner}
	if !msg && slices.Equal(path, f.target) {
		f.found = span
		return t, start, errSpanFound
	}
	if msg && part.Type != "multipart" && len(f.target) == len(path)+1 &&
		f.target[len(path)] == 1 && slices.Equal(f.target[:len(path)], path) {
		f.found = span
		return t, start, errSpanFound
	}
	return t, start, nil
}

func (f *spanFinder) body(part *BodyPart, depth int, bounds []string, path []int) (term, int64, error) {
	p := f.p
	nest := depth < MaxMIMEDepth && p.parts < MaxMIMEParts
	switch {
	case part.Type == "multipart":
		b := part.Params["boundary"]
		if !nest || b == "" || len(b) > maxBoundaryLen {
			opaque(part)
			t, err := p.readBody(bounds, 0, nil)
			return t, -1, err
		}
		t, err := f.multipart(part, depth, append(bounds[:len(bounds):len(bounds)], b), path)
		return t, -1, err
	case part.Type == "message" && (part.Subtype == "rfc822" || part.Subtype == "global"):
		if !nest || (part.Encoding != "" && part.Encoding != "7bit" && part.Encoding != "8bit" && part.Encoding != "binary") {
			opaque(part)
			t, err := p.readBody(bounds, 0, nil)
			return t, -1, err
		}
		return f.entity(depth+1, bounds, false, path, true)
	default:
		t, err := p.readBody(bounds, 0, nil)
		return t, -1, err
	}
}

func (f *spanFinder) multipart(part *BodyPart, depth int, bounds []string, path []int) (term, error) {
	p := f.p
	own := len(bounds) - 1
	digest := part.Subtype == "digest"
	t, err := p.readBody(bounds, 0, nil) // preamble
	n := 0
	for err == nil && t.bound == own && !t.closing {
		if p.parts >= MaxMIMEParts {
			t, err = p.readBody(bounds, 0, nil)
			continue
		}
		n++
		t, _, err = f.entity(depth+1, bounds, digest, append(path[:len(path):len(path)], n), false)
	}
	if err != nil {
		return term{}, err
	}
	if t.bound == own {
		t, err = p.readBody(bounds[:own], t.delimEOL, nil)
	}
	return t, err
}
