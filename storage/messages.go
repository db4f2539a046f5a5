package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Flags are the system flags of a message, as a bitmask.
type Flags int64

const (
	FlagSeen Flags = 1 << iota
	FlagAnswered
	FlagFlagged
	FlagDeleted
	FlagDraft
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{FlagSeen, `\Seen`}, {FlagAnswered, `\Answered`}, {FlagFlagged, `\Flagged`},
	{FlagDeleted, `\Deleted`}, {FlagDraft, `\Draft`},
}

// Names returns the IMAP names of the flags.
func (f Flags) Names() []string {
	var out []string
	for _, fn := range flagNames {
		if f&fn.f != 0 {
			out = append(out, fn.name)
		}
	}
	return out
}

// ParseFlag maps an IMAP system flag name (case-insensitive) to its bit; ok is
// false for a keyword.
func ParseFlag(name string) (Flags, bool) {
	for _, fn := range flagNames {
		if strings.EqualFold(fn.name, name) {
			return fn.f, true
		}
	}
	return 0, false
}

// Message is one entry of a mailbox.
type Message struct {
	ID           int64
	MailboxID    int64
	UID          uint32
	ModSeq       int64
	BlobID       int64
	Flags        Flags
	Keywords     []string
	InternalDate time.Time
	Size         int64
}

const messageCols = "id, mailbox_id, uid, modseq, blob_id, flags, keywords, internal_date, size"

func scanMessage(sc interface{ Scan(...any) error }) (*Message, error) {
	var m Message
	var kw string
	var date int64
	if err := sc.Scan(&m.ID, &m.MailboxID, &m.UID, &m.ModSeq, &m.BlobID, &m.Flags, &kw, &date, &m.Size); err != nil {
		return nil, err
	}
	m.Keywords = splitKeywords(kw)
	m.InternalDate = time.Unix(date, 0)
	return &m, nil
}

func splitKeywords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

// Recipient is one mailbox a delivery goes into.
type Recipient struct {
	UserID    int64
	Mailbox   string // "" means INBOX; a missing mailbox falls back to INBOX
	MailboxID int64  // when set, the exact mailbox (IMAP APPEND); no fallback
	Prefix    []byte // trace header lines for this recipient only (Delivered-To...)
}

// DeliverOptions are the attributes of delivered messages.
type DeliverOptions struct {
	InternalDate time.Time // zero: now
	Flags        Flags
	Keywords     []string
	// IgnoreQuota lets system messages (bounces) in over quota.
	IgnoreQuota bool
	// Queue, when set, also queues the message for remote recipients, in
	// the transaction that stores the local copies and with the same blob:
	// either the local copies and the queued one are all stored, or none
	// is, so a client told to retry never makes a second local copy.
	Queue *QueueCopy
}

// Delivery says where one recipient's copy landed.
type Delivery struct {
	UserID    int64
	MailboxID int64
	MessageID int64
	UID       uint32
	ModSeq    int64
}

// Deliver reads a message from r, parses it once, stores it once as a blob,
// and adds it to the mailbox of every recipient. It returns only when all of
// it is durable. Duplicate recipients (same user and mailbox) get one copy.
func (s *Store) Deliver(ctx context.Context, r io.Reader, rcpts []Recipient, opts DeliverOptions) ([]Delivery, error) {
	if len(rcpts) == 0 {
		return nil, errors.New("deliver: no recipients")
	}
	var queued []string
	if q := opts.Queue; q != nil {
		var err error
		if queued, err = q.check(); err != nil {
			return nil, fmt.Errorf("deliver: queue: %w", err)
		}
	}
	sp, err := s.spool(r)
	if err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	defer sp.close()
	var qprefix []byte
	if q := opts.Queue; q != nil {
		if qprefix, err = q.prefix(sp); err != nil {
			return nil, fmt.Errorf("deliver: queue: %w", err)
		}
	}
	date := opts.InternalDate
	if date.IsZero() {
		date = time.Now()
	}
	kw := joinKeywords(opts.Keywords)
	var out []Delivery
	err = s.write(ctx, func(tx *Tx) error {
		out = out[:0]
		blobID, err := insertBlob(tx, sp)
		if err != nil {
			return err
		}
		seen := map[int64]bool{}
		for _, rc := range rcpts {
			mbID := rc.MailboxID
			if mbID == 0 {
				mbID, err = deliveryMailbox(tx, rc.UserID, rc.Mailbox)
				if err != nil {
					return err
				}
			}
			if seen[mbID] {
				continue
			}
			seen[mbID] = true
			size := sp.size + int64(len(rc.Prefix))
			d, err := insertMessage(tx, mbID, blobID, rc.Prefix, opts.Flags, kw, date.Unix(), size, !opts.IgnoreQuota)
			if err != nil {
				return err
			}
			out = append(out, *d)
		}
		if q := opts.Queue; q != nil {
			q.ID, err = q.insert(tx, blobID, qprefix, queued)
		}
		return err
	})
	if err != nil {
		if opts.Queue != nil {
			opts.Queue.ID = 0
		}
		return nil, err
	}
	return out, nil
}

func joinKeywords(kws []string) string {
	if len(kws) == 0 {
		return ""
	}
	cp := append([]string(nil), kws...)
	sort.Strings(cp)
	var out []string
	for i, k := range cp {
		if k == "" || strings.ContainsAny(k, " \t\r\n") || (i > 0 && strings.EqualFold(k, cp[i-1])) {
			continue
		}
		out = append(out, k)
	}
	return strings.Join(out, " ")
}

func deliveryMailbox(tx *Tx, userID int64, name string) (int64, error) {
	var id int64
	if name != "" {
		err := tx.queryRow("SELECT id FROM mailboxes WHERE user_id = ? AND name = ?", userID, name).Scan(&id)
		if err == nil {
			return id, nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
	}
	err := tx.queryRow("SELECT id FROM mailboxes WHERE user_id = ? AND name = 'INBOX'", userID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		// A user whose INBOX is gone (renamed away) gets a new one.
		return createMailbox(tx, userID, "INBOX", "")
	}
	return id, err
}

// usedBytes is the SQL expression of the octets used by the user of row
// users: the sum of their mailboxes' sizes, which the triggers on messages
// keep. No counter on the user's row: it would be one more page written by
// every delivery (schema 5).
const usedBytes = "(SELECT coalesce(sum(size), 0) FROM mailboxes WHERE user_id = users.id)"

// insertMessage allocates the next UID and MODSEQ of the mailbox from its row
// alone, so the cost of a delivery does not grow with the mailbox.
func insertMessage(tx *Tx, mailboxID, blobID int64, prefix []byte, flags Flags, keywords string, date, size int64, checkQuota bool) (*Delivery, error) {
	var userID int64
	var uid uint32
	var modseq int64
	err := tx.queryRow(`UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
		WHERE id = ? RETURNING uidnext - 1, highestmodseq, user_id`, mailboxID).Scan(&uid, &modseq, &userID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mailbox %d: %w", mailboxID, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("allocate uid: %w", err)
	}
	if checkQuota {
		// Were the quota exceeded, the savepoint takes the UID back.
		quota, used, err := tx.quotas.quotaUsage(userID, func() (quota, used int64, err error) {
			err = tx.queryRow("SELECT quota_bytes, "+usedBytes+" FROM users WHERE id = ?", userID).Scan(&quota, &used)
			return quota, used, err
		})
		if err != nil {
			return nil, fmt.Errorf("quota of user %d: %w", userID, err)
		}
		if quota > 0 && used+size > quota {
			return nil, ErrOverQuota
		}
	}
	if prefix == nil {
		prefix = []byte{}
	}
	res, err := tx.exec(`INSERT INTO messages (mailbox_id, uid, modseq, blob_id, prefix, flags, keywords, internal_date, size)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, mailboxID, uid, modseq, blobID, prefix, flags, keywords, date, size)
	if err != nil {
		return nil, fmt.Errorf("insert message: %w", err)
	}
	id, _ := res.LastInsertId()
	tx.publish(Event{Kind: EventNew, UserID: userID, MailboxID: mailboxID, UID: uid, ModSeq: modseq})
	return &Delivery{UserID: userID, MailboxID: mailboxID, MessageID: id, UID: uid, ModSeq: modseq}, nil
}

// UIDs returns the UIDs of a mailbox in ascending order: the sequence
// numbers of a new IMAP or POP3 view.
func (s *Store) UIDs(ctx context.Context, mailboxID int64) ([]uint32, error) {
	rows, err := s.query(ctx, "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", mailboxID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var uids []uint32
	for rows.Next() {
		var u uint32
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		uids = append(uids, u)
	}
	return uids, rows.Err()
}

// UIDRange is an inclusive range of UIDs.
type UIDRange struct{ Start, Stop uint32 }

// Messages calls fn for each message of the mailbox whose UID is in one of
// ranges (all messages when ranges is empty), in UID order, streaming rows.
func (s *Store) Messages(ctx context.Context, mailboxID int64, ranges []UIDRange, fn func(*Message) error) error {
	q := "SELECT " + messageCols + " FROM messages WHERE mailbox_id = ?"
	args := []any{mailboxID}
	if len(ranges) > 0 {
		var conds []string
		for _, r := range ranges {
			conds = append(conds, "uid BETWEEN ? AND ?")
			args = append(args, r.Start, r.Stop)
		}
		q += " AND (" + strings.Join(conds, " OR ") + ")"
	}
	q += " ORDER BY uid"
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return rows.Err()
}

// MessageByUID returns one message.
func (s *Store) MessageByUID(ctx context.Context, mailboxID int64, uid uint32) (*Message, error) {
	m, err := scanMessage(s.queryRow(ctx, "SELECT "+messageCols+" FROM messages WHERE mailbox_id = ? AND uid = ?", mailboxID, uid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message uid %d: %w", uid, ErrNotFound)
	}
	return m, err
}

// FlagOp says how SetFlags combines the given flags with the current ones.
type FlagOp int

const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// FlagUpdate is the new state of a message whose flags changed.
type FlagUpdate struct {
	UID      uint32
	Flags    Flags
	Keywords []string
	ModSeq   int64
}

// SetFlags changes the flags of the given UIDs. Only messages whose flags
// really change get a new MODSEQ; they are returned in UID order.
func (s *Store) SetFlags(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags Flags, keywords []string) ([]FlagUpdate, error) {
	var out []FlagUpdate
	err := s.write(ctx, func(tx *Tx) error {
		out = out[:0]
		var userID int64
		if err := tx.queryRow("SELECT user_id FROM mailboxes WHERE id = ?", mailboxID).Scan(&userID); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("mailbox %d: %w", mailboxID, ErrNotFound)
		} else if err != nil {
			return err
		}
		for _, uid := range uids {
			var cur Flags
			var kw string
			err := tx.queryRow("SELECT flags, keywords FROM messages WHERE mailbox_id = ? AND uid = ?", mailboxID, uid).Scan(&cur, &kw)
			if errors.Is(err, sql.ErrNoRows) {
				continue // expunged meanwhile
			} else if err != nil {
				return err
			}
			nf, nkw := applyFlags(cur, splitKeywords(kw), op, flags, keywords)
			nkws := joinKeywords(nkw)
			if nf == cur && nkws == kw {
				continue
			}
			var modseq int64
			if err := tx.queryRow("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq", mailboxID).Scan(&modseq); err != nil {
				return err
			}
			if _, err := tx.exec("UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
				nf, nkws, modseq, mailboxID, uid); err != nil {
				return err
			}
			out = append(out, FlagUpdate{UID: uid, Flags: nf, Keywords: splitKeywords(nkws), ModSeq: modseq})
			tx.publish(Event{Kind: EventFlags, UserID: userID, MailboxID: mailboxID, UID: uid, ModSeq: modseq})
		}
		return nil
	})
	return out, err
}

func applyFlags(cur Flags, curKw []string, op FlagOp, flags Flags, kws []string) (Flags, []string) {
	switch op {
	case FlagsReplace:
		return flags, kws
	case FlagsAdd:
		return cur | flags, append(curKw, kws...)
	case FlagsRemove:
		var keep []string
		for _, k := range curKw {
			drop := false
			for _, r := range kws {
				if strings.EqualFold(k, r) {
					drop = true
					break
				}
			}
			if !drop {
				keep = append(keep, k)
			}
		}
		return cur &^ flags, keep
	}
	return cur, curKw
}

// Expunge removes messages from a mailbox: the given UIDs that carry
// \Deleted, or every \Deleted message when uids is nil. It returns the
// expunged UIDs in ascending order.
func (s *Store) Expunge(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error) {
	return s.remove(ctx, mailboxID, uids, true)
}

// Remove removes the given UIDs whatever their flags (POP3 DELE at QUIT).
func (s *Store) Remove(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error) {
	return s.remove(ctx, mailboxID, uids, false)
}

func (s *Store) remove(ctx context.Context, mailboxID int64, uids []uint32, onlyDeleted bool) ([]uint32, error) {
	var out []uint32
	err := s.write(ctx, func(tx *Tx) error {
		out = out[:0]
		var userID int64
		if err := tx.queryRow("SELECT user_id FROM mailboxes WHERE id = ?", mailboxID).Scan(&userID); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("mailbox %d: %w", mailboxID, ErrNotFound)
		} else if err != nil {
			return err
		}
		var cands []uint32
		if uids == nil {
			rows, err := tx.query("SELECT uid FROM messages WHERE mailbox_id = ? AND flags & ? != 0 ORDER BY uid", mailboxID, FlagDeleted)
			if err != nil {
				return err
			}
			for rows.Next() {
				var u uint32
				if err := rows.Scan(&u); err != nil {
					rows.Close()
					return err
				}
				cands = append(cands, u)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		} else {
			cands = append(cands, uids...)
			sort.Slice(cands, func(i, j int) bool { return cands[i] < cands[j] })
		}
		cond := ""
		if onlyDeleted {
			cond = fmt.Sprintf(" AND flags & %d != 0", FlagDeleted)
		}
		for i, uid := range cands {
			if i > 0 && uid == cands[i-1] {
				continue
			}
			res, err := tx.exec("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?"+cond, mailboxID, uid)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			var modseq int64
			if err := tx.queryRow("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq", mailboxID).Scan(&modseq); err != nil {
				return err
			}
			if _, err := tx.exec("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)", mailboxID, uid, modseq); err != nil {
				return err
			}
			out = append(out, uid)
			tx.publish(Event{Kind: EventExpunge, UserID: userID, MailboxID: mailboxID, UID: uid, ModSeq: modseq})
		}
		return nil
	})
	return out, err
}

// UIDPair maps a source UID to the UID of its copy.
type UIDPair struct{ Src, Dst uint32 }

// Copy copies messages to another mailbox of the same user, sharing their
// blobs. It returns the UIDVALIDITY of the destination and the UID pairs
// (RFC 4315 COPYUID).
func (s *Store) Copy(ctx context.Context, srcID int64, uids []uint32, dstID int64) (uint32, []UIDPair, error) {
	return s.copyMove(ctx, srcID, uids, dstID, false)
}

// Move moves messages to another mailbox of the same user (RFC 6851): a copy
// and an expunge of the source in one transaction.
func (s *Store) Move(ctx context.Context, srcID int64, uids []uint32, dstID int64) (uint32, []UIDPair, error) {
	return s.copyMove(ctx, srcID, uids, dstID, true)
}

func (s *Store) copyMove(ctx context.Context, srcID int64, uids []uint32, dstID int64, move bool) (uint32, []UIDPair, error) {
	var pairs []UIDPair
	var uidValidity uint32
	err := s.write(ctx, func(tx *Tx) error {
		pairs = pairs[:0]
		var srcUser, dstUser int64
		if err := tx.queryRow("SELECT user_id FROM mailboxes WHERE id = ?", srcID).Scan(&srcUser); err != nil {
			return fmt.Errorf("source mailbox: %w", ErrNotFound)
		}
		if err := tx.queryRow("SELECT user_id, uidvalidity FROM mailboxes WHERE id = ?", dstID).Scan(&dstUser, &uidValidity); err != nil {
			return fmt.Errorf("destination mailbox: %w", ErrNotFound)
		}
		if srcUser != dstUser {
			return errors.New("copy across users")
		}
		sorted := append([]uint32(nil), uids...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		for i, uid := range sorted {
			if i > 0 && uid == sorted[i-1] {
				continue
			}
			var blobID, date, size int64
			var prefix []byte
			var flags Flags
			var kw string
			err := tx.queryRow("SELECT blob_id, prefix, flags, keywords, internal_date, size FROM messages WHERE mailbox_id = ? AND uid = ?",
				srcID, uid).Scan(&blobID, &prefix, &flags, &kw, &date, &size)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			} else if err != nil {
				return err
			}
			// A move does not change the quota usage; a copy does.
			d, err := insertMessage(tx, dstID, blobID, prefix, flags, kw, date, size, !move)
			if err != nil {
				return err
			}
			pairs = append(pairs, UIDPair{Src: uid, Dst: d.UID})
		}
		if move {
			for _, p := range pairs {
				if _, err := tx.exec("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?", srcID, p.Src); err != nil {
					return err
				}
				var modseq int64
				if err := tx.queryRow("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq", srcID).Scan(&modseq); err != nil {
					return err
				}
				if _, err := tx.exec("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)", srcID, p.Src, modseq); err != nil {
					return err
				}
				tx.publish(Event{Kind: EventExpunge, UserID: srcUser, MailboxID: srcID, UID: p.Src, ModSeq: modseq})
			}
		}
		return nil
	})
	return uidValidity, pairs, err
}

// moveAll moves every message of one mailbox into another (RENAME INBOX).
func moveAll(tx *Tx, userID, srcID, dstID int64) error {
	rows, err := tx.query("SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", srcID)
	if err != nil {
		return err
	}
	var uids []uint32
	for rows.Next() {
		var u uint32
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return err
		}
		uids = append(uids, u)
	}
	rows.Close()
	for _, uid := range uids {
		var blobID, date, size int64
		var prefix []byte
		var flags Flags
		var kw string
		if err := tx.queryRow("SELECT blob_id, prefix, flags, keywords, internal_date, size FROM messages WHERE mailbox_id = ? AND uid = ?",
			srcID, uid).Scan(&blobID, &prefix, &flags, &kw, &date, &size); err != nil {
			return err
		}
		if _, err := insertMessage(tx, dstID, blobID, prefix, flags, kw, date, size, false); err != nil {
			return err
		}
		if _, err := tx.exec("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?", srcID, uid); err != nil {
			return err
		}
		var modseq int64
		if err := tx.queryRow("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq", srcID).Scan(&modseq); err != nil {
			return err
		}
		if _, err := tx.exec("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)", srcID, uid, modseq); err != nil {
			return err
		}
		tx.publish(Event{Kind: EventExpunge, UserID: userID, MailboxID: srcID, UID: uid, ModSeq: modseq})
	}
	return nil
}

// Changes is what happened in a mailbox after a MODSEQ.
type Changes struct {
	Changed  []Message // new or with changed flags, in UID order
	Expunged []uint32  // ascending
	ModSeq   int64     // the mailbox's HIGHESTMODSEQ when read
}

// ChangesSince reads the changes of a mailbox after modseq, from the
// indexes on MODSEQ (never a scan of the mailbox).
func (s *Store) ChangesSince(ctx context.Context, mailboxID int64, modseq int64) (*Changes, error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	c := &Changes{}
	if err := tx.QueryRow("SELECT highestmodseq FROM mailboxes WHERE id = ?", mailboxID).Scan(&c.ModSeq); errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mailbox %d: %w", mailboxID, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	rows, err := tx.Query("SELECT "+messageCols+" FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid", mailboxID, modseq)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		c.Changed = append(c.Changed, *m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	c.Expunged, err = s.expungedSince(ctx, tx, mailboxID, modseq)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// expungedSince reads, in tx, the UIDs of the tombstones of a mailbox with
// a MODSEQ above modseq, in ascending order.
func (s *Store) expungedSince(ctx context.Context, tx *sql.Tx, mailboxID, modseq int64) ([]uint32, error) {
	// Sorted here: with ORDER BY uid, SQLite walks every tombstone of the
	// mailbox in its primary key rather than the few past modseq.
	rows, err := s.txQuery(ctx, tx, "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ?", mailboxID, modseq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var uids []uint32
	for rows.Next() {
		var u uint32
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		uids = append(uids, u)
	}
	slices.Sort(uids)
	return uids, rows.Err()
}
