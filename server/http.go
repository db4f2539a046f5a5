package server

import (
	"context"
	"net"
	"net/http"
	"time"

	"pombo/autoconfig"
)

// httpService serves the autoconfiguration file and the health check.
type httpService struct{ hs *http.Server }

func (h *httpService) Serve(l net.Listener) error {
	err := h.hs.Serve(l)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

func (h *httpService) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.hs.Shutdown(ctx)
}

func (s *Server) httpService() (service, func(net.Conn), error) {
	ac := &autoconfig.Server{
		Hostname: s.Config.Hostname,
		IMAPPort: autoconfig.PortOf(s.Config.IMAP.TLSListen),
		POP3Port: autoconfig.PortOf(s.Config.POP3.TLSListen),
		SMTPPort: autoconfig.PortOf(s.Config.Submission.TLSListen),
		Healthy: func() error {
			_, err := s.Store.Domains(context.Background())
			return err
		},
	}
	svc := &httpService{hs: ac.NewHTTPServer()}
	s.addService(svc)
	return svc, nil, nil
}
