package storage

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// scratch is the memory one spool needs while it reads and parses a
// message. Spools take it from scratchPool and give it back when their
// message is written (spooled.close), so that the buffers of every message
// are not allocated and collected again: at 4 KB a delivery allocated half
// as much with it.
type scratch struct {
	crlf []byte
	br   *bufio.Reader
	text []byte
	mem  []byte
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{crlf: make([]byte, crlfBufSize), br: bufio.NewReaderSize(nil, lineBufSize)}
}}

// maxPooled bounds the buffers a scratch keeps when it goes back to the
// pool: a rare large message must not pin its memory for good.
const maxPooled = ChunkSize

// spooled is a message read from its sender and parsed, waiting to be
// written as a blob. Up to ChunkSize bytes it lives in memory; past that, in
// a temporary file, so that a large message is never held whole.
type spooled struct {
	scr    *scratch // returned to scratchPool by close
	mem    []byte
	file   *os.File
	size   int64
	parsed *ParsedMessage
	// textIsBody: the search text is the body, CRLF read as LF (and
	// the blob is in memory); blob_search stores no copy of it.
	textIsBody bool
	envJS      string
	bodyJS     string
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
	scr := scratchPool.Get().(*scratch)
	sp := &spooled{scr: scr, mem: scr.mem[:0]}
	w := &spoolWriter{dir: filepath.Join(s.dir, "tmp"), sp: sp}
	tee := io.TeeReader(newCRLFReader(r, scr.crlf), w)
	scr.br.Reset(tee)
	parsed, err := parseWith(scr.br, &scr.text)
	if cap(scr.text) > maxPooled {
		scr.text = nil
	}
	scr.br.Reset(nil)
	if err == nil {
		// The parser may stop before the end (e.g. past its caps).
		_, err = io.Copy(io.Discard, tee)
	}
	if err != nil {
		sp.close()
		return nil, err
	}
	sp.parsed = parsed
	// Here, in the sender's goroutine, rather than in the writer's.
	sp.textIsBody = sp.file == nil && textIsBody(sp.mem[parsed.HeaderSize:], parsed.Text)
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
	if scr := sp.scr; scr != nil {
		sp.scr = nil
		// nil: spilled to a file, and scr.mem, written out, is free again.
		if sp.mem != nil && cap(sp.mem) <= maxPooled {
			scr.mem = sp.mem[:0]
		}
		sp.mem = nil
		scratchPool.Put(scr)
	}
}

// How a blob is cut into chunks. Chunk 0 holds the first l0 octets, l0 at
// most ChunkSize; every later chunk holds ChunkSize octets, the last one
// what is left: chunk k >= 1 starts at l0 + (k-1)*ChunkSize. The length of
// chunk 0 so says where every chunk starts, and no other record of the cut
// is needed (every opener reads it: see chunk0Length). Two cuts are
// written:
//
//   - flat: l0 = min(size, ChunkSize), so that chunk k starts at
//     k*ChunkSize. Every blob written before schema 3 is flat (an empty
//     message has one empty chunk).
//   - header first: l0 = header_size, so that chunk 0 is the header section
//     and nothing else, and a header read (FetchRowsWithHeaders, POP3 TOP n 0)
//     reads no page of the body. Delivery writes a blob so unless its header
//     is over ChunkSize or its body is small (smallBody).

// smallBody is the largest body kept in one chunk with its header (flat).
// Reading such a message whole to get its header costs a page or so more
// than the header alone; storing it header first would cost a row, and for
// a body of about a page, a page more at delivery (a body cell that fills a
// leaf page leaves no room for the next header's) and a row more at every
// whole read.
const smallBody = 4 << 10

// firstChunk is the length of chunk 0 of a message of size octets whose
// header section has hsize, as delivery cuts it.
func firstChunk(size, hsize int64) int64 {
	if hsize < 0 || hsize > ChunkSize || size-hsize <= smallBody {
		return min(size, ChunkSize) // flat
	}
	return hsize // header first
}

// chunkSpans calls f for each chunk of a blob of size octets whose chunk 0
// has l0 octets, in order: its sequence number and the octets [start, end)
// it holds. Chunk 0 comes even when empty (an empty message, or an empty
// header stored header first): every blob has one, whose length tells the
// cut.
func chunkSpans(size, l0 int64, f func(seq, start, end int64) error) error {
	for seq, start := int64(0), int64(0); seq == 0 || start < size; seq++ {
		end := min(start+ChunkSize, size)
		if seq == 0 {
			end = l0
		}
		if err := f(seq, start, end); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// chunkAt is the chunk that holds blob offset off, in a blob whose chunk 0
// has l0 octets.
func chunkAt(off, l0 int64) int64 {
	if off < l0 {
		return 0
	}
	return 1 + (off-l0)/ChunkSize
}

// chunkStart is where chunk seq starts in a blob whose chunk 0 has l0
// octets.
func chunkStart(seq, l0 int64) int64 {
	if seq == 0 {
		return 0
	}
	return l0 + (seq-1)*ChunkSize
}

// textIsBody reports whether text is body with every CRLF read as LF,
// which is what searchTextSQL makes of a stored body.
func textIsBody(body []byte, text string) bool {
	if text == "" {
		return false
	}
	for {
		k := bytes.Index(body, crlfBytes)
		if k < 0 {
			return text == string(body)
		}
		if len(text) <= k || text[:k] != string(body[:k]) || text[k] != '\n' {
			return false
		}
		text, body = text[k+1:], body[k+2:]
	}
}

var crlfBytes = []byte("\r\n")

// insertBlob writes a spooled message as a new blob (refcount 0: the rows
// that point to it count themselves through triggers).
func insertBlob(tx *Tx, sp *spooled) (int64, error) {
	res, err := tx.exec(`INSERT INTO blobs (size, header_size, envelope, body, created) VALUES (?, ?, ?, ?, ?)`,
		sp.size, sp.parsed.HeaderSize, sp.envJS, sp.bodyJS, now())
	if err != nil {
		return 0, fmt.Errorf("insert blob: %w", err)
	}
	id, _ := res.LastInsertId()
	text := sp.parsed.Text
	if sp.textIsBody {
		text = "" // search reads the body instead (searchTextSQL)
	}
	if _, err := tx.exec(`INSERT INTO blob_search (blob_id, headers, text, text_is_body) VALUES (?, ?, ?, ?)`,
		id, sp.parsed.Headers, text, sp.textIsBody); err != nil {
		return 0, fmt.Errorf("insert search text: %w", err)
	}
	var buf []byte
	if sp.file != nil {
		buf = make([]byte, ChunkSize)
	}
	err = chunkSpans(sp.size, firstChunk(sp.size, sp.parsed.HeaderSize), func(seq, start, end int64) error {
		var data []byte
		if sp.file == nil {
			data = sp.mem[start:end:end]
		} else {
			n, err := sp.file.ReadAt(buf[:end-start], start)
			if int64(n) != end-start {
				return fmt.Errorf("read spool: %w", err)
			}
			data = buf[:n]
		}
		if _, err := tx.exec(`INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)`, id, seq, nonNil(data)); err != nil {
			return fmt.Errorf("insert chunk: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// BlobReader streams one stored message, at most two chunks in memory at a
// time. It implements io.ReadSeeker so that partial fetches read only what
// they need.
type BlobReader struct {
	s      *Store
	ctx    context.Context
	prefix []byte
	blobID int64
	size   int64 // len(prefix) + blob size
	off    int64
	l0     int64 // octets in chunk 0, which tell the cut; -1: the blob is gone
	// Chunks in memory: the one being read, and the one after it when a
	// read went past it.
	chunks [2]loadedChunk
}

// loadedChunk is a chunk in memory and the blob offset of its first octet.
type loadedChunk struct {
	start int64
	data  []byte // nil: none
}

// Size is the number of octets the reader yields in all.
func (r *BlobReader) Size() int64 { return r.size }

func (r *BlobReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	plen := int64(len(r.prefix))
	if r.off < plen {
		n := copy(p, r.prefix[r.off:])
		r.off += int64(n)
		return n, nil
	}
	off := r.off - plen
	c := r.holding(off)
	if c == nil {
		if err := r.fetch(off, min(off+int64(len(p)), r.size-plen)); err != nil {
			return 0, err
		}
		if c = r.holding(off); c == nil {
			return 0, fmt.Errorf("message data at %d: %w", off, io.ErrUnexpectedEOF)
		}
	}
	n := copy(p, c.data[off-c.start:])
	r.off += int64(n)
	return n, nil
}

// holding returns the chunk in memory that holds blob offset off, or nil.
func (r *BlobReader) holding(off int64) *loadedChunk {
	for i := range r.chunks {
		c := &r.chunks[i]
		if c.data != nil && off >= c.start && off < c.start+int64(len(c.data)) {
			return c
		}
	}
	return nil
}

// fetch reads the chunk that holds blob offset off, and the next one too
// when the read goes on past it, to end: the body of a whole-message read
// comes with the header, while a read of the header alone reads nothing of
// the body.
func (r *BlobReader) fetch(off, end int64) error {
	if r.l0 < 0 {
		return fmt.Errorf("message data: %w", ErrNotFound)
	}
	first := chunkAt(off, r.l0)
	last := min(chunkAt(max(end-1, off), r.l0), first+1)
	rows, err := r.s.query(r.ctx, "SELECT seq, data FROM blob_chunks WHERE blob_id = ? AND seq BETWEEN ? AND ?", r.blobID, first, last)
	if err != nil {
		return fmt.Errorf("message data: %w", err)
	}
	defer rows.Close()
	r.chunks = [2]loadedChunk{}
	i := 0
	for ; rows.Next(); i++ {
		var seq int64
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil {
			return fmt.Errorf("message data: %w", err)
		}
		if i < len(r.chunks) {
			r.chunks[i] = loadedChunk{start: chunkStart(seq, r.l0), data: nonNil(data)}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("message data: %w", err)
	}
	if i == 0 {
		return fmt.Errorf("message data: %w", ErrNotFound)
	}
	return nil
}

// nonNil returns data, or an empty slice for nil (an empty chunk scans as
// nil).
func nonNil(data []byte) []byte {
	if data == nil {
		return []byte{}
	}
	return data
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
func (r *BlobReader) Close() error { r.chunks = [2]loadedChunk{}; return nil }

// OpenMessage returns a reader of the message exactly as a client sees it:
// its trace prefix, then the stored raw message.
func (s *Store) OpenMessage(ctx context.Context, messageID int64) (*BlobReader, error) {
	r := &BlobReader{s: s, ctx: ctx}
	var l0 sql.NullInt64
	err := s.queryRow(ctx, "SELECT prefix, blob_id, size, "+chunk0Length+" FROM messages m WHERE id = ?", messageID).Scan(&r.prefix, &r.blobID, &r.size, &l0)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %d: %w", messageID, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	r.setChunk0Length(l0)
	return r, nil
}

// setChunk0Length records chunk 0's length as chunk0Length reads it: NULL
// when the blob is gone (the first Read then reports ErrNotFound).
func (r *BlobReader) setChunk0Length(l0 sql.NullInt64) {
	r.l0 = -1
	if l0.Valid {
		r.l0 = l0.Int64
	}
}

// chunk0LengthOf is the length of chunk 0 of the blob whose id is the SQL
// expression blobID (NULL when gone), which tells how the blob is cut. A
// subquery: length() then reads no page of the chunk's content, which, as a
// column of a join, it did in benchmarks (BenchmarkBlobIO).
func chunk0LengthOf(blobID string) string {
	return "(SELECT length(data) FROM blob_chunks c WHERE c.blob_id = " + blobID + " AND c.seq = 0)"
}

// chunk0Length is chunk0LengthOf the blob of messages row m.
var chunk0Length = chunk0LengthOf("m.blob_id")

// openBlob reads a blob with a prefix given by the caller (queue rows).
func (s *Store) openBlob(ctx context.Context, blobID int64, prefix []byte) (*BlobReader, error) {
	r := &BlobReader{s: s, ctx: ctx, prefix: bytes.Clone(prefix), blobID: blobID}
	var size int64
	var l0 sql.NullInt64
	err := s.queryRow(ctx, "SELECT size, "+chunk0LengthOf("b.id")+" FROM blobs b WHERE id = ?", blobID).Scan(&size, &l0)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("blob %d: %w", blobID, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	r.size = int64(len(prefix)) + size
	r.setChunk0Length(l0)
	return r, nil
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
