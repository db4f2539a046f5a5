// Package netbuf coalesces a server's small writes into few system calls.
//
// go-imap's server flushes after every response line, so a FETCH of 100,000
// messages costs 100,000 write calls (a profile showed ~14% of server CPU in
// them). Conn buffers writes and sends them when the buffer fills, when the
// server turns to read (it has said all it had to say), or at most Delay
// after the first buffered byte (for updates pushed while the client is
// quiet, such as IDLE). It sits below TLS, so TLS records are coalesced too.
package netbuf

import (
	"net"
	"sync"
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
			return c.Conn.Write(p)
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
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		c.err = err
	}
	return err
}

// closeFlush bounds the last flush.
const closeFlush = 5 * time.Second

// Close flushes, then closes. The flush gets a deadline of its own: the
// layer above may have set one in the past to stop further writes
// (crypto/tls does right after its close_notify alert), yet what it wrote
// before is due: the last response, the BYE, the alert.
func (c *Conn) Close() error {
	c.Conn.SetWriteDeadline(time.Now().Add(closeFlush))
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
