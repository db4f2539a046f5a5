package storage

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// spooled is a message read from its sender and parsed, waiting to be
// written as a blob. Up to ChunkSize bytes it lives in memory; past that, in
// a temporary file, so that a large message is never held whole.
type spooled struct {
	mem    []byte
	file   *os.File
	size   int64
	parsed *ParsedMessage
	envJS  string
	bodyJS string
}

type spoolWriter struct {
	dir  string
	sp   *spooled
	err  error
	spil bool
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.sp.size += int64(len(p))
	if w.sp.file == nil && len(w.sp.mem)+len(p) <= ChunkSize {
		w.sp.mem = append(w.sp.mem, p...)
		return len(p), nil
	}
	if w.sp.file == nil {
		f, err := os.CreateTemp(w.dir, "spool-*")
		if err != nil {
			w.err = fmt.Errorf("spool: %w", err)
			return 0, w.err
		}
		// Unlinked at once: the file lives as long as the descriptor, and a
		// crash leaves nothing behind.
		os.Remove(f.Name())
		w.sp.file = f
		if _, err := f.Write(w.sp.mem); err != nil {
			w.err = fmt.Errorf("spool: %w", err)
			return 0, w.err
		}
		w.sp.mem = nil
	}
	if _, err := w.sp.file.Write(p); err != nil {
		w.err = fmt.Errorf("spool: %w", err)
		return 0, w.err
	}
	return len(p), nil
}

// spool reads r to its end, parsing it on the way (parse once).
func (s *Store) spool(r io.Reader) (*spooled, error) {
	sp := &spooled{}
	w := &spoolWriter{dir: filepath.Join(s.dir, "tmp"), sp: sp}
	tee := io.TeeReader(newCRLFReader(r), w)
	parsed, err := ParseMessage(tee)
	if err == nil {
		// The parser may stop before the end (e.g. past its caps).
		_, err = io.Copy(io.Discard, tee)
	}
	if err != nil {
		sp.close()
		return nil, err
	}
	sp.parsed = parsed
	env, err := json.Marshal(parsed.Envelope)
	if err != nil {
		sp.close()
		return nil, err
	}
	body, err := json.Marshal(parsed.Body)
	if err != nil {
		sp.close()
		return nil, err
	}
	sp.envJS, sp.bodyJS = string(env), string(body)
	return sp, nil
}

func (sp *spooled) close() {
	if sp.file != nil {
		sp.file.Close()
	}
}

// insertBlob writes a spooled message as a new blob (refcount 0: the rows
// that point to it count themselves through triggers).
func insertBlob(tx *Tx, sp *spooled) (int64, error) {
	res, err := tx.exec(`INSERT INTO blobs (size, header_size, envelope, body, created) VALUES (?, ?, ?, ?, ?)`,
		sp.size, sp.parsed.HeaderSize, sp.envJS, sp.bodyJS, now())
	if err != nil {
		return 0, fmt.Errorf("insert blob: %w", err)
	}
	id, _ := res.LastInsertId()
	if _, err := tx.exec(`INSERT INTO blob_search (blob_id, headers, text) VALUES (?, ?, ?)`,
		id, sp.parsed.Headers, sp.parsed.Text); err != nil {
		return 0, fmt.Errorf("insert search text: %w", err)
	}
	if sp.file == nil {
		// An empty message still gets its (empty) chunk: a nil slice would
		// be NULL to SQLite.
		data := sp.mem
		if data == nil {
			data = []byte{}
		}
		if _, err := tx.exec(`INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, 0, ?)`, id, data); err != nil {
			return 0, fmt.Errorf("insert chunk: %w", err)
		}
		return id, nil
	}
	buf := make([]byte, ChunkSize)
	for seq := int64(0); seq*ChunkSize < sp.size; seq++ {
		n, err := sp.file.ReadAt(buf, seq*ChunkSize)
		if err != nil && !(errors.Is(err, io.EOF) && n > 0) {
			return 0, fmt.Errorf("read spool: %w", err)
		}
		if _, err := tx.exec(`INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)`, id, seq, buf[:n]); err != nil {
			return 0, fmt.Errorf("insert chunk: %w", err)
		}
	}
	return id, nil
}

// BlobReader streams one stored message, one chunk in memory at a time. It
// implements io.ReadSeeker so that partial fetches read only what they need.
type BlobReader struct {
	s      *Store
	ctx    context.Context
	prefix []byte
	blobID int64
	size   int64 // len(prefix) + blob size
	off    int64
	chunk  []byte
	cseq   int64
}

// Size is the number of octets the reader yields in all.
func (r *BlobReader) Size() int64 { return r.size }

func (r *BlobReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	plen := int64(len(r.prefix))
	if r.off < plen {
		n := copy(p, r.prefix[r.off:])
		r.off += int64(n)
		return n, nil
	}
	boff := r.off - plen
	seq := boff / ChunkSize
	if r.chunk == nil || r.cseq != seq {
		var data []byte
		err := r.s.queryRow(r.ctx, "SELECT data FROM blob_chunks WHERE blob_id = ? AND seq = ?", r.blobID, seq).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("message data: %w", ErrNotFound)
		} else if err != nil {
			return 0, fmt.Errorf("message data: %w", err)
		}
		r.chunk, r.cseq = data, seq
	}
	in := boff - seq*ChunkSize
	if in >= int64(len(r.chunk)) {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.chunk[in:])
	r.off += int64(n)
	return n, nil
}

// Seek implements io.Seeker.
func (r *BlobReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.off = offset
	return offset, nil
}

// Close releases the reader.
func (r *BlobReader) Close() error { r.chunk = nil; return nil }

// OpenMessage returns a reader of the message exactly as a client sees it:
// its trace prefix, then the stored raw message.
func (s *Store) OpenMessage(ctx context.Context, messageID int64) (*BlobReader, error) {
	var prefix []byte
	var blobID, size int64
	err := s.queryRow(ctx, "SELECT prefix, blob_id, size FROM messages WHERE id = ?", messageID).Scan(&prefix, &blobID, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %d: %w", messageID, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	return &BlobReader{s: s, ctx: ctx, prefix: prefix, blobID: blobID, size: size}, nil
}

// openBlob reads a blob with a prefix given by the caller (queue rows).
func (s *Store) openBlob(ctx context.Context, blobID int64, prefix []byte) (*BlobReader, error) {
	var size int64
	err := s.queryRow(ctx, "SELECT size FROM blobs WHERE id = ?", blobID).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("blob %d: %w", blobID, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	return &BlobReader{s: s, ctx: ctx, prefix: bytes.Clone(prefix), blobID: blobID, size: int64(len(prefix)) + size}, nil
}

// MessageMeta is what was parsed at delivery, adjusted for the message's own
// trace prefix.
type MessageMeta struct {
	Envelope   Envelope
	Body       BodyPart
	HeaderSize int64 // octets of the header section as the client sees it
}

// Meta returns the parse of a message.
func (s *Store) Meta(ctx context.Context, messageID int64) (*MessageMeta, error) {
	var env, body string
	var hsize, plen int64
	err := s.queryRow(ctx, `SELECT b.envelope, b.body, b.header_size, length(m.prefix)
		FROM messages m JOIN blobs b ON b.id = m.blob_id WHERE m.id = ?`, messageID).Scan(&env, &body, &hsize, &plen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %d: %w", messageID, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	return decodeMeta(env, body, hsize+plen)
}

func decodeMeta(env, body string, hsize int64) (*MessageMeta, error) {
	m := &MessageMeta{HeaderSize: hsize}
	if err := json.Unmarshal([]byte(env), &m.Envelope); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	if err := json.Unmarshal([]byte(body), &m.Body); err != nil {
		return nil, fmt.Errorf("decode body structure: %w", err)
	}
	return m, nil
}

// BlobCount returns the number of stored blobs and their total size; for
// tests and the operator.
func (s *Store) BlobCount(ctx context.Context) (n, size int64, err error) {
	err = s.queryRow(ctx, "SELECT count(*), coalesce(sum(size), 0) FROM blobs").Scan(&n, &size)
	return n, size, err
}
