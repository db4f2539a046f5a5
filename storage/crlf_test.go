package storage

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCRLFReader(t *testing.T) {
	cases := map[string]string{
		"":                           "",
		"a\r\nb\r\n":                 "a\r\nb\r\n",
		"a\nb\n":                     "a\r\nb\r\n",
		"a\rb\r":                     "a\r\nb\r\n",
		"a\r\r\nb":                   "a\r\n\r\nb",
		"\n\n":                       "\r\n\r\n",
		"x\r\n.\n\r\n":               "x\r\n.\r\n\r\n",
		"a\r":                        "a\r\n",
		"\r\r\r":                     "\r\n\r\n\r\n",
		strings.Repeat("y\n", 40000): strings.Repeat("y\r\n", 40000),
	}
	for in, want := range cases {
		got, err := io.ReadAll(newCRLFReader(strings.NewReader(in), nil))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("crlf(%q) = %q, want %q", trunc(in), trunc(string(got)), trunc(want))
		}
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func FuzzCRLFReader(f *testing.F) {
	for _, s := range []string{"a\nb", "a\r\nb", "\r", "\r\r\n\n", "x\r.\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := io.ReadAll(newCRLFReader(strings.NewReader(in), nil))
		if err != nil {
			t.Fatal(err)
		}
		s := string(got)
		// The same bytes whatever the sizes of the reads on either side.
		small, err := io.ReadAll(iotest.OneByteReader(newCRLFReader(iotest.HalfReader(strings.NewReader(in)), nil)))
		if err != nil || string(small) != s {
			t.Fatalf("one-byte reads gave %q, want %q (%v)", small, s, err)
		}
		for i := 0; i < len(s); i++ {
			if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, s)
			}
			if s[i] == '\r' && (i+1 == len(s) || s[i+1] != '\n') {
				t.Fatalf("bare CR at %d in %q", i, s)
			}
		}
		// Only line ends change.
		strip := func(x string) string { return strings.NewReplacer("\r", "", "\n", "").Replace(x) }
		if strip(s) != strip(in) {
			t.Fatalf("content changed: %q -> %q", in, s)
		}
		// And each changes as the rule says: CRLF stays, a bare CR or LF
		// becomes CRLF.
		var want strings.Builder
		for i := 0; i < len(in); i++ {
			switch {
			case in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n':
				want.WriteString("\r\n")
				i++
			case in[i] == '\r' || in[i] == '\n':
				want.WriteString("\r\n")
			default:
				want.WriteByte(in[i])
			}
		}
		if s != want.String() {
			t.Fatalf("crlf(%q) = %q, want %q", in, s, want.String())
		}
	})
}

// BenchmarkCRLFReader reads 1 MiB through a crlfReader: SMTP's input
// (CRLF lines of 78 octets), an mbox's (bare LF lines), and the worst mixes
// for a scanner (a bare CR every other octet; one line with no end).
func BenchmarkCRLFReader(b *testing.B) {
	line := strings.Repeat("x", 76)
	for _, c := range []struct{ name, in string }{
		{"crlf", strings.Repeat(line+"\r\n", 1<<20/78)},
		{"lf", strings.Repeat(line+"\n", 1<<20/77)},
		{"bare-cr", strings.Repeat("x\r", 1<<19)},
		{"no-end", strings.Repeat("x", 1<<20)},
	} {
		in := c.in
		b.Run(c.name, func(b *testing.B) {
			buf, out := make([]byte, crlfBufSize), make([]byte, 32<<10)
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				r := newCRLFReader(strings.NewReader(in), buf)
				for {
					if _, err := r.Read(out); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
