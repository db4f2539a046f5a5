// Package imap serves mailboxes over IMAP4rev1/IMAP4rev2 with the
// emersion/go-imap/v2 imapserver, backed by storage.
//
// Invariants:
//   - Each session keeps its own view of the selected mailbox: the ascending
//     list of UIDs its client knows (sequence number = index + 1) and the
//     HIGHESTMODSEQ up to which it has applied changes. The view changes
//     only when the session tells its client (EXISTS, EXPUNGE), so sequence
//     numbers never shift under a client.
//   - Changes made by anyone (SMTP delivery, other IMAP sessions, POP3) are
//     learnt from storage's event subscription as a hint, then read with
//     ChangesSince: the database is the truth. Expunges are held back during
//     FETCH, STORE and SEARCH (RFC 9051 §7.5.1).
//   - ENVELOPE and BODYSTRUCTURE come from the parse stored at delivery;
//     body sections are streamed from the stored message, seeking to what
//     was asked for.
//   - Passwords are accepted only over TLS, or from loopback when the
//     configuration allows it (LOGINDISABLED otherwise).
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"pombo/auth"
	"pombo/storage"
)

// Options configure a Server.
type Options struct {
	Store *storage.Store
	Auth  *auth.Authenticator
	Log   *slog.Logger
	// TLS enables STARTTLS on plain listeners; nil disables it.
	TLS *tls.Config
	// AllowPlaintextFromLoopback lets clients on loopback log in without TLS.
	AllowPlaintextFromLoopback bool
	// MaxMessageSize bounds APPEND (APPENDLIMIT).
	MaxMessageSize int64
	// IdleTimeout ends an IDLE command after this long (RFC 9051 §5.4: at
	// least 30 minutes). Zero means 30 minutes.
	IdleTimeout time.Duration
	// LoginTimeout is the time a client has from connecting to logging in,
	// on listeners wrapped by WrapListener. Zero means DefaultLoginTimeout.
	LoginTimeout time.Duration
	// Autologout ends a logged-in session that sends nothing this long
	// outside IDLE, on listeners wrapped by WrapListener (RFC 9051 §5.4: at
	// least 30 minutes). Zero means 30 minutes.
	Autologout time.Duration
	// MaxConnectionsPerUser bounds the logged-in sessions of one user.
	// Zero means DefaultMaxConnectionsPerUser.
	MaxConnectionsPerUser int
	// Hostname is used in the greeting logs only.
	Hostname string
}

// DefaultLoginTimeout is ample for a client that logs in by itself, and
// short for one that holds a connection open without logging in.
const DefaultLoginTimeout = time.Minute

// DefaultMaxConnectionsPerUser allows a few devices each with the handful
// of connections Thunderbird opens per account.
const DefaultMaxConnectionsPerUser = 50

// Server is an IMAP server. One Server serves any number of listeners.
type Server struct {
	opts Options
	log  *slog.Logger

	// strict refuses passwords without TLS; lax accepts them (loopback).
	strict, lax *imapserver.Server

	mu      sync.Mutex
	perUser map[int64]int
	closed  bool
	chans   []*chanListener
	inner   sync.WaitGroup // imapserver.Serve calls under way
	warming sync.WaitGroup // warmInbox calls under way

	// testHook, when set, runs at the start of Select (tests inject panics).
	testHook func(mailbox string)
}

// Caps is the set of capabilities pombo advertises.
func caps() imap.CapSet {
	return imap.CapSet{
		imap.CapIMAP4rev1:        {},
		imap.CapIMAP4rev2:        {},
		imap.CapNamespace:        {},
		imap.CapUIDPlus:          {},
		imap.CapESearch:          {},
		imap.CapListExtended:     {},
		imap.CapListStatus:       {},
		imap.CapMove:             {},
		imap.CapStatusSize:       {},
		imap.CapBinary:           {},
		imap.CapChildren:         {},
		imap.CapSpecialUse:       {},
		imap.CapCreateSpecialUse: {},
		imap.CapLiteralPlus:      {},
	}
}

// New returns a server; it listens on nothing until Serve.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.LoginTimeout <= 0 {
		o.LoginTimeout = DefaultLoginTimeout
	}
	if o.Autologout <= 0 {
		o.Autologout = 30 * time.Minute
	}
	if o.MaxConnectionsPerUser <= 0 {
		o.MaxConnectionsPerUser = DefaultMaxConnectionsPerUser
	}
	if o.MaxMessageSize <= 0 || o.MaxMessageSize > 1<<32-1 {
		o.MaxMessageSize = 1<<32 - 1
	}
	s := &Server{opts: o, log: o.Log, perUser: make(map[int64]int)}
	mk := func(insecure bool) *imapserver.Server {
		return imapserver.New(&imapserver.Options{
			NewSession:   func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) { return s.newSession(c) },
			Caps:         caps(),
			Logger:       slogPrintf{o.Log},
			TLSConfig:    o.TLS,
			InsecureAuth: insecure,
		})
	}
	s.strict, s.lax = mk(false), mk(true)
	return s
}

type slogPrintf struct{ l *slog.Logger }

// Printf logs imapserver's messages as warnings, except those about a
// connection that timed out or was closed under a command (a client gone,
// or cut by a timeout): these are the client's business, logged at debug.
func (p slogPrintf) Printf(format string, args ...any) {
	level := slog.LevelWarn
	for _, a := range args {
		if err, ok := a.(error); ok && connGone(err) {
			level = slog.LevelDebug
		}
	}
	p.l.Log(context.Background(), level, "imap", "msg", fmt.Sprintf(format, args...))
}

func connGone(err error) bool {
	var ne net.Error
	return errors.Is(err, net.ErrClosed) || errors.As(err, &ne) && ne.Timeout()
}

// Serve accepts connections on l until it is closed. Connections from
// loopback go to the server that accepts plaintext passwords when the
// configuration allows it; TLS connections are recognised by imapserver
// itself.
func (s *Server) Serve(l net.Listener) error {
	strictL, laxL := newChanListener(l.Addr()), newChanListener(l.Addr())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.chans = append(s.chans, strictL, laxL)
	s.inner.Add(2)
	s.mu.Unlock()
	go func() { defer s.inner.Done(); s.strict.Serve(strictL) }()
	go func() { defer s.inner.Done(); s.lax.Serve(laxL) }()
	defer func() {
		strictL.Close()
		laxL.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		target := strictL
		if s.opts.AllowPlaintextFromLoopback && auth.IsLoopback(c.RemoteAddr()) {
			target = laxL
		}
		if !target.push(c) {
			c.Close()
			return net.ErrClosed
		}
	}
}

// Close stops the listeners' servers and ends every session.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	chans := s.chans
	s.mu.Unlock()
	// imapserver's Close races with a Serve that has not yet registered
	// (WaitGroup Add during Wait): stop our Serve calls first, then close
	// the sessions.
	for _, l := range chans {
		l.Close()
	}
	s.inner.Wait()
	err1 := s.strict.Close()
	err2 := s.lax.Close()
	s.warming.Wait()
	return errors.Join(err1, err2)
}

// warmInbox reads a user's INBOX view into storage's cache in the
// background, at login: clients SELECT it right after LIST and a few other
// commands, and the first read of a mailbox since start-up reads every
// message's row (about 0.1 s at 100,000 messages). That read now overlaps
// the commands in between; once cached, a SELECT reads only the changes.
func (s *Server) warmInbox(userID int64) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.warming.Add(1) // under mu: never during Close's Wait
	s.mu.Unlock()
	go func() {
		defer s.warming.Done()
		ctx, cancel := s.ctx()
		defer cancel()
		mb, err := s.opts.Store.MailboxByName(ctx, userID, "INBOX")
		if err == nil {
			err = s.opts.Store.WarmView(ctx, mb.ID)
		}
		if err != nil {
			s.log.Debug("read INBOX ahead of SELECT", "user_id", userID, "err", err)
		}
	}()
}

// RejectConn writes the refusal of a connection over the limits.
func RejectConn(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("* BYE [UNAVAILABLE] Too many connections, try again later\r\n"))
	c.Close()
}

func (s *Server) acquireUser(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[id] >= s.opts.MaxConnectionsPerUser {
		return false
	}
	s.perUser[id]++
	return true
}

func (s *Server) releaseUser(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[id]--; s.perUser[id] <= 0 {
		delete(s.perUser, id)
	}
}

// chanListener hands accepted connections to one imapserver.Server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// ctxTimeout bounds one storage call made for a command.
const ctxTimeout = 5 * time.Minute

func (s *Server) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), ctxTimeout)
}
