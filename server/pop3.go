package server

import (
	"crypto/tls"
	"net"

	"pombo/config"
	"pombo/pop3"
)

// pop3Service returns the POP3 server for a [pop3] listener. Every POP3
// listener (STLS and implicit TLS) shares one pop3.Server, so that the
// one-session-per-maildrop lock holds across them; it is created with the
// first listener and recorded once for Close.
func (s *Server) pop3Service(la config.ListenAddr) (service, func(net.Conn), error) {
	var implicit *tls.Config
	if la.ImplicitTLS {
		implicit = s.TLS
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, svc := range s.services {
		if p, ok := svc.(*pop3.Server); ok {
			return p, pop3.Reject(implicit), nil
		}
	}
	cfg := s.Config
	p := pop3.New(pop3.Options{
		Store:                      s.Store,
		Auth:                       s.Auth,
		TLS:                        s.TLS,
		Log:                        s.Log,
		Hostname:                   cfg.Hostname,
		IdleTimeout:                cfg.Limits.POP3IdleTimeout.Duration(),
		MaxErrors:                  cfg.Limits.MaxErrors,
		AllowPlaintextFromLoopback: cfg.Auth.AllowPlaintextFromLoopback,
	})
	s.services = append(s.services, p)
	return p, pop3.Reject(implicit), nil
}
