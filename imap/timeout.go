package imap

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Connection timeouts.
//
// imapserver (go-imap v2.0.0-beta.8) sets read deadlines of its own: 30 s
// for the next command before login, 35 min for the next command after
// login and for DONE during IDLE, 30 s for the rest of any command once its
// first byte has come, 5 min for an APPEND literal. None of them bounds the
// whole time before login: a client that sends a NOOP every 29 s keeps its
// connection (and its per-IP slot) forever, and on an implicit-TLS port a
// client that never sends its ClientHello is not timed out at all (the
// handshake runs inside the greeting's write, with no read deadline set).
//
// guardConn sits below TLS (see Server.WrapListener) and adds:
//   - a login timeout: from accept, a client has LoginTimeout in all to log
//     in, TLS handshake, STARTTLS and failed attempts included. Before
//     login, imapserver's per-command read deadlines are replaced by this
//     one.
//   - an inactivity autologout (RFC 9051 §5.4): once logged in, no byte
//     read or written for Autologout ends the session with a BYE. The
//     timer does not run while the client is in IDLE, which has its own
//     limit (IdleTimeout, session.Idle), and restarts when IDLE ends.
//
// After login imapserver's read deadlines apply unchanged, so neither the
// silence between commands nor an IDLE can outlast its 35 minutes.

// byeGrace is how long a timed-out connection is given to say BYE before
// it is closed under imapserver's feet.
const byeGrace = 2 * time.Second

// WrapListener returns l with every connection watched for the login
// timeout and the autologout. Wrap below TLS, so that the TLS handshake is
// timed too and the guard survives STARTTLS; without it only imapserver's
// own deadlines apply.
func (s *Server) WrapListener(l net.Listener) net.Listener {
	return guardListener{Listener: l, srv: s}
}

type guardListener struct {
	net.Listener
	srv *Server
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.srv.newGuard(c), nil
}

type guardState int

const (
	guardLogin guardState = iota // not logged in yet
	guardAuth                    // logged in, autologout timer running
	guardIdle                    // in IDLE, autologout timer stopped
	guardDone                    // closed or closing
)

// guardConn is one watched connection.
type guardConn struct {
	net.Conn
	log        *slog.Logger
	autologout time.Duration
	start      time.Time
	// active is when a byte was last read or written, as time since start
	// (monotonic). Writes count so that a long response to a slow reader
	// is not taken for silence.
	active atomic.Int64

	mu    sync.Mutex
	state guardState
	timer *time.Timer
	bye   func(text string) error // imapserver's Conn.Bye, once the session exists
}

func (s *Server) newGuard(c net.Conn) *guardConn {
	g := &guardConn{
		Conn:       c,
		log:        s.log.With("proto", "imap", "remote", c.RemoteAddr().String()),
		autologout: s.opts.Autologout,
		start:      time.Now(),
	}
	// The timer normally ends the connection with a BYE; this deadline is
	// the backstop, and the only limit on a TLS handshake that never ends.
	c.SetReadDeadline(g.start.Add(s.opts.LoginTimeout + byeGrace))
	g.mu.Lock()
	g.timer = time.AfterFunc(s.opts.LoginTimeout, g.expire)
	g.mu.Unlock()
	return g
}

// guardOf finds the guard under a session's connection, or nil.
func guardOf(nc net.Conn) *guardConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	g, _ := nc.(*guardConn)
	return g
}

func (g *guardConn) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if n > 0 {
		g.touch()
	}
	return n, err
}

func (g *guardConn) Write(p []byte) (int, error) {
	n, err := g.Conn.Write(p)
	if n > 0 {
		g.touch()
	}
	return n, err
}

func (g *guardConn) touch() { g.active.Store(int64(time.Since(g.start))) }

// SetReadDeadline ignores imapserver's deadlines before login: the login
// deadline set at accept covers everything until then.
func (g *guardConn) SetReadDeadline(t time.Time) error {
	g.mu.Lock()
	login := g.state == guardLogin
	g.mu.Unlock()
	if login {
		return nil
	}
	return g.Conn.SetReadDeadline(t)
}

func (g *guardConn) SetDeadline(t time.Time) error {
	return errors.Join(g.SetReadDeadline(t), g.Conn.SetWriteDeadline(t))
}

func (g *guardConn) Close() error {
	g.mu.Lock()
	g.state = guardDone
	g.timer.Stop()
	g.mu.Unlock()
	return g.Conn.Close()
}

// The methods below are called by the session; a nil guard (a listener
// not wrapped) does nothing.

// attach gives the guard the way to say BYE.
func (g *guardConn) attach(bye func(string) error) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.bye = bye
	g.mu.Unlock()
}

// loggedIn ends the login timeout and starts the autologout timer.
func (g *guardConn) loggedIn() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != guardLogin {
		return // timed out while the login was checked: it is closing
	}
	g.state = guardAuth
	g.touch()
	g.timer.Reset(g.autologout)
	g.Conn.SetReadDeadline(time.Time{}) // imapserver sets its own from now on
}

// idle stops the autologout timer while the client is in IDLE and starts
// it afresh when IDLE ends.
func (g *guardConn) idle(on bool) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case on && g.state == guardAuth:
		g.state = guardIdle
		g.timer.Stop()
	case !on && g.state == guardIdle:
		g.state = guardAuth
		g.touch()
		g.timer.Reset(g.autologout)
	}
}

// expire runs when the timer fires: it ends a connection that has not
// logged in, or one silent for the autologout time.
func (g *guardConn) expire() {
	g.mu.Lock()
	var reason, text string
	switch g.state {
	case guardLogin:
		reason, text = "login timeout", "Too slow to log in"
	case guardAuth:
		silent := time.Since(g.start) - time.Duration(g.active.Load())
		if rest := g.autologout - silent; rest > 0 {
			g.timer.Reset(rest)
			g.mu.Unlock()
			return
		}
		// RFC 9051 §7.1.5: BYE for an inactivity autologout.
		reason, text = "autologout", "Autologout; idle for too long"
	default:
		g.mu.Unlock()
		return
	}
	g.state = guardDone
	bye := g.bye
	g.mu.Unlock()

	g.log.Debug("closing connection", "reason", reason)
	said := make(chan struct{})
	go func() {
		defer close(said)
		if bye != nil {
			bye(text) // closes the connection when it can write
		}
	}()
	t := time.NewTimer(byeGrace)
	defer t.Stop()
	select {
	case <-said:
	case <-t.C: // a write is stuck (e.g. the TLS handshake): close anyway
	}
	g.Conn.Close()
}
