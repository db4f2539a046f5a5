// Package netbuf coalesces a server's small writes into few system calls.
//
// go-imap's server flushes after every response line, so a FETCH of 100,000
// messages costs 100,000 write calls (a profile showed ~14% of server CPU in
// them). go-smtp does the same, so an EHLO reply is a write call per line.
// Conn buffers writes and sends them when the buffer fills, when the
// server turns to read (it has said all it had to say), or at most Delay
// after the first buffered byte (for updates pushed while the client is
// quiet, such as IDLE). It sits below TLS, so TLS records are coalesced too.
//
// Write deadlines are kept until the socket is written to: go-imap sets one
// before every response, and giving each to the socket re-arms a runtime
// timer, a third of the server's CPU in a UID FETCH 1:* (UID FLAGS) of
// 100,000 messages, for a buffer that goes out every 32 KB.
package netbuf

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Delay bounds how long a buffered write waits for company.
const Delay = 2 * time.Millisecond

// size is the buffer that triggers a flush.
const size = 32 << 10

// Conn is a net.Conn whose writes are coalesced.
type Conn struct {
	net.Conn

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer
	err   error // a flush error, returned by the next Write

	// deadline is the write deadline last set, in Unix nanoseconds (0:
	// none); applied is the one the socket was last given (guarded by mu);
	// writing is set while the socket is written to.
	deadline atomic.Int64
	applied  int64
	writing  atomic.Bool
}

// Wrap returns c with coalesced writes.
func Wrap(c net.Conn) *Conn { return &Conn{Conn: c} }

// Write buffers p.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.buf)+len(p) > size {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= size {
			return c.writeLocked(p)
		}
	}
	c.buf = append(c.buf, p...)
	if c.timer == nil {
		c.timer = time.AfterFunc(Delay, func() { c.Flush() })
	} else if len(c.buf) == len(p) {
		c.timer.Reset(Delay)
	}
	return len(p), nil
}

// Read flushes what is buffered, then reads: a server that reads has
// finished its reply.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.Flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Flush sends what is buffered.
func (c *Conn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *Conn) flushLocked() error {
	if c.timer != nil {
		c.timer.Stop()
	}
	if len(c.buf) == 0 || c.err != nil {
		return c.err
	}
	_, err := c.writeLocked(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		c.err = err
	}
	return err
}

// SetWriteDeadline records t for the next write to the socket, or gives
// it to the socket at once while a write is under way: it may be meant to
// stop that write (crypto/tls sets one in the past to end a connection).
// Without a write under way, the socket would heed it no sooner.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	var d int64
	if !t.IsZero() {
		d = t.UnixNano()
	}
	c.deadline.Store(d)
	if c.writing.Load() {
		return c.Conn.SetWriteDeadline(t)
	}
	return nil
}

// SetDeadline sets the read deadline, and the write deadline as
// SetWriteDeadline does.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// writeLocked writes p to the socket, with the write deadline last set.
func (c *Conn) writeLocked(p []byte) (int, error) {
	c.writing.Store(true)
	defer c.writing.Store(false)
	c.deadlineLocked()
	return c.Conn.Write(p)
}

// deadlineLocked gives the socket the write deadline last set. It checks
// again after setting one: SetWriteDeadline, once writing is set, gives its
// deadline to the socket itself, and this must not undo it with an older
// one.
func (c *Conn) deadlineLocked() {
	for {
		d := c.deadline.Load()
		if d == c.applied {
			return
		}
		var t time.Time
		if d != 0 {
			t = time.Unix(0, d)
		}
		c.Conn.SetWriteDeadline(t)
		c.applied = d
	}
}

// closeFlush bounds the last flush.
const closeFlush = 5 * time.Second

// Close flushes, then closes. The flush gets a deadline of its own: the
// layer above may have set one in the past to stop further writes
// (crypto/tls does right after its close_notify alert), yet what it wrote
// before is due: the last response, the BYE, the alert.
func (c *Conn) Close() error {
	c.SetWriteDeadline(time.Now().Add(closeFlush))
	c.Flush()
	return c.Conn.Close()
}

// Listener wraps every accepted connection.
type Listener struct{ net.Listener }

// Accept returns the next connection, wrapped.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
