package pop3

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"pombo/storage"
)

// cmdRetr sends a whole message (RFC 1939 §5).
func (c *conn) cmdRetr(cmd *command) error {
	if len(cmd.args) != 1 {
		return errSyntax
	}
	n, m, err := c.drop.get(cmd.args[0])
	if err != nil {
		return err
	}
	return c.sendMessage(n, m, -1)
}

// cmdTop sends the header and the first lines of the body (RFC 1939 §7).
func (c *conn) cmdTop(cmd *command) error {
	if len(cmd.args) != 2 {
		return errSyntax
	}
	n, m, err := c.drop.get(cmd.args[0])
	if err != nil {
		return err
	}
	lines, ok := parseNumber(cmd.args[1])
	if !ok {
		return errSyntax
	}
	return c.sendMessage(n, m, lines)
}

// sendMessage streams message m as a multi-line response, dot-stuffed; with
// lines >= 0, only the header and that many body lines (TOP).
//
// The first piece of the message is read before the +OK, so that a message
// expunged by IMAP since login gets a clean -ERR. If it disappears while it
// is being sent (a multi-chunk message expunged in that very moment) nothing
// can be said any more in POP3: the connection is closed, without UPDATE.
func (c *conn) sendMessage(n int, m *message, lines int64) error {
	// Not cancellable: a cancellable context costs the SQLite driver a
	// goroutine per query, and a read of one chunk needs no interrupting
	// (Close ends the session through its socket).
	open := c.srv.opts.Store.OpenMessageLoaded
	if lines == 0 {
		// TOP n 0: the header alone, which OpenMessageHeader reads with the
		// message row; reading ahead as below would read the body.
		open = c.srv.opts.Store.OpenMessageHeader
	}
	r, err := open(context.WithoutCancel(c.ctx), m.id)
	if c.buf == nil {
		c.buf = make([]byte, ioBuffer)
	}
	var first int
	if err == nil {
		defer r.Close()
		if lines != 0 {
			first, err = io.ReadFull(r, c.buf[:min(int64(len(c.buf)), m.size)])
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		// Not a client mistake: not counted.
		return &Error{Text: fmt.Sprintf("message %d was removed by another session", n)}
	} else if err != nil {
		return temporary("cannot read message", err)
	}
	if lines < 0 {
		c.ok("%d octets", m.size)
	} else {
		c.ok("top of message follows")
	}
	c.retrieved++
	sw := &stuffer{w: c.w, bol: true, top: lines >= 0, inHeader: true, left: lines}
	_, err = sw.Write(c.buf[:first])
	if err == nil {
		_, err = io.CopyBuffer(sw, onlyReader{r}, c.buf)
	}
	c.sentBytes += sw.n
	// Past the +OK no -ERR can be sent (the client would take it for a
	// line of the message): a failure ends the session, unterminated.
	switch {
	case err == nil, errors.Is(err, errTopDone):
	case errors.Is(err, errWrite):
		return fmt.Errorf("%w: %w", errAborted, err)
	default:
		c.log.Warn("pop3 message unreadable during RETR", "msg", n, "uid", m.uid, "err", err)
		return fmt.Errorf("%w: %w", errAborted, err)
	}
	if err := sw.finish(); err != nil {
		return fmt.Errorf("%w: %w", errAborted, err)
	}
	return nil
}

// errAborted ends a session in the middle of a multi-line response.
var errAborted = errors.New("response aborted")

// onlyReader hides any WriterTo/ReaderFrom so that io.CopyBuffer uses the
// given buffer.
type onlyReader struct{ io.Reader }

// errTopDone stops the copy once TOP has sent its lines: the rest of the
// message is not even read.
var errTopDone = errors.New("top: lines sent")

// errWrite marks a failure to write to the client, as opposed to one to
// read the message.
var errWrite = errors.New("write to client")

// stuffer writes a message as the body of a multi-line response (RFC 1939
// §3): a line that starts with "." gets another one in front. With top set
// it stops after the header, the blank line and left more lines. Storage
// keeps every message with CRLF line ends, so a line ends at each LF.
type stuffer struct {
	w   *bufio.Writer
	bol bool  // the next octet starts a line
	n   int64 // message octets written, without stuffing

	top       bool
	inHeader  bool
	lineLen   int  // octets of the current header line so far
	lineFirst byte // its first octet
	left      int64
	done      bool
}

func (s *stuffer) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if s.done {
			return total - len(p), errTopDone
		}
		if s.bol && p[0] == '.' {
			if err := s.w.WriteByte('.'); err != nil {
				return total - len(p), fmt.Errorf("%w: %w", errWrite, err)
			}
		}
		seg := p
		eol := bytes.IndexByte(p, '\n')
		if eol >= 0 {
			seg = p[:eol+1]
		}
		if _, err := s.w.Write(seg); err != nil {
			return total - len(p), fmt.Errorf("%w: %w", errWrite, err)
		}
		s.n += int64(len(seg))
		p = p[len(seg):]
		s.bol = eol >= 0
		if s.top {
			s.count(seg, eol >= 0)
		}
	}
	if s.done {
		return total, errTopDone
	}
	return total, nil
}

// count follows TOP's progress through one written segment of a line.
func (s *stuffer) count(seg []byte, eol bool) {
	if s.inHeader {
		if s.lineLen == 0 {
			s.lineFirst = seg[0]
		}
		s.lineLen += len(seg)
		if eol {
			blank := s.lineLen == 1 || (s.lineLen == 2 && s.lineFirst == '\r')
			s.lineLen = 0
			if blank {
				s.inHeader = false
				s.done = s.left == 0
			}
		}
		return
	}
	if eol {
		s.left--
		s.done = s.left <= 0
	}
}

// finish ends the response: the CRLF a last line without one needs, then
// the terminating ".".
func (s *stuffer) finish() error {
	if !s.bol {
		s.w.WriteString("\r\n")
	}
	_, err := s.w.WriteString(".\r\n")
	return err
}
