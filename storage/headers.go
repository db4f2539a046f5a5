package storage

import (
	"context"
	"database/sql"
	"strconv"
)

// MaxHeaderSection bounds the header sections FetchRowsWithHeaders returns:
// a larger one (rare, and never a client's message list) is left to a
// BlobReader, so that a batch of headers stays small in memory.
const MaxHeaderSection = 64 << 10

// contiguous reports whether uids are n, n+1, n+2, ... in this order.
func contiguous(uids []uint32) bool {
	for i, u := range uids {
		if uint64(u) != uint64(uids[0])+uint64(i) {
			return false
		}
	}
	return true
}

// HeaderRow is a FetchRow with the header section of its message.
type HeaderRow struct {
	FetchRow
	// Header is the header section as a client sees it (the trace prefix,
	// then the stored header with its blank line); with HasHeader false it
	// was not read (over MaxHeaderSection, or not within the first chunk)
	// and the message must be opened.
	Header    []byte
	HasHeader bool
}

// FetchRowsWithHeaders is FetchRowsOf (with FetchContent always read) with
// the header section of each message, in one query: what a message list's
// FETCH of size, date and BODY[HEADER.FIELDS (...)] needs, where opening
// each message cost two queries and its whole first chunk. uids are
// ascending, without duplicates; the rows come in their order, expunged
// ones left out.
//
// A header section is exactly as a client sees it: the trace prefix, then
// the stored header up to and including its blank line (or the whole
// message when it has none). For a blob stored header first (see
// firstChunk) chunk 0 is the header and nothing else, so no page of the
// body is read; a flat blob's chunk 0 is read whole by SQLite, of which
// substr keeps the header.
func (s *Store) FetchRowsWithHeaders(ctx context.Context, mailboxID int64, uids []uint32, what FetchFields) ([]HeaderRow, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	what |= FetchContent
	q := fetchColumns(what)
	var rows *sql.Rows
	var err error
	if contiguous(uids) {
		rows, err = s.query(ctx, q+headerRowsFrom+"m.uid BETWEEN ? AND ? ORDER BY m.uid", mailboxID, uids[0], uids[len(uids)-1])
	} else {
		rows, err = s.query(ctx, q+headerRowsFrom+"m.uid IN (SELECT value FROM json_each(?)) ORDER BY m.uid", mailboxID, uidList(uids))
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]HeaderRow, 0, len(uids))
	f := fetchScan{what: what}
	var prefix, hdr sql.RawBytes
	dst := append(f.dest(), &prefix, &hdr)
	var arena []byte
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		r := HeaderRow{FetchRow: f.row(mailboxID)}
		// Served when chunk 0 held the whole stored header (hdr is
		// header_size octets: f.hdrSize is header_size + length(prefix))
		// and the section is within MaxHeaderSection. hdr is nil when
		// NULL (an empty header is an empty, non-nil BLOB; were a driver
		// to give nil for it, the message would only go the general way).
		n := int64(len(prefix) + len(hdr))
		if hdr != nil && n == f.hdrSize.v && n <= MaxHeaderSection {
			// One copy into a block shared by the rows of the batch, rather
			// than an allocation each.
			if cap(arena)-len(arena) < int(n) {
				arena = make([]byte, 0, max(int(n), headerArena))
			}
			i := len(arena)
			arena = append(append(arena, prefix...), hdr...)
			r.Header, r.HasHeader = arena[i:len(arena):len(arena)], true
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// headerArena is the size of the blocks FetchRowsWithHeaders copies header
// sections into: a few dozen of a message list's.
const headerArena = 32 << 10

// headerRowsFrom follows fetchColumns' columns in FetchRowsWithHeaders: the
// prefix, then the stored header as chunk 0 holds it: NULL when chunk 0 is
// missing, or when the header is over MaxHeaderSection (its chunk is then
// not read). The LEFT JOIN keeps a row whose chunk 0 is missing: it goes
// the general way, which reports it. substr gives NULL for an empty BLOB,
// hence the empty header apart.
//
// Each expression here costs per row: OP_Column copies a BLOB that is on
// its row's page even for length(), so the chunk is named once, and what
// needs only sizes is decided in Go.
var headerRowsFrom = `, m.prefix, CASE
		WHEN b.header_size > ` + strconv.Itoa(MaxHeaderSection) + ` THEN NULL
		WHEN b.header_size > 0 THEN substr(c.data, 1, b.header_size)
		WHEN c.seq IS NOT NULL THEN x''
	END
	FROM messages m JOIN blobs b ON b.id = m.blob_id
	LEFT JOIN blob_chunks c ON c.blob_id = m.blob_id AND c.seq = 0
	WHERE m.mailbox_id = ? AND `

// uidList is uids as a JSON array, for json_each: the statement text, and
// so the prepared statement, stays the same for every list.
func uidList(uids []uint32) string {
	list := make([]byte, 0, len(uids)*6+2)
	list = append(list, '[')
	for i, u := range uids {
		if i > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendUint(list, uint64(u), 10)
	}
	return string(append(list, ']'))
}
