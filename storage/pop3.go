package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// OpenMessageLoaded is OpenMessage that also reads the start of the message
// in the same query: chunk 0 and chunk 1 (for a blob stored header first,
// the header and the body, or the start of it). That is one query instead
// of two or three for any message whose header and body each fit in a
// chunk, which is most mail. POP3 RETR uses it. A message already gone is
// ErrNotFound here; only a message past those chunks and removed while being
// read can fail in Read.
func (s *Store) OpenMessageLoaded(ctx context.Context, messageID int64) (*BlobReader, error) {
	return s.openLoaded(ctx, messageID, `SELECT prefix, blob_id, size, `+chunk0Length+`,
		(SELECT data FROM blob_chunks c WHERE c.blob_id = m.blob_id AND c.seq = 0),
		(SELECT data FROM blob_chunks c WHERE c.blob_id = m.blob_id AND c.seq = 1)
		FROM messages m WHERE id = ?`)
}

// OpenMessageHeader is OpenMessageLoaded reading only chunk 0: for a blob
// stored header first, the header section and nothing of the body. POP3
// TOP with no body lines uses it.
func (s *Store) OpenMessageHeader(ctx context.Context, messageID int64) (*BlobReader, error) {
	return s.openLoaded(ctx, messageID, `SELECT prefix, blob_id, size, `+chunk0Length+`,
		(SELECT data FROM blob_chunks c WHERE c.blob_id = m.blob_id AND c.seq = 0), NULL
		FROM messages m WHERE id = ?`)
}

// openLoaded runs q, which selects for message messageID its prefix, blob,
// size, chunk0Length, chunk 0 and chunk 1 (NULL: not read). Scalar
// subqueries rather than joins: see chunk0Length.
func (s *Store) openLoaded(ctx context.Context, messageID int64, q string) (*BlobReader, error) {
	r := &BlobReader{s: s, ctx: ctx}
	var l0 sql.NullInt64
	var first, next []byte
	err := s.queryRow(ctx, q, messageID).Scan(&r.prefix, &r.blobID, &r.size, &l0, &first, &next)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %d: %w", messageID, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	r.setChunk0Length(l0)
	if l0.Valid {
		// Chunk 0 may be empty; a later chunk never is.
		r.chunks[0] = loadedChunk{start: 0, data: nonNil(first)}
		if len(next) > 0 {
			r.chunks[1] = loadedChunk{start: r.l0, data: next}
		}
	}
	return r, nil
}
