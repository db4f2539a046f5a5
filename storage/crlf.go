package storage

import (
	"bufio"
	"io"
)

// crlfReader turns bare LF and bare CR into CRLF, so that every stored
// message has the line ends IMAP and POP3 send: the sizes storage reports are
// then exactly the octets a client receives. SMTP refuses bare LF and CR
// before this point; IMAP APPEND and tools may still send them.
type crlfReader struct {
	r       *bufio.Reader
	pending []byte
	lastCR  bool
}

func newCRLFReader(r io.Reader) *crlfReader {
	return &crlfReader{r: bufio.NewReaderSize(r, 32<<10)}
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(c.pending) > 0 {
			k := copy(p[n:], c.pending)
			c.pending = c.pending[k:]
			n += k
			continue
		}
		b, err := c.r.ReadByte()
		if err != nil {
			if err == io.EOF && c.lastCR {
				// A message ending in a bare CR.
				c.lastCR = false
				c.pending = []byte{'\n'}
				continue
			}
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		switch {
		case b == '\n' && !c.lastCR:
			c.pending = []byte{'\r', '\n'}
		case b != '\n' && c.lastCR:
			c.pending = []byte{'\n', b}
			if b == '\r' {
				c.pending = []byte{'\n'}
				c.r.UnreadByte()
				c.lastCR = false
				continue
			}
		default:
			c.pending = []byte{b}
		}
		c.lastCR = b == '\r'
	}
	return n, nil
}
