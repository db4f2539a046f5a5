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
// (the sequence numbers of the new view) and their flags, read in one
// transaction with the mailbox's HIGHESTMODSEQ so that
// ChangesSince(HighestModSeq) continues exactly where the view stops.
type MailboxView struct {
	Mailbox
	UIDs           []uint32
	Flags          []Flags             // Flags[i] are those of UIDs[i]
	Keywords       map[uint32][]string // by UID, only messages that have some
	FirstUnseenUID uint32              // 0 when every message is \Seen
}

// View reads the UIDs and flags of a mailbox and its state in one read
// transaction, bypassing the cache of CachedView (tests compare the two).
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
	v, err := s.loadView(ctx, tx, m)
	if err != nil {
		return nil, err
	}
	return &v.MailboxView, nil
}

// FetchRow is one message as FETCH needs it: the fields FetchRowsOf was
// asked for, and UID and MailboxID always. The parse is kept undecoded until
// asked for (EnvelopeDecoder.Decode, Body), so that FETCH ENVELOPE does not
// pay for BODYSTRUCTURE.
type FetchRow struct {
	Message
	HeaderSize int64 // octets of the header section as the client sees it
	envJS      string
	bodyJS     string
}

// Body decodes the stored BODYSTRUCTURE.
func (r *FetchRow) Body() (*BodyPart, error) {
	var b BodyPart
	if err := json.Unmarshal([]byte(r.bodyJS), &b); err != nil {
		return nil, fmt.Errorf("decode body structure: %w", err)
	}
	return &b, nil
}

// FetchFields says which fields of a message FetchRowsOf reads: each costs
// a column (or a join) in every row, and a FETCH usually wants few of them.
type FetchFields uint8

const (
	FetchFlags        FetchFields = 1 << iota // Flags, Keywords, ModSeq
	FetchInternalDate                         // InternalDate
	FetchSize                                 // Size
	FetchEnvelope                             // Envelope()
	FetchBody                                 // Body()
	FetchContent                              // ID, BlobID, Size, HeaderSize: what reading the message needs
)

const (
	// FetchMessage is every field of Message.
	FetchMessage = FetchFlags | FetchInternalDate | FetchSize | FetchContent
	// fetchJoin are the fields read from blobs.
	fetchJoin = FetchEnvelope | FetchBody | FetchContent
)

// maxRangeTerms bounds the OR-ed BETWEEN terms of one query; past it the
// query reads the covering range and filters in Go.
const maxRangeTerms = 64

// fetchSelect returns the SELECT ... FROM of FetchRowsOf.
func fetchSelect(what FetchFields) string {
	if what&fetchJoin != 0 {
		return fetchColumns(what) + " FROM messages m JOIN blobs b ON b.id = m.blob_id"
	}
	return fetchColumns(what) + " FROM messages m"
}

// fetchColumns returns "SELECT" and the columns of what, of messages m and
// blobs b, in the order fetchScan scans them.
func fetchColumns(what FetchFields) string {
	cols := "SELECT m.uid"
	if what&FetchFlags != 0 {
		cols += ", m.flags, m.keywords, m.modseq"
	}
	if what&FetchInternalDate != 0 {
		cols += ", m.internal_date"
	}
	if what&(FetchSize|FetchContent) != 0 {
		cols += ", m.size"
	}
	if what&FetchContent != 0 {
		cols += ", m.id, m.blob_id, b.header_size + length(m.prefix)"
	}
	if what&FetchEnvelope != 0 {
		cols += ", b.envelope"
	}
	if what&FetchBody != 0 {
		cols += ", b.body"
	}
	return cols
}

// FetchRowsOf reads the given fields of the messages of a mailbox with the
// given UIDs (ascending, no duplicates). Missing UIDs (expunged meanwhile)
// are skipped. The rows are read into memory before returning, so callers
// should pass bounded batches; no connection is held afterwards.
func (s *Store) FetchRowsOf(ctx context.Context, mailboxID int64, uids []uint32, what FetchFields) ([]FetchRow, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	q := fetchSelect(what) + " WHERE m.mailbox_id = ?"
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
	f := fetchScan{what: what}
	dst := f.dest()
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		if !exact {
			u := uint32(f.uid.v)
			for next < len(uids) && uids[next] < u {
				next++
			}
			if next == len(uids) || uids[next] != u {
				continue
			}
		}
		out = append(out, f.row(mailboxID))
	}
	return out, rows.Err()
}

// fetchScan is where a row of fetchSelect(what) is scanned.
type fetchScan struct {
	what                                                FetchFields
	kw, envJS, bodyJS                                   string
	uid, flags, modseq, date, size, id, blobID, hdrSize intCol
}

// dest returns the destinations of fetchSelect(what)'s columns, in order.
func (f *fetchScan) dest() []any {
	what := f.what
	dst := []any{&f.uid}
	if what&FetchFlags != 0 {
		dst = append(dst, &f.flags, &f.kw, &f.modseq)
	}
	if what&FetchInternalDate != 0 {
		dst = append(dst, &f.date)
	}
	if what&(FetchSize|FetchContent) != 0 {
		dst = append(dst, &f.size)
	}
	if what&FetchContent != 0 {
		dst = append(dst, &f.id, &f.blobID, &f.hdrSize)
	}
	if what&FetchEnvelope != 0 {
		dst = append(dst, &f.envJS)
	}
	if what&FetchBody != 0 {
		dst = append(dst, &f.bodyJS)
	}
	return dst
}

// row returns the row last scanned, a message of mailbox mailboxID.
func (f *fetchScan) row(mailboxID int64) FetchRow {
	r := FetchRow{
		Message: Message{
			ID: f.id.v, MailboxID: mailboxID, UID: uint32(f.uid.v), ModSeq: f.modseq.v, BlobID: f.blobID.v,
			Flags: Flags(f.flags.v), Size: f.size.v,
		},
		HeaderSize: f.hdrSize.v,
		envJS:      f.envJS,
		bodyJS:     f.bodyJS,
	}
	if f.what&FetchFlags != 0 {
		r.Keywords = splitKeywords(f.kw)
	}
	if f.what&FetchInternalDate != 0 {
		r.InternalDate = unixTime(f.date.v)
	}
	return r
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

// intCol scans an INTEGER column. database/sql converts an int64 to most
// other integer types by formatting and parsing it, with reflection: per
// row of a 100,000-message FETCH or SELECT, that showed in profiles.
type intCol struct{ v int64 }

func (c *intCol) Scan(src any) error {
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("integer column holds %T", src)
	}
	c.v = v
	return nil
}
