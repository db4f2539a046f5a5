package smtp

import (
	"context"
	"io"
)

// Enqueuer hands a message to the outbound queue (package queue, not
// written yet). Its parameters are plain types so that package queue can
// implement it without importing smtp.
type Enqueuer interface {
	// Enqueue reads the message from r and queues one copy for each remote
	// address in to, from the envelope sender from ("" for the null
	// sender), with prefix (trace header lines, CRLF terminated) in front.
	// It returns only once the queue entry is durable; on error nothing is
	// queued.
	Enqueue(ctx context.Context, from string, to []string, prefix []byte, r io.Reader) error
}
