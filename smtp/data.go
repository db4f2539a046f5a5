package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"pombo/storage"
)

// Data implements gosmtp.Session for DATA and for BDAT (which calls it once,
// in its own goroutine, and feeds it the chunks). It streams the message
// through the checks into storage and returns the reply: 250 only after
// storage returned, that is once the message is durable.
func (se *session) Data(r io.Reader) error {
	t, done, err := se.beginData()
	if err != nil {
		return err
	}
	defer done()
	tr := se.trace(t)
	dr := newDataReader(r, se.s.opts.Limits.MaxLineLength, se.c.readFailed.Load)
	err = safely(func() error { return se.store(dr, t, tr) })
	size := dr.n
	e, result, ok := se.outcome(dr, err, t)
	se.c.logData(t.from, t.rcpts, size, result, ok)
	if se.s.log.Enabled(context.Background(), slog.LevelDebug) {
		se.s.log.Debug("smtp message", append(se.c.logAttrs(), "msgid", tr.id, "from", t.from,
			"rcpts", len(t.rcpts), "size", size, "result", result)...)
	}
	if ok {
		// go-smtp replies "250 2.0.0 OK: queued" to a nil error; an
		// SMTPError with code 250 lets the reply carry the message id.
		return reply(250, 2, 0, 0, "Ok: stored as "+tr.id)
	}
	return e
}

// beginData checks that the transaction can take a message, counts it in
// flight (so Close waits for it) and arms the whole-message deadline. The
// caller calls done once the message is handled.
func (se *session) beginData() (t *txn, done func(), err error) {
	se.mu.Lock()
	t = se.tx
	se.mu.Unlock()
	if t == nil || len(t.local)+len(t.remote) == 0 {
		return nil, nil, se.refuse(errNoRcpt)
	}
	if se.s.closing.Load() {
		se.c.abort()
		return nil, nil, errShutdown
	}
	se.s.inflight.Add(1)
	// The whole message must arrive within DataTimeout. For DATA the read
	// deadline covers it; go-smtp resets the deadline at every BDAT
	// command, hence the timer.
	lim := se.s.opts.Limits
	se.c.Conn.SetReadDeadline(time.Now().Add(lim.DataTimeout))
	timer := time.AfterFunc(lim.DataTimeout, func() { se.c.Conn.SetReadDeadline(time.Now()) })
	return t, func() {
		timer.Stop()
		se.s.inflight.Done()
	}, nil
}

// trace gathers the trace fields of a transaction.
func (se *session) trace(t *txn) *trace {
	tr := &trace{
		helo:  t.helo,
		ip:    se.c.ip,
		proto: protocol(t.isTLS, se.authUser != "", t.utf8),
		host:  se.s.opts.Hostname,
		id:    newID(),
		date:  time.Now(),
	}
	if t.isTLS {
		tr.tls, tr.cipher = tlsNames(t.tls)
	}
	return tr
}

// localRecipients lists the mailboxes of the local targets, each once,
// with its own trace prefix.
func localRecipients(t *txn, tr *trace) []storage.Recipient {
	var rcpts []storage.Recipient
	type box struct {
		user   int64
		folder string
	}
	seen := map[box]bool{}
	for _, lt := range t.local {
		k := box{lt.target.UserID, lt.target.Folder}
		if seen[k] {
			continue
		}
		seen[k] = true
		rcpts = append(rcpts, storage.Recipient{
			UserID:  lt.target.UserID,
			Mailbox: lt.target.Folder,
			Prefix:  tr.prefix(t.from, lt.rcpt, lt.target.Address),
		})
	}
	return rcpts
}

// store delivers the message to the local targets with one storage.Deliver
// call, and hands it to the Enqueuer for the remote ones; for both, in one
// transaction.
func (se *session) store(r io.Reader, t *txn, tr *trace) error {
	ctx := context.Background()
	rcpts := localRecipients(t, tr)
	if len(t.remote) == 0 {
		_, err := se.s.opts.Store.Deliver(ctx, r, rcpts, storage.DeliverOptions{})
		return err
	}
	// The queued copy's Received field, formatted only when there is one.
	prefix := []byte(tr.received(""))
	if len(rcpts) == 0 {
		return se.s.opts.Enqueuer.Enqueue(ctx, t.from, t.remote, prefix, r)
	}
	return se.s.opts.Enqueuer.DeliverAndEnqueue(ctx, r, rcpts, t.from, t.remote, prefix)
}

// safely calls store, turning a panic into an error of this message: for
// BDAT, go-smtp runs Data in a goroutine of its own, where no recover
// reaches, and a panic there would end the whole server.
func safely(store func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return store()
}

// outcome turns the end of a message into its reply and log result. A
// broken stream (bare CR/LF, overlong line, timeout, lost connection) ends
// the connection after the reply, so that nothing after it is read as a
// command; its reply is never replaced by the too-many-errors one.
func (se *session) outcome(dr *dataReader, err error, t *txn) (reply_ error, result string, ok bool) {
	lim := se.s.opts.Limits
	var ne net.Error
	switch rerr := dr.err; {
	case rerr == nil && err == nil:
		return nil, "250 stored", true
	case errors.Is(rerr, errBareLF), errors.Is(rerr, errBareCR):
		se.c.abort()
		return reply(554, 5, 6, 0, "Message refused: bare CR or LF in message data (RFC 5321 2.3.8)"),
			"554 " + rerr.Error(), false
	case errors.Is(rerr, errLineTooLong), errors.Is(rerr, gosmtp.ErrTooLongLine):
		se.c.abort()
		return reply(554, 5, 6, 0, fmt.Sprintf("Message refused: line longer than %d octets", lim.MaxLineLength)),
			"554 line too long", false
	case errors.Is(rerr, errEmpty):
		return se.refuse(reply(554, 5, 6, 0, "Message refused: it is empty")), "554 empty", false
	case errors.Is(rerr, gosmtp.ErrDataTooLarge):
		// go-smtp reads the rest of the message to its end, without
		// keeping it, then replies: the session can go on.
		return se.refuse(reply(552, 5, 3, 4, fmt.Sprintf("Message too big (limit %d octets)", lim.MaxMessageSize))),
			"552 too big", false
	case errors.Is(rerr, gosmtp.ErrDataReset):
		// BDAT aborted by RSET or a closed connection: go-smtp ignores
		// the reply.
		return rerr, "aborted", false
	case errors.As(rerr, &ne) && ne.Timeout():
		se.c.abort()
		return reply(421, 4, 4, 2, "Timeout during message transfer, closing connection"), "421 data timeout", false
	case rerr != nil:
		se.c.abort()
		return reply(421, 4, 4, 0, "Connection error during message transfer, closing connection"),
			"421 connection error", false
	case errors.Is(err, storage.ErrOverQuota):
		if users(t) > 1 {
			// Permanent for all would bounce the recipients who have room.
			return se.refuse(reply(452, 4, 2, 2, "Mailbox of a recipient full, try again later")), "452 over quota", false
		}
		return se.refuse(errMailboxFull), "552 over quota", false
	}
	se.s.log.Error("smtp message not stored", append(se.c.logAttrs(), "from", t.from, "err", err)...)
	return errLocal, "451 not stored", false
}

// users counts the distinct local accounts of a transaction.
func users(t *txn) int {
	seen := map[int64]bool{}
	for _, lt := range t.local {
		seen[lt.target.UserID] = true
	}
	return len(seen)
}
