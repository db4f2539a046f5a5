package storage

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// DefaultSnapshotMessages is the size from which a view read whole is saved
// (view_snapshots), so that the next start-up reads the saved view and the
// changes after it instead of every row. Below it, reading every row costs a
// few milliseconds at most.
const DefaultSnapshotMessages = 5000

// snapshotChanges is how many changed rows a view read from its snapshot
// may take before the view is saved again: the changes since a snapshot are
// read at each start-up until then.
const snapshotChanges = 256

// snapshotVersion is the first byte of encodeView's output.
const snapshotVersion = 1

// encodeView writes the messages of v: for each, the UID as a delta from the
// previous one, the flags, and the keywords column (length, then text), all
// as unsigned varints but the text.
func encodeView(v *cachedView) []byte {
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(v.UIDs)*4)
	out = append(out, snapshotVersion)
	out = binary.AppendUvarint(out, uint64(len(v.UIDs)))
	prev := uint32(0)
	for i, u := range v.UIDs {
		out = binary.AppendUvarint(out, uint64(u-prev))
		out = binary.AppendUvarint(out, uint64(v.Flags[i]))
		kw := strings.Join(v.Keywords[u], " ")
		out = binary.AppendUvarint(out, uint64(len(kw)))
		out = append(out, kw...)
		prev = u
	}
	return out
}

// errBadSnapshot is what decodeView returns for data it did not write.
var errBadSnapshot = errors.New("bad view snapshot")

// decodeView reads encodeView's output into a view of mailbox m as of
// modseq.
func decodeView(data []byte, m *Mailbox, modseq int64) (*cachedView, error) {
	if len(data) == 0 || data[0] != snapshotVersion {
		return nil, errBadSnapshot
	}
	data = data[1:]
	next := func() (uint64, bool) {
		x, n := binary.Uvarint(data)
		if n <= 0 {
			return 0, false
		}
		data = data[n:]
		return x, true
	}
	count, ok := next()
	// Each message takes at least three octets: a count beyond that is a lie
	// that must not size an allocation.
	if !ok || count > uint64(len(data))/3 {
		return nil, errBadSnapshot
	}
	v := newCachedView(m, int64(count))
	v.HighestModSeq = modseq
	var uid uint64
	for range count {
		d, ok1 := next()
		f, ok2 := next()
		n, ok3 := next()
		if !ok1 || !ok2 || !ok3 || d == 0 || uid+d > 1<<32-1 || f > 1<<62 || n > uint64(len(data)) {
			return nil, errBadSnapshot
		}
		uid += d
		v.push(uint32(uid), Flags(f), string(data[:n]))
		data = data[n:]
	}
	if len(data) != 0 {
		return nil, errBadSnapshot
	}
	return v, nil
}

// viewFromSnapshot reads, in tx, the saved view of mailbox m and the changes
// after it, and returns the view brought up to m's state with the number of
// changed rows read; nil when there is no saved view, or it does not lead to
// m's state (then the caller reads every row).
func (s *Store) viewFromSnapshot(ctx context.Context, tx *sql.Tx, m *Mailbox) (*cachedView, int, error) {
	var uidValidity uint32
	var modseq int64
	var data []byte
	err := s.txQueryRow(ctx, tx, "SELECT uid_validity, modseq, data FROM view_snapshots WHERE mailbox_id = ?", m.ID).Scan(&uidValidity, &modseq, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, nil
	} else if err != nil {
		return nil, 0, err
	}
	if uidValidity != m.UIDValidity || modseq > m.HighestModSeq {
		return nil, 0, nil // another mailbox's, or from a database restored since
	}
	v, err := decodeView(data, m, modseq)
	if err != nil {
		return nil, 0, nil
	}
	changed, expunged, err := s.readChanges(ctx, tx, m.ID, modseq)
	if err != nil {
		return nil, 0, err
	}
	if !v.apply(m, changed, expunged) {
		return nil, 0, nil
	}
	return v, len(changed) + len(expunged), nil
}

// saveSnapshot stores data as the view of mailbox id as of modseq, unless
// a newer one is stored or the mailbox is gone.
func (s *Store) saveSnapshot(ctx context.Context, id int64, uidValidity uint32, modseq int64, data []byte) error {
	err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT INTO view_snapshots (mailbox_id, uid_validity, modseq, data)
			SELECT id, ?, ?, ? FROM mailboxes WHERE id = ? AND uidvalidity = ?
			ON CONFLICT (mailbox_id) DO UPDATE SET uid_validity = excluded.uid_validity, modseq = excluded.modseq, data = excluded.data
			WHERE excluded.modseq > view_snapshots.modseq OR excluded.uid_validity != view_snapshots.uid_validity`,
			uidValidity, modseq, data, id, uidValidity)
		return err
	})
	if err != nil {
		return fmt.Errorf("save view of mailbox %d: %w", id, err)
	}
	return nil
}
