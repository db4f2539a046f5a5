package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"pombo/auth"
	"pombo/storage"
)

// Store is what the POP3 server needs of storage.
type Store interface {
	UserByAddress(ctx context.Context, address string) (*storage.User, error)
	MailboxByName(ctx context.Context, userID int64, name string) (*storage.Mailbox, error)
	Messages(ctx context.Context, mailboxID int64, ranges []storage.UIDRange, fn func(*storage.Message) error) error
	OpenMessageLoaded(ctx context.Context, messageID int64) (*storage.BlobReader, error)
	OpenMessageHeader(ctx context.Context, messageID int64) (*storage.BlobReader, error)
	Remove(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error)
}

// Defaults for zero fields of Options.
const (
	DefaultIdleTimeout = 10 * time.Minute // RFC 1939 §3: at least 10 minutes
	DefaultMaxErrors   = 10
)

// Options configure a Server. Store and Auth are required.
type Options struct {
	Store Store
	Auth  *auth.Authenticator
	// TLS is offered by STLS on plain listeners; nil offers no STLS.
	// Implicit-TLS listeners are wrapped by the caller.
	TLS      *tls.Config
	Log      *slog.Logger // nil: slog.Default()
	Hostname string       // in the greeting
	// IdleTimeout closes a connection that sends nothing for that long
	// (and bounds how long one write to the client may block).
	IdleTimeout time.Duration
	// MaxErrors disconnects a client after that many mistakes.
	MaxErrors int
	// AllowPlaintextFromLoopback allows USER/PASS and AUTH without TLS from
	// 127.0.0.0/8 and ::1.
	AllowPlaintextFromLoopback bool
}

// Server serves POP3 on any number of listeners. Sessions share only the
// maildrop locks.
type Server struct {
	opts     Options
	log      *slog.Logger
	commands map[string]handler

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	locked    map[int64]*conn // user id → the session holding its maildrop
	wg        sync.WaitGroup
	nextID    atomic.Uint64

	// onPanic, when set (tests), is called with a recovered panic.
	onPanic func(any)
}

// New returns a Server; it serves nothing until Serve.
func New(opts Options) *Server {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = DefaultMaxErrors
	}
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:      opts,
		log:       log.With("proto", "pop3"),
		commands:  defaultCommands(),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		locked:    make(map[int64]*conn),
	}
}

// Serve accepts connections on l until l or the server is closed. It may be
// called for several listeners at once. A connection that is a *tls.Conn
// (implicit TLS) counts as encrypted from the start.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// EMFILE and the like: wait and try again rather than spin or
			// give up on the listener.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-s.ctx.Done():
				return net.ErrClosed
			}
		}
		backoff = 0
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return net.ErrClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
		}()
	}
}

// serveConn runs one session on nc and returns when it ends (tests, fuzzing).
func (s *Server) serveConn(nc net.Conn) {
	c := newConn(s, nc)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.serve()
}

// Close stops the listeners and ends every session without UPDATE: marked
// messages stay. It waits up to 5 seconds for the sessions to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.raw.Close()
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.log.Warn("pop3 sessions did not end within 5s")
	}
	return nil
}

// forget drops a finished connection and its maildrop lock.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if c.userID != 0 && s.locked[c.userID] == c {
		delete(s.locked, c.userID)
	}
	s.mu.Unlock()
}

// lock takes the maildrop of userID for c; false if another session has it.
func (s *Server) lock(userID int64, c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if holder, ok := s.locked[userID]; ok && holder != c {
		return false
	}
	s.locked[userID] = c
	return true
}

// Reject returns the function netlimit calls with a connection over its
// limits: it tells the client, in POP3, to come back later. implicitTLS is
// the listener's TLS configuration when it is an implicit-TLS listener
// (port 995), so that the refusal is readable by the client; nil otherwise.
// netlimit bounds the whole exchange with a deadline.
func Reject(implicitTLS *tls.Config) func(net.Conn) {
	return func(nc net.Conn) {
		var w io.Writer = nc
		if implicitTLS != nil {
			tc := tls.Server(nc, implicitTLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			w = tc
		}
		io.WriteString(w, "-ERR ["+codeSysTemp+"] too many connections\r\n")
	}
}

// unlock releases the maildrop of userID if c holds it.
func (s *Server) unlock(userID int64, c *conn) {
	s.mu.Lock()
	if s.locked[userID] == c {
		delete(s.locked, userID)
	}
	s.mu.Unlock()
}
