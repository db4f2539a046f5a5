package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"pombo/auth"
)

// state is a session state of RFC 1939 §3.
type state uint8

const (
	stateAuthorization state = 1 << iota
	stateTransaction
	stateUpdate
)

func (s state) String() string {
	switch s {
	case stateAuthorization:
		return "AUTHORIZATION"
	case stateTransaction:
		return "TRANSACTION"
	case stateUpdate:
		return "UPDATE"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// levelTrace logs protocol transcripts, below Debug.
const levelTrace = slog.LevelDebug - 4

// ioBuffer is the size of the read and write buffers of a connection, and of
// the buffer messages are copied through.
const ioBuffer = 64 << 10

// conn is one POP3 session. Everything it knows is here, never on Server.
type conn struct {
	srv    *Server
	raw    net.Conn // as accepted (below TLS): closed to end the session
	nc     net.Conn // what the protocol reads and writes: raw, or TLS over it
	r      *bufio.Reader
	w      *bufio.Writer
	buf    []byte // message copy buffer, allocated at first RETR/TOP
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	remote net.Addr
	ip     netip.Addr
	tls    bool

	state   state
	user    string // name given by USER, waiting for PASS
	account string // authenticated account
	userID  int64
	drop    *maildrop
	errs    int  // client mistakes so far
	quit    bool // end the session after this reply

	started   time.Time
	retrieved int   // RETR and TOP answered
	sentBytes int64 // message octets sent
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{
		srv:     s,
		raw:     nc,
		ctx:     ctx,
		cancel:  cancel,
		remote:  nc.RemoteAddr(),
		state:   stateAuthorization,
		started: time.Now(),
	}
	if tc, ok := nc.(*tls.Conn); ok {
		c.raw = tc.NetConn()
		c.tls = true
	}
	c.ip = auth.IPFromAddr(c.remote)
	c.log = s.log.With("conn", s.nextID.Add(1), "remote", c.remote.String())
	c.setConn(nc)
	return c
}

// setConn makes nc the connection the protocol runs on (again after STLS).
// Whatever the old reader had buffered is dropped.
func (c *conn) setConn(nc net.Conn) {
	c.nc = nc
	c.r = bufio.NewReaderSize(nc, ioBuffer)
	c.w = bufio.NewWriterSize(deadlineWriter{nc, c.srv.opts.IdleTimeout}, ioBuffer)
}

// deadlineWriter gives every write to the client IdleTimeout to complete, so
// that a client that stops reading cannot hold a session for ever.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.nc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.nc.Write(p)
}

// serve runs the session until QUIT, an error that ends it, or the
// connection's end.
func (c *conn) serve() {
	reason := "quit"
	defer func() {
		if r := recover(); r != nil {
			reason = "panic"
			c.log.Error("panic in pop3 session", "panic", r, "stack", string(debug.Stack()))
			c.w.WriteString(errInternal.line() + "\r\n")
			c.w.Flush()
			if c.srv.onPanic != nil {
				c.srv.onPanic(r)
			}
		}
		c.cancel()
		c.raw.Close()
		c.srv.forget(c)
		c.log.Info("pop3 session ended", "reason", reason,
			"retrieved", c.retrieved, "bytes", c.sentBytes,
			"duration", time.Since(c.started).Round(time.Millisecond))
	}()
	c.raw.SetDeadline(time.Now().Add(c.srv.opts.IdleTimeout))
	c.reply("+OK " + c.srv.opts.Hostname + " POP3 server ready")
	for !c.quit {
		if err := c.flushUnlessPipelined(); err != nil {
			reason = "write failed"
			return
		}
		line, err := c.readLine(maxCommandLine)
		if err == nil {
			cmd, perr := parseCommand(line)
			if perr != nil {
				err = perr
			} else {
				c.traceCommand(cmd)
				err = c.dispatch(cmd)
			}
		}
		if err == nil {
			continue
		}
		var pe *Error
		if !errors.As(err, &pe) {
			reason = endReason(err)
			return
		}
		if r := c.fail(pe); r != "" {
			reason = r
			break
		}
	}
	c.w.Flush()
}

// endReason names, for the log, why reading from the client failed.
func endReason(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "client closed"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "idle timeout"
	case errors.Is(err, net.ErrClosed):
		return "server closed"
	case errors.Is(err, errHandshake):
		return "tls handshake failed"
	case errors.Is(err, errAborted):
		return "response aborted"
	}
	return "read failed"
}

// fail sends the reply of a failed command. It returns why the session must
// end, or "".
func (c *conn) fail(e *Error) string {
	if e.Err != nil {
		lvl := slog.LevelWarn
		if e.Misuse {
			lvl = slog.LevelDebug
		}
		c.log.Log(c.ctx, lvl, "pop3 command failed", "reply", e.line(), "err", e.Err)
	}
	c.reply(e.line())
	switch {
	case e.Close:
		return "closed after error"
	case e.Misuse:
		c.errs++
		if c.errs >= c.srv.opts.MaxErrors {
			c.log.Warn("pop3 client dropped after too many errors", "errors", c.errs)
			return "too many errors"
		}
	}
	return ""
}

func (c *conn) dispatch(cmd *command) error {
	h, ok := c.srv.commands[cmd.name]
	if !ok {
		return errUnknown
	}
	if h.states&c.state == 0 {
		return errWrongState
	}
	return h.fn(c, cmd)
}

// readLine reads one line of at most max octets (CRLF included), waiting at
// most IdleTimeout. A longer line is skipped and reported as errLineTooLong;
// one past maxDiscard ends the session. The slice is valid until the next
// read.
func (c *conn) readLine(max int) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.IdleTimeout))
	line, err := c.r.ReadSlice('\n')
	switch {
	case err == nil && len(line) <= max:
		return line, nil
	case err == nil:
		return nil, errLineTooLong
	case !errors.Is(err, bufio.ErrBufferFull):
		return nil, err // EOF (a half line counts as none), timeout, closed
	}
	for skipped := len(line); ; {
		line, err = c.r.ReadSlice('\n')
		skipped += len(line)
		if err == nil {
			return nil, errLineTooLong
		} else if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if skipped > maxDiscard {
			return nil, errTooManyBytes
		}
	}
}

// flushUnlessPipelined sends the buffered replies unless a whole command is
// already waiting: replies to pipelined commands (RFC 2449 §6.6) go out in
// as few packets as possible, and a client waiting for its replies always
// gets them.
func (c *conn) flushUnlessPipelined() error {
	if n := c.r.Buffered(); n > 0 {
		if b, _ := c.r.Peek(n); bytes.IndexByte(b, '\n') >= 0 {
			return nil
		}
	}
	return c.w.Flush()
}

// reply buffers one response line.
func (c *conn) reply(line string) {
	if c.log.Enabled(c.ctx, levelTrace) {
		c.log.Log(c.ctx, levelTrace, "S: "+line)
	}
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
}

func (c *conn) ok(format string, args ...any) {
	c.reply("+OK " + fmt.Sprintf(format, args...))
}

// traceCommand logs a command at trace level, without credentials.
func (c *conn) traceCommand(cmd *command) {
	if !c.log.Enabled(c.ctx, levelTrace) {
		return
	}
	line := cmd.name
	switch cmd.name {
	case "PASS":
		line += " <redacted>"
	case "AUTH":
		if len(cmd.args) > 0 {
			line += " " + cmd.args[0]
		}
		if len(cmd.args) > 1 {
			line += " <redacted>"
		}
	default:
		if cmd.rest != "" {
			line += " " + cmd.rest
		}
	}
	c.log.Log(c.ctx, levelTrace, "C: "+line)
}
