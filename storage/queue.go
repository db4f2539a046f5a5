package storage

// The outbound queue. A queued message is one row of table queue holding a
// reference to its blob (and a prefix of header lines, e.g. DKIM-Signature),
// and one row of queue_recipients per recipient address.
//
// A recipient moves through these states; every move is one durable write:
//
//	pending --MarkSending--> sending --MarkSent--> sent
//	   ^                        |  \---MarkFailed--> failed --Bounce--> (row deleted)
//	   +-------MarkRetry--------+
//	   +-------ResetSending-----+  (start-up after a crash, or shutdown)
//
// The queue row, and with it the last reference to the blob, is deleted in
// the same transaction that leaves it with no recipient other than sent ones.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Recipient states of the outbound queue.
const (
	QueuePending = "pending"
	QueueSending = "sending"
	QueueSent    = "sent"
	QueueFailed  = "failed"
)

// EnqueueOptions are the attributes of a queued message.
type EnqueueOptions struct {
	// SMTPUTF8 records that the message needs the SMTPUTF8 extension
	// (RFC 6531) from the next hop.
	SMTPUTF8 bool
	// Prefix is header lines (each ending in CRLF) sent in front of the
	// message, and stored apart from it: e.g. the Received: line of the
	// queued copy, when the local copies of the message have their own.
	Prefix []byte
	// Sign, when set, is called once the message has been read and parsed,
	// before it is stored, with the message exactly as it will be sent
	// after the signature (Prefix, then the message with line ends
	// normalised to CRLF) and the parsed envelope of the message. The
	// header lines it returns (each ending in CRLF) are stored in front of
	// it all, e.g. a DKIM-Signature. An error fails the Enqueue.
	Sign func(msg io.Reader, env *Envelope) ([]byte, error)
}

// QueuedMessage is one message of the outbound queue.
type QueuedMessage struct {
	ID         int64             `json:"id"`
	UserID     int64             `json:"user_id,omitempty"` // 0: none (bounces, or the user was deleted)
	Sender     string            `json:"sender"`            // "" for a bounce
	SMTPUTF8   bool              `json:"smtputf8"`
	Size       int64             `json:"size"`        // octets sent: prefix and message
	HeaderSize int64             `json:"header_size"` // octets of the header section, prefix included
	Subject    string            `json:"subject"`
	MessageID  string            `json:"message_id,omitempty"`
	Created    time.Time         `json:"created"`
	Recipients []QueuedRecipient `json:"recipients"`
}

// QueuedRecipient is one recipient of a queued message.
type QueuedRecipient struct {
	ID          int64     `json:"id"`
	QueueID     int64     `json:"queue_id"`
	Address     string    `json:"address"`
	Status      string    `json:"status"` // QueuePending, QueueSending, QueueSent or QueueFailed
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	RemoteMTA   string    `json:"remote_mta,omitempty"`
	StatusCode  string    `json:"status_code,omitempty"`
	Updated     time.Time `json:"updated"`
}

// Attempt is the outcome of one delivery attempt for some recipients.
type Attempt struct {
	RemoteMTA  string // host name of the SMTP server that replied; "" if none did
	StatusCode string // RFC 3463 status code, e.g. "5.1.1"
	Reply      string // the SMTP reply, or a description of a local failure
}

// maxQueueRecipients bounds the recipients of one queued message.
const maxQueueRecipients = 10000

// Enqueue reads a message from r, stores it once and queues it for every
// recipient address. It returns the queue id only once all of it is durable.
// sender is the envelope sender ("" for a bounce); userID the submitting
// user (0 for none).
func (s *Store) Enqueue(ctx context.Context, sender string, userID int64, recipients []string, r io.Reader, opts EnqueueOptions) (int64, error) {
	q := &QueueCopy{Sender: sender, UserID: userID, Recipients: recipients, Options: opts}
	rcpts, err := q.check()
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	sp, err := s.spool(r)
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	defer sp.close()
	prefix, err := q.prefix(sp)
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	err = s.write(ctx, func(tx *Tx) error {
		blobID, err := insertBlob(tx, sp)
		if err != nil {
			return err
		}
		q.ID, err = q.insert(tx, blobID, prefix, rcpts)
		return err
	})
	if err != nil {
		return 0, err
	}
	return q.ID, nil
}

// QueueCopy is the part of a delivery that goes to the outbound queue
// (DeliverOptions.Queue): one queued message for the remote recipients,
// sharing the blob of the local copies.
type QueueCopy struct {
	Sender     string // envelope sender, "" for a bounce
	UserID     int64  // the submitting user, 0 for none
	Recipients []string
	Options    EnqueueOptions
	// ID is set by Deliver once the copy is durable: its queue id.
	ID int64
}

// check validates the addresses before anything is read or stored, and
// returns the recipients without duplicates.
func (q *QueueCopy) check() ([]string, error) {
	rcpts, err := queueRecipients(q.Recipients)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(q.Sender, "\r\n<> \t") || len(q.Sender) > 320 {
		return nil, fmt.Errorf("%w: sender %q", ErrBadAddress, q.Sender)
	}
	return rcpts, nil
}

// prefix returns what the queued copy holds in front of the spooled message:
// the signature, if any, then Options.Prefix.
func (q *QueueCopy) prefix(sp *spooled) ([]byte, error) {
	prefix := q.Options.Prefix
	var sig []byte
	if q.Options.Sign != nil {
		var err error
		sig, err = q.Options.Sign(io.MultiReader(bytes.NewReader(prefix), sp.reader()), &sp.parsed.Envelope)
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
	}
	// Never nil: the column is NOT NULL.
	out := make([]byte, 0, len(sig)+len(prefix))
	return append(append(out, sig...), prefix...), nil
}

func (q *QueueCopy) insert(tx *Tx, blobID int64, prefix []byte, rcpts []string) (int64, error) {
	var uid any
	if q.UserID != 0 {
		uid = q.UserID
	}
	return insertQueued(tx, uid, q.Sender, blobID, prefix, q.Options.SMTPUTF8, rcpts)
}

func insertQueued(tx *Tx, userID any, sender string, blobID int64, prefix []byte, smtputf8 bool, rcpts []string) (int64, error) {
	t := now()
	res, err := tx.exec(`INSERT INTO queue (user_id, sender, blob_id, prefix, smtputf8, created) VALUES (?, ?, ?, ?, ?, ?)`,
		userID, sender, blobID, prefix, smtputf8, t)
	if err != nil {
		return 0, fmt.Errorf("insert queue: %w", err)
	}
	id, _ := res.LastInsertId()
	for _, a := range rcpts {
		if _, err := tx.exec(`INSERT INTO queue_recipients (queue_id, address, next_attempt, updated) VALUES (?, ?, ?, ?)`,
			id, a, t, t); err != nil {
			return 0, fmt.Errorf("insert queue recipient: %w", err)
		}
	}
	return id, nil
}

// queueRecipients checks the shape of recipient addresses (the next hop
// judges the rest) and drops duplicates; domains compare case-insensitively,
// local parts exactly (RFC 5321 §2.4).
func queueRecipients(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("no recipients")
	}
	if len(in) > maxQueueRecipients {
		return nil, fmt.Errorf("%d recipients, at most %d", len(in), maxQueueRecipients)
	}
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, a := range in {
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 || len(a) > 320 || strings.ContainsAny(a, "\r\n<> \t") {
			return nil, fmt.Errorf("%w: recipient %q", ErrBadAddress, a)
		}
		a = a[:at+1] + strings.ToLower(a[at+1:])
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// reader reads the spooled message again from its start.
func (sp *spooled) reader() io.Reader {
	if sp.file == nil {
		return bytes.NewReader(sp.mem)
	}
	return io.NewSectionReader(sp.file, 0, sp.size)
}

const queuedRcptCols = "id, queue_id, address, status, attempts, next_attempt, last_error, remote_mta, status_code, updated"

func scanQueuedRecipient(sc interface{ Scan(...any) error }) (*QueuedRecipient, error) {
	var r QueuedRecipient
	var next, upd int64
	if err := sc.Scan(&r.ID, &r.QueueID, &r.Address, &r.Status, &r.Attempts, &next, &r.LastError, &r.RemoteMTA, &r.StatusCode, &upd); err != nil {
		return nil, err
	}
	r.NextAttempt = time.Unix(next, 0).UTC()
	r.Updated = time.Unix(upd, 0).UTC()
	return &r, nil
}

func (s *Store) queuedRecipients(ctx context.Context, q string, args ...any) ([]QueuedRecipient, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []QueuedRecipient
	for rows.Next() {
		r, err := scanQueuedRecipient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// DueRecipients returns the recipients that the queue has work for: up to
// limit pending ones whose next attempt is due at now, oldest first, then
// up to limit failed ones whose failure has not been reported to the
// sender yet.
func (s *Store) DueRecipients(ctx context.Context, now time.Time, limit int) ([]QueuedRecipient, error) {
	return s.queuedRecipients(ctx, `SELECT * FROM (SELECT `+queuedRcptCols+` FROM queue_recipients
			WHERE status = 'pending' AND next_attempt <= ? ORDER BY next_attempt, id LIMIT ?)
		UNION ALL SELECT * FROM (SELECT `+queuedRcptCols+` FROM queue_recipients
			WHERE status = 'failed' ORDER BY id LIMIT ?)`, now.Unix(), limit, limit)
}

// NextDue returns the time of the earliest pending attempt; ok is false when
// nothing is pending.
func (s *Store) NextDue(ctx context.Context) (t time.Time, ok bool, err error) {
	var n sql.NullInt64
	if err := s.queryRow(ctx, "SELECT min(next_attempt) FROM queue_recipients WHERE status = 'pending'").Scan(&n); err != nil {
		return time.Time{}, false, err
	}
	if !n.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(n.Int64, 0), true, nil
}

// MarkSending claims pending recipients for a delivery attempt and returns
// the ids it claimed (a recipient that is no longer pending is left alone).
func (s *Store) MarkSending(ctx context.Context, ids []int64) ([]int64, error) {
	var claimed []int64
	err := s.write(ctx, func(tx *Tx) error {
		claimed = claimed[:0]
		t := now()
		for _, id := range ids {
			res, err := tx.exec("UPDATE queue_recipients SET status = 'sending', updated = ? WHERE id = ? AND status = 'pending'", t, id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				claimed = append(claimed, id)
			}
		}
		return nil
	})
	return claimed, err
}

// MarkSent records that the next hop accepted the message for these
// recipients (its 250 to DATA). The caller commits this before anything
// else: it is what stops a second sending after a crash.
func (s *Store) MarkSent(ctx context.Context, ids []int64, a Attempt) error {
	return s.mark(ctx, ids, QueueSent, time.Time{}, a)
}

// MarkRetry puts recipients back to pending, to be tried again at next.
func (s *Store) MarkRetry(ctx context.Context, ids []int64, next time.Time, a Attempt) error {
	return s.mark(ctx, ids, QueuePending, next, a)
}

// MarkFailed records a permanent failure; the recipients stay until Bounce
// reports them to the sender.
func (s *Store) MarkFailed(ctx context.Context, ids []int64, a Attempt) error {
	return s.mark(ctx, ids, QueueFailed, time.Time{}, a)
}

func (s *Store) mark(ctx context.Context, ids []int64, status string, next time.Time, a Attempt) error {
	if len(ids) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *Tx) error {
		t := now()
		queues := map[int64]bool{}
		for _, id := range ids {
			var qid int64
			err := tx.queryRow(`UPDATE queue_recipients SET status = ?, attempts = attempts + 1,
				next_attempt = CASE WHEN ? THEN ? ELSE next_attempt END,
				last_error = ?, remote_mta = ?, status_code = ?, updated = ?
				WHERE id = ? RETURNING queue_id`,
				status, !next.IsZero(), next.Unix(), a.Reply, a.RemoteMTA, a.StatusCode, t, id).Scan(&qid)
			if errors.Is(err, sql.ErrNoRows) {
				continue // deleted by the operator meanwhile
			} else if err != nil {
				return fmt.Errorf("mark %s: %w", status, err)
			}
			queues[qid] = true
		}
		for qid := range queues {
			if err := finishQueued(tx, qid); err != nil {
				return err
			}
		}
		return nil
	})
}

// finishQueued deletes a queued message once every recipient left is sent;
// the trigger on queue then drops its reference to the blob.
func finishQueued(tx *Tx, queueID int64) error {
	_, err := tx.exec(`DELETE FROM queue WHERE id = ? AND NOT EXISTS
		(SELECT 1 FROM queue_recipients WHERE queue_id = ? AND status != 'sent')`, queueID, queueID)
	if err != nil {
		return fmt.Errorf("finish queued message: %w", err)
	}
	return nil
}

// ResetSending puts every recipient left in 'sending' back to pending, due
// now: after a crash nobody is sending them. Only the process that runs the
// queue may call it, before its workers start or after they stopped.
func (s *Store) ResetSending(ctx context.Context) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *Tx) error {
		t := now()
		res, err := tx.exec("UPDATE queue_recipients SET status = 'pending', next_attempt = ?, updated = ? WHERE status = 'sending'", t, t)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

const queuedCols = `q.id, coalesce(q.user_id, 0), q.sender, q.smtputf8, b.size + length(q.prefix),
	b.header_size + length(q.prefix), b.envelope, q.created`

func scanQueued(sc interface{ Scan(...any) error }) (*QueuedMessage, error) {
	var m QueuedMessage
	var env string
	var created int64
	if err := sc.Scan(&m.ID, &m.UserID, &m.Sender, &m.SMTPUTF8, &m.Size, &m.HeaderSize, &env, &created); err != nil {
		return nil, err
	}
	var e Envelope
	if json.Unmarshal([]byte(env), &e) == nil {
		m.Subject, m.MessageID = e.Subject, e.MessageID
	}
	m.Created = time.Unix(created, 0).UTC()
	return &m, nil
}

// QueueList returns every queued message with its recipients, oldest first.
func (s *Store) QueueList(ctx context.Context) ([]QueuedMessage, error) {
	rows, err := s.query(ctx, "SELECT "+queuedCols+" FROM queue q JOIN blobs b ON b.id = q.blob_id ORDER BY q.id")
	if err != nil {
		return nil, err
	}
	var msgs []QueuedMessage
	byID := map[int64]int{}
	for rows.Next() {
		m, err := scanQueued(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		byID[m.ID] = len(msgs)
		msgs = append(msgs, *m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rcpts, err := s.queuedRecipients(ctx, "SELECT "+queuedRcptCols+" FROM queue_recipients ORDER BY queue_id, id")
	if err != nil {
		return nil, err
	}
	for _, r := range rcpts {
		if i, ok := byID[r.QueueID]; ok {
			msgs[i].Recipients = append(msgs[i].Recipients, r)
		}
	}
	return msgs, nil
}

// QueueItem returns one queued message with its recipients.
func (s *Store) QueueItem(ctx context.Context, id int64) (*QueuedMessage, error) {
	m, err := scanQueued(s.queryRow(ctx, "SELECT "+queuedCols+" FROM queue q JOIN blobs b ON b.id = q.blob_id WHERE q.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("queued message %d: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	m.Recipients, err = s.queuedRecipients(ctx, "SELECT "+queuedRcptCols+" FROM queue_recipients WHERE queue_id = ? ORDER BY id", id)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// OpenQueued streams a queued message as it is to be sent: its prefix, then
// the stored message.
func (s *Store) OpenQueued(ctx context.Context, id int64) (*BlobReader, error) {
	var blobID int64
	var prefix []byte
	err := s.queryRow(ctx, "SELECT blob_id, prefix FROM queue WHERE id = ?", id).Scan(&blobID, &prefix)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("queued message %d: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	return s.openBlob(ctx, blobID, prefix)
}

// RetryNow makes the pending recipients of a queued message (of all of
// them when id is 0) due now, and returns how many it rescheduled.
func (s *Store) RetryNow(ctx context.Context, id int64) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *Tx) error {
		t := now()
		var res sql.Result
		var err error
		if id == 0 {
			res, err = tx.exec("UPDATE queue_recipients SET next_attempt = ?, updated = ? WHERE status = 'pending'", t, t)
		} else {
			var one int
			if err := tx.queryRow("SELECT 1 FROM queue WHERE id = ?", id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("queued message %d: %w", id, ErrNotFound)
			} else if err != nil {
				return err
			}
			res, err = tx.exec("UPDATE queue_recipients SET next_attempt = ?, updated = ? WHERE queue_id = ? AND status = 'pending'", t, t, id)
		}
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

// DeleteQueued removes a queued message without notifying its sender.
func (s *Store) DeleteQueued(ctx context.Context, id int64) error {
	return s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec("DELETE FROM queue WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("queued message %d: %w", id, ErrNotFound)
		}
		return nil
	})
}

// Bounce closes the failed recipients rcptIDs of queued message queueID in
// one transaction: the report dsn is delivered to the INBOX of the local
// users in local (over quota if need be) and queued, with an empty sender,
// for the remote addresses in remote; the recipients are deleted, and the
// message with them if nothing else is left to send. With neither local nor
// remote targets the recipients are only dropped.
func (s *Store) Bounce(ctx context.Context, queueID int64, rcptIDs []int64, dsn io.Reader, local []Recipient, remote []string) error {
	var sp *spooled
	if len(local)+len(remote) > 0 {
		if len(remote) > 0 {
			var err error
			if remote, err = queueRecipients(remote); err != nil {
				return fmt.Errorf("bounce: %w", err)
			}
		}
		var err error
		sp, err = s.spool(dsn)
		if err != nil {
			return fmt.Errorf("bounce: %w", err)
		}
		defer sp.close()
	}
	return s.write(ctx, func(tx *Tx) error {
		if sp != nil {
			blobID, err := insertBlob(tx, sp)
			if err != nil {
				return err
			}
			seen := map[int64]bool{}
			for _, rc := range local {
				mbID, err := deliveryMailbox(tx, rc.UserID, "")
				if err != nil {
					return err
				}
				if seen[mbID] {
					continue
				}
				seen[mbID] = true
				if _, err := insertMessage(tx, mbID, blobID, rc.Prefix, 0, "", now(), sp.size+int64(len(rc.Prefix)), false); err != nil {
					return err
				}
			}
			if len(remote) > 0 {
				if _, err := insertQueued(tx, nil, "", blobID, []byte{}, false, remote); err != nil {
					return err
				}
			}
			if len(local) == 0 && len(remote) == 0 {
				// Unreachable: sp is nil then. Kept so that a blob never
				// stays without a reference.
				return errors.New("bounce: no target")
			}
		}
		for _, id := range rcptIDs {
			if _, err := tx.exec("DELETE FROM queue_recipients WHERE id = ? AND queue_id = ? AND status = 'failed'", id, queueID); err != nil {
				return err
			}
		}
		return finishQueued(tx, queueID)
	})
}
