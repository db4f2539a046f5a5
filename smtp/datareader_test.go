package smtp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// refCheck is the obvious byte-by-byte statement of what dataReader
// enforces, to compare it with.
func refCheck(in []byte, maxLine int) error {
	line := 0
	for i, b := range in {
		switch {
		case b == '\n':
			if i == 0 || in[i-1] != '\r' {
				return errBareLF
			}
			line = 0
		case i > 0 && in[i-1] == '\r':
			return errBareCR
		case b == '\r':
		default:
			line++
			if maxLine > 0 && line > maxLine-2 {
				return errLineTooLong
			}
		}
	}
	if len(in) > 0 && in[len(in)-1] == '\r' {
		return errBareCR
	}
	if len(in) == 0 {
		return errEmpty
	}
	return nil
}

// chunked returns r's bytes in reads of at most n octets.
type chunked struct {
	r io.Reader
	n int
}

func (c chunked) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func readChecked(in []byte, maxLine, chunk int) ([]byte, error) {
	d := newDataReader(chunked{bytes.NewReader(in), chunk}, maxLine, nil)
	out, err := io.ReadAll(d)
	if err == nil {
		// Sticky: reading again gives EOF, not more data.
		if n, err2 := d.Read(make([]byte, 10)); n != 0 || err2 != io.EOF {
			return nil, errors.New("read after EOF returned data")
		}
	} else if _, err2 := d.Read(make([]byte, 10)); err2 != err {
		return nil, errors.New("error not sticky")
	}
	return out, err
}

func TestDataReader(t *testing.T) {
	long := strings.Repeat("x", 998)
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", errEmpty},
		{"crlf lines", "a\r\nb\r\n\r\n", nil},
		{"no final line end", "a\r\nb", nil},
		{"bare LF", "a\nb\r\n", errBareLF},
		{"LF first", "\n", errBareLF},
		{"bare CR", "a\rb\r\n", errBareCR},
		{"CR at end", "a\r", errBareCR},
		{"CR CR LF", "a\r\r\n", errBareCR},
		{"LF.LF", "a\r\n.\nb\r\n", errBareLF},
		{"line at limit", long + "\r\n" + long + "\r\n", nil},
		{"line over limit", long + "y\r\n", errLineTooLong},
		{"unterminated over limit", long + "yy", errLineTooLong},
	} {
		for _, chunk := range []int{1, 2, 3, 7, 4096} {
			out, err := readChecked([]byte(tc.in), 1000, chunk)
			if err != tc.want {
				t.Errorf("%s (chunk %d): err %v, want %v", tc.name, chunk, err, tc.want)
			}
			if err == nil && string(out) != tc.in {
				t.Errorf("%s (chunk %d): data changed", tc.name, chunk)
			}
		}
	}
}

func TestDataReaderPassesErrorsAndTruncation(t *testing.T) {
	boom := errors.New("boom")
	d := newDataReader(iotest.ErrReader(boom), 1000, nil)
	if _, err := io.ReadAll(d); err != boom {
		t.Fatalf("err %v", err)
	}
	lost := true
	d = newDataReader(strings.NewReader("a\r\n"), 1000, func() bool { return lost })
	if _, err := io.ReadAll(d); err != errTruncated {
		t.Fatalf("EOF on a lost connection: err %v, want errTruncated", err)
	}
}

func FuzzDataReader(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n",
		"a\n.\nMAIL FROM:<a@b>\r\n",
		"a\r\n.\nb",
		"a\r.\r\n",
		"x\r",
		strings.Repeat("y", 1200) + "\r\n",
		"\r\n\r\n\r\r\n",
	} {
		f.Add([]byte(s), uint16(1000), uint8(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, maxLine uint16, chunk uint8) {
		ml := int(maxLine)%2000 + 3 // at least one octet before CRLF
		ch := int(chunk)%64 + 1
		want := refCheck(in, ml)
		out, err := readChecked(in, ml, ch)
		if err != want {
			t.Fatalf("err %v, reference %v (maxLine %d, chunk %d)", err, want, ml, ch)
		}
		if err == nil && !bytes.Equal(out, in) {
			t.Fatal("data changed")
		}
		if err != nil && !bytes.HasPrefix(in, out) {
			t.Fatal("data before the error is not a prefix of the input")
		}
	})
}
