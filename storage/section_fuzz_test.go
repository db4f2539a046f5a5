package storage

import (
	"bytes"
	"errors"
	"testing"
)

// wantPart finds the part with section number path in a parsed message by
// RFC 9051 §6.4.5 numbering: the parts of a multipart are numbered from 1;
// a message that is not multipart has its body as part 1; the parts of a
// message/rfc822 part are those of the message it holds.
func wantPart(top *BodyPart, path []int) *BodyPart {
	cur, isMsg := top, true
	for _, n := range path {
		switch {
		case cur.Type == "multipart":
			if n < 1 || n > len(cur.Children) {
				return nil
			}
			cur, isMsg = &cur.Children[n-1], false
		case isMsg:
			if n != 1 {
				return nil
			}
			isMsg = false
		case cur.Message != nil:
			cur, isMsg = cur.Message, true
			if cur.Type == "multipart" {
				if n < 1 || n > len(cur.Children) {
					return nil
				}
				cur, isMsg = &cur.Children[n-1], false
			} else if n != 1 {
				return nil
			} else {
				isMsg = false
			}
		default:
			return nil
		}
	}
	return cur
}

func checkLocate(t *testing.T, raw []byte, path []int) {
	t.Helper()
	pm, err := ParseMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := wantPart(&pm.Body, path)
	span, err := LocatePart(bytes.NewReader(raw), path)
	if want == nil || len(path) == 0 {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("path %v: got %+v, %v; want ErrNotFound", path, span, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("path %v: %v; want %s/%s of %d octets", path, err, want.Type, want.Subtype, want.Size)
	}
	size := int64(len(raw))
	if !(0 <= span.HeaderStart && span.HeaderStart <= span.BodyStart && span.BodyStart <= span.End && span.End <= size) {
		t.Fatalf("path %v: offsets out of order or bounds (size %d): %+v", path, size, span)
	}
	if got := span.End - span.BodyStart; got != want.Size {
		t.Fatalf("path %v: body is %d octets, BODYSTRUCTURE says %d", path, got, want.Size)
	}
	if span.Part.Type != want.Type || span.Part.Subtype != want.Subtype {
		t.Fatalf("path %v: part %s/%s, BODYSTRUCTURE says %s/%s", path, span.Part.Type, span.Part.Subtype, want.Type, want.Subtype)
	}
	if m := span.MessageBodyStart; m >= 0 && (m < span.BodyStart || m > span.End) {
		t.Fatalf("path %v: encapsulated body start %d outside %d..%d", path, m, span.BodyStart, span.End)
	}
}

// FuzzLocatePart: for any message and section path, LocatePart never
// panics, its offsets are within the message and in order, and it agrees
// with the BODYSTRUCTURE parsed at delivery on which part exists, its type
// and its size. The path is the fuzzed bytes, each a part number 0..7.
func FuzzLocatePart(f *testing.F) {
	seeds := [][]byte{
		crlf("Subject: plain\n\nbody\n"),
		crlf("Content-Type: multipart/mixed; boundary=b\n\npreamble\n--b\nContent-Type: text/plain\n\none\n--b\nContent-Type: multipart/alternative; boundary=c\n\n--c\n\nalt1\n--c\nContent-Type: text/html\n\n<p>alt2</p>\n--c--\n--b\nContent-Type: message/rfc822\n\nSubject: inner\nContent-Type: multipart/mixed; boundary=d\n\n--d\n\ninner one\n--d\n\ninner two\n--d--\n--b--\nepilogue\n"),
		crlf("Content-Type: message/rfc822\n\nSubject: in\n\nbody"),
		crlf("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: digest\n\nx\n--d--\n"),
		crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nnever closed\n"),
		nested(30),
		message4K(),
	}
	for _, s := range seeds {
		for _, p := range [][]byte{{1}, {2}, {2, 1}, {3, 2}, {1, 1}, {3, 1, 2}, {0}} {
			f.Add(s, p)
		}
	}
	f.Fuzz(func(t *testing.T, raw, p []byte) {
		if len(p) > 40 {
			p = p[:40]
		}
		path := make([]int, len(p))
		for i, b := range p {
			path[i] = int(b % 8)
		}
		checkLocate(t, raw, path)
	})
}

// A message whose own body is message/rfc822: BODY[1] is that whole body
// (the encapsulated message, as BODYSTRUCTURE sizes it) and BODY[1.1] the
// encapsulated message's body. LocatePart used to answer [1] with the inner
// body.
func TestLocatePartTopLevelMessageRFC822(t *testing.T) {
	raw := crlf("Content-Type: message/rfc822\n\nSubject: in\n\nbody")
	for _, p := range [][]int{{1}, {1, 1}, {2}, {1, 2}, {1, 1, 1}} {
		checkLocate(t, raw, p)
	}
	span, err := LocatePart(bytes.NewReader(raw), []int{1})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(raw[span.BodyStart:span.End]); got != "Subject: in\r\n\r\nbody" {
		t.Fatalf("BODY[1] = %q", got)
	}
	if got := string(raw[span.MessageBodyStart:span.End]); got != "body" {
		t.Fatalf("BODY[1.TEXT] = %q", got)
	}
	span, err = LocatePart(bytes.NewReader(raw), []int{1, 1})
	if err != nil || string(raw[span.BodyStart:span.End]) != "body" {
		t.Fatalf("BODY[1.1] = %+v, %v", span, err)
	}
}
