package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// OpenMessageLoaded is OpenMessage that also reads the first chunk of the
// message in the same query: one query instead of two for any message that
// fits in a chunk, which is most mail. POP3 RETR and TOP use it. A message
// already gone is ErrNotFound here; only a message larger than a chunk and
// removed while being read can fail in Read.
func (s *Store) OpenMessageLoaded(ctx context.Context, messageID int64) (*BlobReader, error) {
	var prefix, first []byte
	var blobID, size int64
	var hasChunk sql.NullInt64
	err := s.queryRow(ctx, `SELECT m.prefix, m.blob_id, m.size, c.data, c.seq
		FROM messages m LEFT JOIN blob_chunks c ON c.blob_id = m.blob_id AND c.seq = 0
		WHERE m.id = ?`, messageID).Scan(&prefix, &blobID, &size, &first, &hasChunk)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %d: %w", messageID, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	r := &BlobReader{s: s, ctx: ctx, prefix: prefix, blobID: blobID, size: size}
	if hasChunk.Valid {
		if first == nil {
			first = []byte{}
		}
		r.chunk, r.cseq = first, 0
	}
	return r, nil
}
