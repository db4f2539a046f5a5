package server

import (
	"context"
	"io"
	"net"

	"pombo/config"
	"pombo/queue"
	"pombo/smtp"
	"pombo/storage"
)

// submissionService is the one submission server shared by the 587 and 465
// listeners, so that the per-user hourly limit counts across both.
type submissionService struct{ *smtp.Server }

// newSubmission returns the submission server (AUTH, then mail from the
// user's own addresses; remote recipients go to the queue).
func (s *Server) newSubmission(la config.ListenAddr) (service, func(net.Conn), error) {
	s.mu.Lock()
	for _, svc := range s.services {
		if ss, ok := svc.(submissionService); ok {
			s.mu.Unlock()
			return ss, ss.Reject, nil
		}
	}
	s.mu.Unlock()
	lim := s.Config.Limits
	maxRcpt := lim.MaxRecipients
	if m := s.Config.Submission.MaxRecipientsPerMessage; m > 0 && (maxRcpt <= 0 || m < maxRcpt) {
		maxRcpt = m
	}
	srv := smtp.NewSubmission(smtp.SubmissionOptions{
		Options: smtp.Options{
			Hostname: s.Config.Hostname,
			Store:    s.Store,
			Log:      s.Log.With("listener", la.Key),
			TLS:      s.TLS,
			Limits: smtp.Limits{
				MaxMessageSize: int64(lim.MaxMessageSize),
				MaxRecipients:  maxRcpt,
				MaxErrors:      lim.MaxErrors,
				MaxLineLength:  lim.MaxLineLength,
				CommandTimeout: lim.CommandTimeout.Duration(),
				DataTimeout:    lim.DataTimeout.Duration(),
			},
		},
		Auth:                       s.Auth,
		AllowPlaintextFromLoopback: s.Config.Auth.AllowPlaintextFromLoopback,
		MaxMessagesPerHour:         s.Config.Submission.MaxMessagesPerHour,
		Queue:                      queueSubmitter{s.Queue},
	})
	ss := submissionService{srv}
	s.addService(ss)
	return ss, srv.Reject, nil
}

// queueSubmitter is what smtp.SubmissionOptions.Queue takes.
type queueSubmitter struct{ q *queue.Queue }

func (e queueSubmitter) Submit(ctx context.Context, from string, userID int64, to []string, smtputf8 bool, r io.Reader) error {
	_, err := e.q.Enqueue(ctx, from, userID, to, r, queue.EnqueueOptions{SMTPUTF8: smtputf8})
	return err
}

func (e queueSubmitter) DeliverAndSubmit(ctx context.Context, r io.Reader, local []storage.Recipient, from string, userID int64, to []string, smtputf8 bool, prefix []byte) error {
	_, err := e.q.DeliverAndEnqueue(ctx, r, local, from, userID, to, queue.EnqueueOptions{SMTPUTF8: smtputf8, Prefix: prefix})
	return err
}
