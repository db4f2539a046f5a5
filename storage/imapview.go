package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MailboxView is what an IMAP session needs to select a mailbox: its UIDs
// (the sequence numbers of the new view), read in one transaction with the
// mailbox's HIGHESTMODSEQ so that ChangesSince(HighestModSeq) continues
// exactly where the view stops.
type MailboxView struct {
	Mailbox
	UIDs           []uint32
	FirstUnseenUID uint32 // 0 when every message is \Seen
}

// View reads the UIDs of a mailbox and its state in one read transaction.
func (s *Store) View(ctx context.Context, mailboxID int64) (*MailboxView, error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	m, err := scanMailbox(tx.QueryRowContext(ctx, "SELECT "+mailboxCols+" FROM mailboxes WHERE id = ?", mailboxID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mailbox %d: %w", mailboxID, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	v := &MailboxView{Mailbox: *m, UIDs: make([]uint32, 0, m.Messages)}
	rows, err := tx.QueryContext(ctx, "SELECT uid, flags FROM messages WHERE mailbox_id = ? ORDER BY uid", mailboxID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var u uint32
		var f Flags
		if err := rows.Scan(&u, &f); err != nil {
			return nil, err
		}
		if f&FlagSeen == 0 && v.FirstUnseenUID == 0 {
			v.FirstUnseenUID = u
		}
		v.UIDs = append(v.UIDs, u)
	}
	return v, rows.Err()
}

// FetchRow is one message as FETCH needs it. With meta, the parse is kept
// undecoded until asked for (Envelope, Body), so that FETCH ENVELOPE does not
// pay for BODYSTRUCTURE.
type FetchRow struct {
	Message
	HeaderSize int64 // octets of the header section as the client sees it
	envJS      string
	bodyJS     string
}

// Envelope decodes the stored ENVELOPE.
func (r *FetchRow) Envelope() (*Envelope, error) {
	var e Envelope
	if err := json.Unmarshal([]byte(r.envJS), &e); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	return &e, nil
}

// Body decodes the stored BODYSTRUCTURE.
func (r *FetchRow) Body() (*BodyPart, error) {
	var b BodyPart
	if err := json.Unmarshal([]byte(r.bodyJS), &b); err != nil {
		return nil, fmt.Errorf("decode body structure: %w", err)
	}
	return &b, nil
}

// maxRangeTerms bounds the OR-ed BETWEEN terms of one query; past it the
// query reads the covering range and filters in Go.
const maxRangeTerms = 64

// FetchRows reads the messages of a mailbox with the given UIDs (ascending,
// no duplicates), with their parse when meta is true. Missing UIDs (expunged
// meanwhile) are skipped. The rows are read into memory before returning, so
// callers should pass bounded batches; no connection is held afterwards.
func (s *Store) FetchRows(ctx context.Context, mailboxID int64, uids []uint32, meta bool) ([]FetchRow, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	cols := "m.id, m.mailbox_id, m.uid, m.modseq, m.blob_id, m.flags, m.keywords, m.internal_date, m.size"
	from := " FROM messages m"
	if meta {
		cols += ", b.envelope, b.body, b.header_size + length(m.prefix)"
		from += " JOIN blobs b ON b.id = m.blob_id"
	}
	q := "SELECT " + cols + from + " WHERE m.mailbox_id = ?"
	args := []any{mailboxID}
	ranges := ToRanges(uids)
	exact := len(ranges) <= maxRangeTerms
	if exact {
		var conds []string
		for _, r := range ranges {
			conds = append(conds, "m.uid BETWEEN ? AND ?")
			args = append(args, r.Start, r.Stop)
		}
		q += " AND (" + strings.Join(conds, " OR ") + ")"
	} else {
		q += " AND m.uid BETWEEN ? AND ?"
		args = append(args, uids[0], uids[len(uids)-1])
	}
	q += " ORDER BY m.uid"
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]FetchRow, 0, len(uids))
	next := 0
	for rows.Next() {
		var r FetchRow
		var kw string
		var date int64
		dst := []any{&r.ID, &r.MailboxID, &r.UID, &r.ModSeq, &r.BlobID, &r.Flags, &kw, &date, &r.Size}
		if meta {
			dst = append(dst, &r.envJS, &r.bodyJS, &r.HeaderSize)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		if !exact {
			for next < len(uids) && uids[next] < r.UID {
				next++
			}
			if next == len(uids) || uids[next] != r.UID {
				continue
			}
		}
		r.Keywords = splitKeywords(kw)
		r.InternalDate = unixTime(date)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ToRanges compresses ascending UIDs into ranges.
func ToRanges(uids []uint32) []UIDRange {
	var out []UIDRange
	for _, u := range uids {
		if n := len(out); n > 0 && out[n-1].Stop+1 == u {
			out[n-1].Stop = u
			continue
		}
		out = append(out, UIDRange{Start: u, Stop: u})
	}
	return out
}

// CountDeleted counts the messages of a mailbox flagged \Deleted (STATUS
// DELETED).
func (s *Store) CountDeleted(ctx context.Context, mailboxID int64) (int64, error) {
	var n int64
	err := s.queryRow(ctx, "SELECT count(*) FROM messages WHERE mailbox_id = ? AND flags & ? != 0", mailboxID, FlagDeleted).Scan(&n)
	return n, err
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }
