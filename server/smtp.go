package server

import (
	"net"

	"pombo/config"
	"pombo/smtp"
)

// newSMTP builds the inbound (MX) SMTP server of one listener.
func (s *Server) newSMTP(la config.ListenAddr) (service, func(net.Conn), error) {
	lim := s.Config.Limits
	srv := smtp.NewInbound(smtp.Options{
		Hostname: s.Config.Hostname,
		Store:    s.Store,
		Log:      s.Log.With("listener", la.Key),
		TLS:      s.TLS,
		Limits: smtp.Limits{
			MaxMessageSize: int64(lim.MaxMessageSize),
			MaxRecipients:  lim.MaxRecipients,
			MaxErrors:      lim.MaxErrors,
			MaxLineLength:  lim.MaxLineLength,
			CommandTimeout: lim.CommandTimeout.Duration(),
			DataTimeout:    lim.DataTimeout.Duration(),
		},
		// Forwarding aliases hand their remote targets to the queue.
		Enqueuer: s.enqueuer(),
	})
	s.addService(srv)
	return srv, srv.Reject, nil
}
