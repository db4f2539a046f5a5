package storage

import (
	"bytes"
	"io"
)

// crlfReader turns bare LF and bare CR into CRLF, so that every stored
// message has the line ends IMAP and POP3 send: the sizes storage reports are
// then exactly the octets a client receives. SMTP refuses bare LF and CR
// before this point; IMAP APPEND and tools may still send them.
type crlfReader struct {
	r         io.Reader
	buf       []byte
	start     int
	end       int
	err       error // from r, returned once buf is drained
	lastCR    bool  // the last byte emitted was a CR
	pendingLF bool  // an LF must be emitted before anything else
	// cr and lf cache the index in buf of the next CR and LF at or after
	// start (end: none before it); below start, not known. Each scan then
	// starts past the last hit, so a buffer is scanned once for each byte
	// whatever its mix of line ends.
	cr, lf int
}

// crlfBufSize is how much a crlfReader reads from its source at once.
const crlfBufSize = 8 << 10

// newCRLFReader reads r through buf, or through a buffer of its own when buf
// is nil.
func newCRLFReader(r io.Reader, buf []byte) *crlfReader {
	if buf == nil {
		buf = make([]byte, crlfBufSize)
	}
	return &crlfReader{r: r, buf: buf, cr: -1, lf: -1}
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if c.pendingLF {
			p[n] = '\n'
			n++
			c.pendingLF, c.lastCR = false, false
			continue
		}
		if c.start == c.end {
			if c.err != nil {
				if c.lastCR {
					// A message ending in a bare CR.
					c.pendingLF = true
					continue
				}
				if n > 0 {
					return n, nil
				}
				return 0, c.err
			}
			if n > 0 {
				// Return what we have rather than block on the source.
				return n, nil
			}
			c.start = 0
			c.end, c.err = c.r.Read(c.buf)
			c.cr, c.lf = -1, -1
			continue
		}
		src := c.buf[c.start:c.end]
		b := src[0]
		switch {
		case c.lastCR && b != '\n':
			// Bare CR: complete it before this byte.
			c.pendingLF = true
			continue
		case b == '\n' && !c.lastCR:
			p[n] = '\r'
			n++
			c.lastCR = true
			continue // the LF itself is emitted next round
		}
		// A line-end byte alone, or a run of other bytes at once.
		k := 1
		if b != '\r' && b != '\n' {
			k = min(c.next(&c.cr, '\r'), c.next(&c.lf, '\n')) - c.start
		}
		k = copy(p[n:], src[:k])
		n += k
		c.start += k
		c.lastCR = src[k-1] == '\r'
	}
	return n, nil
}

// next returns the index in buf of the first b at or after start, or end
// when there is none; *pos caches it.
func (c *crlfReader) next(pos *int, b byte) int {
	if *pos < c.start {
		if i := bytes.IndexByte(c.buf[c.start:c.end], b); i >= 0 {
			*pos = c.start + i
		} else {
			*pos = c.end
		}
	}
	return *pos
}
