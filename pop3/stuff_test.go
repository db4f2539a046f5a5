package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// stuffRef is the obvious, whole-message dot-stuffing of RFC 1939 §3, to
// compare the streaming one against.
func stuffRef(msg []byte, topLines int64) []byte {
	var out bytes.Buffer
	lines := bytes.SplitAfter(msg, []byte("\n"))
	inHeader, left := true, topLines
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		if topLines >= 0 && !inHeader && left <= 0 {
			break
		}
		if l[0] == '.' {
			out.WriteByte('.')
		}
		out.Write(l)
		if topLines >= 0 {
			if inHeader {
				if string(l) == "\r\n" {
					inHeader = false
				}
			} else {
				left--
			}
		}
	}
	if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteString("\r\n")
	}
	out.WriteString(".\r\n")
	return out.Bytes()
}

// stuffStream runs the streaming stuffer with the message cut in pieces of
// the given size.
func stuffStream(t testing.TB, msg []byte, topLines int64, piece int) []byte {
	var out bytes.Buffer
	w := bufio.NewWriterSize(&out, 16)
	s := &stuffer{w: w, bol: true, top: topLines >= 0, inHeader: true, left: topLines}
	for p := msg; len(p) > 0; {
		n := min(piece, len(p))
		if _, err := s.Write(p[:n]); errors.Is(err, errTopDone) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return out.Bytes()
}

func TestStuffer(t *testing.T) {
	msgs := []string{
		"",
		".",
		"Subject: x\r\n\r\n.\r\n..\r\n...x\r\n",
		".leading header\r\n\r\nbody\r\n.",
		"Subject: a\r\nX: b\r\n\r\nl1\r\n\r\nl3\r\n.l4\r\nl5",
		"no blank line\r\n.at all\r\n",
		"\r\n.body only\r\n",
	}
	for _, m := range msgs {
		for _, top := range []int64{-1, 0, 1, 2, 3, 100} {
			want := stuffRef([]byte(m), top)
			for piece := 1; piece <= len(m)+1; piece++ {
				if got := stuffStream(t, []byte(m), top, piece); !bytes.Equal(got, want) {
					t.Fatalf("%q top=%d piece=%d:\n got %q\nwant %q", m, top, piece, got, want)
				}
			}
		}
	}
}

func FuzzStuffer(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\n.\r\n..\r\n"), int64(-1), 3)
	f.Add([]byte(".\r\n\r\n.a\r\nb"), int64(1), 1)
	f.Fuzz(func(t *testing.T, msg []byte, top int64, piece int) {
		// Storage holds CRLF only: normalise the way it does.
		msg = bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r"), nil), []byte("\n"), []byte("\r\n"))
		if piece < 1 {
			piece = 1
		}
		if top < -1 {
			top = -1
		}
		got := stuffStream(t, msg, top, piece)
		if want := stuffRef(msg, top); !bytes.Equal(got, want) {
			t.Fatalf("got %q want %q", got, want)
		}
		// Undoing the stuffing gives the message back (RETR).
		if top == -1 {
			body := strings.TrimSuffix(string(got), ".\r\n")
			var un strings.Builder
			for _, l := range strings.SplitAfter(body, "\r\n") {
				un.WriteString(strings.TrimPrefix(l, "."))
			}
			w := string(msg)
			if len(w) > 0 && !strings.HasSuffix(w, "\r\n") {
				w += "\r\n"
			}
			if un.String() != w {
				t.Fatalf("unstuffed %q, want %q", un.String(), w)
			}
		}
	})
}
