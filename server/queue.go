package server

import (
	"log/slog"

	"pombo/config"
	"pombo/queue"
	"pombo/storage"
)

// newQueue builds the outbound queue from the configuration; Start runs it.
func newQueue(cfg *config.Config, st *storage.Store, log *slog.Logger) *queue.Queue {
	return queue.New(queue.Options{
		Store:        st,
		Log:          log,
		Hostname:     cfg.Hostname,
		Workers:      cfg.Queue.Workers,
		RetryInitial: cfg.Queue.RetryInitial.Duration(),
		RetryMax:     cfg.Queue.RetryMax.Duration(),
		GiveUpAfter:  cfg.Queue.GiveUpAfter.Duration(),
		Resolver:     cfg.DNS.Resolver,
		Relay: queue.Relay{
			Host:     cfg.Relay.Host,
			Port:     cfg.Relay.Port,
			Username: cfg.Relay.Username,
			Password: cfg.Relay.Password,
			TLS:      cfg.Relay.TLS,
		},
	})
}

// startQueue runs the queue's workers; Close stops them before storage.
func (s *Server) startQueue() error {
	if err := s.Queue.Start(); err != nil {
		return err
	}
	s.mu.Lock()
	s.bg = append(s.bg, func() {
		if err := s.Queue.Close(); err != nil {
			s.Log.Error("stop queue", "err", err)
		}
	})
	s.mu.Unlock()
	return nil
}
