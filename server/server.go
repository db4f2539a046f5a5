// Package server wires pombo together: configuration, storage, TLS, the
// authenticator and the protocol listeners. `pombo serve` and the end-to-end
// tests use it alike.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"pombo/auth"
	"pombo/config"
	"pombo/netbuf"
	"pombo/netlimit"
	"pombo/queue"
	"pombo/storage"
	"pombo/tlsconf"
)

// service is one running protocol server on one or more listeners.
type service interface {
	// Serve accepts connections on l until it is closed.
	Serve(l net.Listener) error
	// Close stops accepting and ends the open sessions.
	Close() error
}

// listenerWrapper is a service that watches its connections below TLS, so
// that implicit TLS and STARTTLS are alike to it (IMAP's login timeout and
// autologout).
type listenerWrapper interface {
	WrapListener(l net.Listener) net.Listener
}

// Bound is a listener as actually bound (port 0 resolved).
type Bound struct {
	config.ListenAddr
	Addr net.Addr
}

// Server is a running pombo.
type Server struct {
	Config     *config.Config
	Log        *slog.Logger
	Store      *storage.Store
	Auth       *auth.Authenticator
	TLS        *tls.Config
	SelfSigned bool
	// Queue is the outbound queue: submission enqueues remote mail here.
	Queue *queue.Queue

	mu       sync.Mutex
	bound    []Bound
	lns      []net.Listener
	services []service
	bg       []func() // stoppers of background work (queue)
	limiter  *netlimit.Limiter
	wg       sync.WaitGroup
}

// New opens storage and TLS for cfg. It binds nothing yet.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	st, err := storage.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	tc, self, err := tlsconf.Load(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.DataDir, cfg.Hostname)
	if err != nil {
		st.Close()
		return nil, err
	}
	s := &Server{
		Config:     cfg,
		Log:        log,
		Store:      st,
		TLS:        tc,
		SelfSigned: self,
		Queue:      newQueue(cfg, st, log),
		limiter:    netlimit.NewLimiter(cfg.Limits.MaxConnections, cfg.Limits.MaxConnectionsPerIP),
		Auth: &auth.Authenticator{
			Users: st,
			Throttle: auth.NewThrottle(auth.ThrottleOptions{
				MaxPerIP:      cfg.Auth.MaxFailuresPerIP,
				MaxPerAccount: cfg.Auth.MaxFailuresPerAccount,
				Window:        cfg.Auth.FailureWindow.Duration(),
			}),
			Log: log,
		},
	}
	return s, nil
}

// Start binds every configured listener whose protocol is built and serves
// it in the background. On error, whatever was started is stopped.
func (s *Server) Start() error {
	for _, la := range s.Config.ListenAddrs() {
		svc, reject, err := s.serviceFor(la)
		if err != nil {
			s.Close()
			return err
		}
		if svc == nil {
			continue // protocol not built
		}
		raw, err := net.Listen("tcp", la.Addr)
		if err != nil {
			s.Close()
			return fmt.Errorf("%s: listen on %s: %w", la.Key, la.Addr, err)
		}
		var l net.Listener = netlimit.Wrap(raw, s.limiter, reject)
		if la.Service == "imap" || la.Service == "smtp" || la.Service == "submission" {
			// go-imap and go-smtp flush every response line; coalesce them below TLS.
			l = netbuf.Listener{Listener: l}
		}
		if w, ok := svc.(listenerWrapper); ok {
			l = w.WrapListener(l)
		}
		if la.ImplicitTLS {
			l = tls.NewListener(l, s.TLS)
		}
		s.mu.Lock()
		s.bound = append(s.bound, Bound{ListenAddr: la, Addr: raw.Addr()})
		s.lns = append(s.lns, l)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := svc.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
				s.Log.Error("listener stopped", "listener", la.Key, "addr", la.Addr, "err", err)
			}
		}()
	}
	if err := s.startQueue(); err != nil {
		s.Close()
		return err
	}
	return nil
}

// serviceFor returns the protocol server for a listener, or nil when that
// protocol is not built yet. Each protocol's constructor lives in a file of
// its own in this package.
func (s *Server) serviceFor(la config.ListenAddr) (service, func(net.Conn), error) {
	switch la.Service {
	case "pop3":
		return s.pop3Service(la)
	case "http":
		return s.httpService()
	case "imap":
		return s.imapService()
	case "smtp":
		return s.newSMTP(la)
	case "submission":
		return s.newSubmission(la)
	}
	return nil, nil, nil
}

// addService records a protocol server so that Close stops it.
func (s *Server) addService(svc service) {
	s.mu.Lock()
	s.services = append(s.services, svc)
	s.mu.Unlock()
}

// Bound returns the listeners as bound, in configuration order.
func (s *Server) Bound() []Bound {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Bound(nil), s.bound...)
}

// Addr returns the bound address of the first listener with the given key
// (e.g. "imap.listen"), or "" if there is none.
func (s *Server) Addr(key string) string {
	for _, b := range s.Bound() {
		if b.Key == key {
			return b.Addr.String()
		}
	}
	return ""
}

// Close stops the listeners and the sessions, then closes storage.
func (s *Server) Close() error {
	s.mu.Lock()
	lns, svcs, bg := s.lns, s.services, s.bg
	s.lns, s.services, s.bg = nil, nil, nil
	s.mu.Unlock()
	for _, l := range lns {
		l.Close()
	}
	for _, svc := range svcs {
		svc.Close()
	}
	for _, stop := range bg {
		stop()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.Log.Warn("listeners did not stop within 10s")
	}
	// Writes per commit is how well group commit batched this run.
	st := s.Store.Stats()
	s.Log.Info("storage closed", "writes", st.Writes, "commits", st.Commits)
	return s.Store.Close()
}

// Run starts the server and blocks until ctx is done, then stops it.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}
