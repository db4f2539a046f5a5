package smtp

import (
	"bytes"
	"errors"
	"io"
)

// Errors of a dataReader. They are sticky: once one is returned, every later
// Read returns it again.
var (
	errBareLF      = errors.New("bare LF in message data")
	errBareCR      = errors.New("bare CR in message data")
	errLineTooLong = errors.New("line too long in message data")
	errTruncated   = errors.New("connection lost in the middle of a message")
	errEmpty       = errors.New("empty message")
)

// dataReader checks message data as go-smtp hands it over (dot-stuffing
// removed, line ends as sent):
//
//   - every CR must be followed by LF and every LF preceded by CR: a bare LF
//     or bare CR is refused (RFC 5321 §2.3.8), which is what makes "\n.\n"
//     and "\r\n.\n" harmless (SMTP smuggling);
//   - no line may be longer than maxLine octets, CRLF included
//     (RFC 5321 §4.5.3.1.6);
//   - the message is not empty.
//
// go-smtp checks line length too when it reads DATA, but not inside BDAT
// chunks; this reader checks both alike. Reader errors other than io.EOF are
// sticky as well, so that a consumer that retries never sees a clean end of
// a broken message.
type dataReader struct {
	r       io.Reader
	maxLine int   // octets, CRLF included
	line    int   // octets of the current line before its CR
	cr      bool  // the last byte seen was CR
	n       int64 // octets read so far
	err     error // first error, returned again on every Read
	eof     bool
	// lost reports whether the connection failed under the message. go-smtp
	// ends a BDAT chunk cut short by EOF as if it were complete; with lost
	// set, such an end is errTruncated instead of io.EOF.
	lost func() bool
}

func newDataReader(r io.Reader, maxLine int, lost func() bool) *dataReader {
	return &dataReader{r: r, maxLine: maxLine, lost: lost}
}

func (d *dataReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.eof {
		return 0, io.EOF
	}
	n, err := d.r.Read(p)
	if cerr := d.check(p[:n]); cerr != nil {
		d.err = cerr
		return 0, cerr
	}
	d.n += int64(n)
	if err == io.EOF {
		if d.cr {
			d.err = errBareCR
			return 0, d.err
		}
		if d.lost != nil && d.lost() {
			d.err = errTruncated
			return 0, d.err
		}
		if d.n == 0 {
			// Not a message (RFC 5322 wants at least Date and From); and
			// storage cannot store 0 octets.
			d.err = errEmpty
			return 0, d.err
		}
		d.eof = true
	} else if err != nil {
		d.err = err
	}
	return n, err
}

// check scans b, which follows what was checked before.
func (d *dataReader) check(b []byte) error {
	// A line may hold maxLine-2 octets before its CRLF.
	max := d.maxLine - 2
	for len(b) > 0 {
		if d.cr {
			if b[0] != '\n' {
				return errBareCR
			}
			d.cr, d.line = false, 0
			b = b[1:]
			continue
		}
		i := indexCRLF(b)
		if i < 0 {
			d.line += len(b)
			if d.maxLine > 0 && d.line > max {
				return errLineTooLong
			}
			return nil
		}
		d.line += i
		if d.maxLine > 0 && d.line > max {
			return errLineTooLong
		}
		if b[i] == '\n' {
			return errBareLF
		}
		d.cr = true
		b = b[i+1:]
	}
	return nil
}

// indexCRLF returns the index of the first CR or LF in b, or -1.
func indexCRLF(b []byte) int {
	i := bytes.IndexByte(b, '\r')
	lim := b
	if i >= 0 {
		lim = b[:i]
	}
	if j := bytes.IndexByte(lim, '\n'); j >= 0 {
		return j
	}
	return i
}
