package smtp

import (
	"context"
	"io"

	"pombo/storage"
)

// Enqueuer hands a message to the outbound queue (package queue). Its parameters are plain types so that package queue can
// implement it without importing smtp.
type Enqueuer interface {
	// Enqueue reads the message from r and queues one copy for each remote
	// address in to, from the envelope sender from ("" for the null
	// sender), with prefix (trace header lines, CRLF terminated) in front.
	// It returns only once the queue entry is durable; on error nothing is
	// queued.
	Enqueue(ctx context.Context, from string, to []string, prefix []byte, r io.Reader) error
	// DeliverAndEnqueue stores the message in the mailboxes of local and
	// queues it as Enqueue does, in one transaction: on error, neither the
	// local copies nor the queued one are stored.
	DeliverAndEnqueue(ctx context.Context, r io.Reader, local []storage.Recipient, from string, to []string, prefix []byte) error
}
