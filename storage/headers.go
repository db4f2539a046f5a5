package storage

import (
	"context"
	"database/sql"
	"strconv"
)

// MaxHeaderSection bounds the header sections HeaderSections returns: a
// larger one (rare, and never a client's message list) is left to a
// BlobReader, so that a batch of headers stays small in memory.
const MaxHeaderSection = 64 << 10

// HeaderSections reads, in one query, the header sections of the messages of
// a mailbox with the given UIDs, each exactly as a client sees it: the trace
// prefix, then the stored header up to and including its blank line (or the
// whole message when it has none). A FETCH of BODY[HEADER.FIELDS (...)] for
// a message list needs nothing else, and reading it per message cost two
// queries and the whole first chunk apiece. For a blob stored header first
// (see firstChunk) chunk 0 is the header and nothing else, so no page of the
// body is read; a flat blob's chunk 0 is read whole by SQLite, of which
// substr keeps the header. Messages expunged meanwhile, and those whose header
// section is over MaxHeaderSection or not within the first chunk, are absent
// from the result.
func (s *Store) HeaderSections(ctx context.Context, mailboxID int64, uids []uint32) (map[uint32][]byte, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	const sel = `SELECT m.uid, m.prefix, substr(c.data, 1, b.header_size)
		FROM messages m JOIN blobs b ON b.id = m.blob_id
		JOIN blob_chunks c ON c.blob_id = m.blob_id AND c.seq = 0
		WHERE m.mailbox_id = ? AND `
	// substr: of a flat blob's chunk only the header bytes come out to Go.
	// length() reads no content.
	const cond = ` AND b.header_size <= length(c.data) AND b.header_size + length(m.prefix) <= ?`
	var rows *sql.Rows
	var err error
	if contiguous(uids) {
		// A range, as a message list asks for (the newest N): no list to
		// build and parse.
		rows, err = s.query(ctx, sel+"m.uid BETWEEN ? AND ?"+cond, mailboxID, uids[0], uids[len(uids)-1], MaxHeaderSection)
	} else {
		// The UIDs go as one JSON array so that the statement text, and so
		// the prepared statement, is the same for every batch.
		list := make([]byte, 0, len(uids)*6+2)
		list = append(list, '[')
		for i, u := range uids {
			if i > 0 {
				list = append(list, ',')
			}
			list = strconv.AppendUint(list, uint64(u), 10)
		}
		list = append(list, ']')
		rows, err = s.query(ctx, sel+"m.uid IN (SELECT value FROM json_each(?))"+cond, mailboxID, string(list), MaxHeaderSection)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[uint32][]byte, len(uids))
	var uid intCol
	var prefix, hdr sql.RawBytes
	for rows.Next() {
		// RawBytes: one copy (below) rather than one per column and another
		// to join them.
		if err := rows.Scan(&uid, &prefix, &hdr); err != nil {
			return nil, err
		}
		b := make([]byte, 0, len(prefix)+len(hdr))
		b = append(append(b, prefix...), hdr...)
		out[uint32(uid.v)] = b
	}
	return out, rows.Err()
}

// contiguous reports whether uids are n, n+1, n+2, ... in this order.
func contiguous(uids []uint32) bool {
	for i, u := range uids {
		if uint64(u) != uint64(uids[0])+uint64(i) {
			return false
		}
	}
	return true
}
