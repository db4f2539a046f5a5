package server

import (
	"context"
	"io"
	"log/slog"

	"pombo/config"
	"pombo/queue"
	"pombo/smtp"
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

// queueEnqueuer hands the inbound server's remote targets (forwarding
// aliases) to the queue, the trace prefix in front of the message. It has
// no submitting user; DKIM signing still applies when the From: domain is
// local and has a key.
type queueEnqueuer struct{ q *queue.Queue }

var _ smtp.Enqueuer = queueEnqueuer{}

func (e queueEnqueuer) Enqueue(ctx context.Context, from string, to []string, prefix []byte, r io.Reader) error {
	_, err := e.q.Enqueue(ctx, from, 0, to, r, queue.EnqueueOptions{Prefix: prefix})
	return err
}

func (e queueEnqueuer) DeliverAndEnqueue(ctx context.Context, r io.Reader, local []storage.Recipient, from string, to []string, prefix []byte) error {
	_, err := e.q.DeliverAndEnqueue(ctx, r, local, from, 0, to, queue.EnqueueOptions{Prefix: prefix})
	return err
}

// enqueuer is what smtp.Options.Enqueuer takes.
func (s *Server) enqueuer() smtp.Enqueuer { return queueEnqueuer{s.Queue} }
