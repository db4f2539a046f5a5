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
	})
}
