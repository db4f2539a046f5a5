package smtp

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"pombo/storage"
)

// Limits bound what one peer can cost a server.
type Limits struct {
	MaxMessageSize int64 // octets; advertised as SIZE
	MaxRecipients  int   // accepted RCPT per transaction; 0: no limit
	MaxErrors      int   // refused commands before the connection is dropped; 0: no limit
	MaxLineLength  int   // octets, CRLF included, for commands and message lines
	CommandTimeout time.Duration
	DataTimeout    time.Duration // the whole of DATA, or of all BDAT chunks of one message
}

// Options configure a Server.
type Options struct {
	Hostname string // greeting, EHLO, Received
	Store    *storage.Store
	Log      *slog.Logger
	TLS      *tls.Config // nil: no STARTTLS
	Limits   Limits
	// Enqueuer takes messages for remote targets (forwarding aliases). While
	// it is nil, a recipient that needs it is refused with 451 4.3.0.
	Enqueuer Enqueuer
}

// Server is one SMTP server (one policy) serving one or more listeners.
type Server struct {
	opts    Options
	service string // "smtp" or "submission", for logs
	policy  policy
	log     *slog.Logger
	srv     *gosmtp.Server

	closing  atomic.Bool
	inflight sync.WaitGroup // DATA/BDAT being delivered
}

func newServer(service string, opts Options, pol policy) *Server {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Limits.MaxLineLength <= 0 {
		opts.Limits.MaxLineLength = 1000
	}
	if opts.Limits.CommandTimeout <= 0 {
		opts.Limits.CommandTimeout = 5 * time.Minute
	}
	if opts.Limits.DataTimeout <= 0 {
		opts.Limits.DataTimeout = 10 * time.Minute
	}
	s := &Server{opts: opts, service: service, policy: pol, log: opts.Log.With("svc", service)}
	gs := gosmtp.NewServer(gosmtp.BackendFunc(s.newSession))
	gs.Domain = opts.Hostname
	gs.TLSConfig = opts.TLS
	gs.MaxMessageBytes = opts.Limits.MaxMessageSize
	gs.MaxLineLength = opts.Limits.MaxLineLength
	// Recipients are counted by the session, which replies 452 4.5.3 itself.
	gs.MaxRecipients = 0
	gs.ReadTimeout = opts.Limits.CommandTimeout
	gs.WriteTimeout = opts.Limits.CommandTimeout
	gs.EnableSMTPUTF8 = true
	gs.ErrorLog = errorLog{s.log}
	s.srv = gs
	return s
}

// Serve accepts connections on l until it is closed.
func (s *Server) Serve(l net.Listener) error {
	return s.srv.Serve(&listener{Listener: l, s: s})
}

// Close stops the listeners and ends every session, then waits (up to 10
// seconds) for the deliveries in progress, so that storage can be closed
// after it.
func (s *Server) Close() error {
	s.closing.Store(true)
	err := s.srv.Close()
	if err == gosmtp.ErrServerClosed {
		err = nil
	}
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Warn("smtp deliveries still running at shutdown")
	}
	return err
}

// Reject refuses a connection over the connection limits (netlimit calls it
// before closing c).
func (s *Server) Reject(c net.Conn) {
	s.log.Debug("smtp connection refused: too many connections", "ip", ipOf(c.RemoteAddr()))
	fmt.Fprintf(c, "421 4.7.0 %s Too many connections, try again later\r\n", s.opts.Hostname)
}

// listener wraps every accepted connection in a *conn.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*tls.Conn); ok && l.s.opts.TLS != nil {
		// Implicit TLS (port 465): track the plain connection under TLS,
		// and hand go-smtp a *tls.Conn so that it knows the session is
		// encrypted. The handshake has not started yet.
		return tls.Server(l.s.newConn(tc.NetConn()), l.s.opts.TLS), nil
	}
	return l.s.newConn(c), nil
}

// ctx is the context of storage calls made for a command.
func (s *Server) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.Limits.CommandTimeout)
}

// errorLog turns go-smtp's log lines (connection errors, recovered panics)
// into slog records.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.print(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.print(fmt.Sprintln(v...)) }

func (e errorLog) print(s string) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "panic") && strings.Contains(s, "pombo/"):
		e.log.Error("smtp session panicked", "detail", s)
	case strings.HasPrefix(s, "panic"):
		// go-smtp v0.25.1 recovers panics of its own that any client can
		// provoke, all after the connection was closed: it goes on
		// running pipelined commands after QUIT or its own too-many-errors
		// close, and its BDAT goroutine may start after the close; each
		// then calls a Session that is nil. No pombo code is on the stack.
		first, _, _ := strings.Cut(s, "\n")
		e.log.Warn("smtp: go-smtp recovered a panic in its own code after the connection closed", "detail", first)
		e.log.Debug("smtp: go-smtp panic", "detail", s)
	default:
		e.log.Debug("smtp connection error", "detail", s)
	}
}
