package server

import (
	"net"

	"pombo/imap"
)

// imapService returns the one IMAP server shared by every IMAP listener (so
// that per-user connection limits count across them). Implicit-TLS
// listeners are wrapped in TLS by Start; imapserver recognises the TLS
// connection and offers no STARTTLS there.
func (s *Server) imapService() (service, func(net.Conn), error) {
	s.mu.Lock()
	for _, svc := range s.services {
		if is, ok := svc.(*imap.Server); ok {
			s.mu.Unlock()
			return is, imap.RejectConn, nil
		}
	}
	s.mu.Unlock()
	is := imap.New(imap.Options{
		Store:                      s.Store,
		Auth:                       s.Auth,
		Log:                        s.Log,
		TLS:                        s.TLS,
		AllowPlaintextFromLoopback: s.Config.Auth.AllowPlaintextFromLoopback,
		MaxMessageSize:             int64(s.Config.Limits.MaxMessageSize),
		IdleTimeout:                s.Config.Limits.IMAPIdleTimeout.Duration(),
		LoginTimeout:               s.Config.Limits.IMAPLoginTimeout.Duration(),
		Autologout:                 s.Config.Limits.IMAPAutologout.Duration(),
		Hostname:                   s.Config.Hostname,
	})
	s.addService(is)
	return is, imap.RejectConn, nil
}
