package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// layoutCase is a message as delivered and as stored (CRLF line ends).
type layoutCase struct {
	name   string
	raw    []byte
	stored []byte
	hsize  int // of stored; -1: as headerEnd says
}

// headerFields returns a header section of about n octets, blank line
// included.
func headerFields(n int) string {
	var b strings.Builder
	b.WriteString("Subject: long header\r\n")
	for i := 0; n-2-b.Len() > 100; i++ {
		fmt.Fprintf(&b, "X-Filler-%d: %s\r\n", i, strings.Repeat("h", 60))
	}
	// The last field fills exactly the size asked for.
	b.WriteString("X: " + strings.Repeat("h", n-2-b.Len()-5) + "\r\n\r\n")
	return b.String()
}

func bodyOf(n int) string {
	line := "The body of the message, a line of text that repeats.\r\n"
	s := strings.Repeat(line, n/len(line)+1)
	return s[:n]
}

func layoutCases() []layoutCase {
	var cs []layoutCase
	add := func(name, raw string) {
		cs = append(cs, layoutCase{name: name, raw: []byte(raw), stored: []byte(raw), hsize: -1})
	}
	add("small", "Subject: small\r\nFrom: a@example.org\r\n\r\nbody\r\n")
	add("header only, no blank line", "Subject: no body\r\nFrom: a@example.org\r\n")
	add("empty body", "Subject: empty body\r\n\r\n")
	add("no header", "\r\nonly a body\r\n")
	add("no final line end", "Subject: x\r\n\r\nno line end")
	add("empty", "")
	add("body of smallBody", "Subject: small body\r\n\r\n"+bodyOf(smallBody))
	add("body of smallBody+1", "Subject: small body\r\n\r\n"+bodyOf(smallBody+1))
	// No header field at all (not even a blank line): header_size 0.
	cs = append(cs, layoutCase{name: "no header field, big body", raw: []byte(strings.Repeat("y", smallBody+10)),
		stored: []byte(strings.Repeat("y", smallBody+10)), hsize: 0})
	// Not a header field: all body.
	cs = append(cs, layoutCase{name: "one octet", raw: []byte("x"), stored: []byte("x"), hsize: 0})
	for _, n := range []int{ChunkSize - 1, ChunkSize, ChunkSize + 1, 2*ChunkSize + 7} {
		add(fmt.Sprintf("body of %d", n), "Subject: body\r\n\r\n"+bodyOf(n))
	}
	for _, n := range []int{ChunkSize - 1, ChunkSize, ChunkSize + 1} {
		h := headerFields(n)
		if len(h) != n {
			panic(fmt.Sprintf("header of %d octets, want %d", len(h), n))
		}
		add(fmt.Sprintf("header of %d", n), h+"short body\r\n")
		add(fmt.Sprintf("header of %d, body over smallBody", n), h+bodyOf(3*smallBody))
	}
	add("header over two chunks, body over one", headerFields(2*ChunkSize+1000)+bodyOf(ChunkSize+500))
	add("header over a chunk, no body", headerFields(ChunkSize+100))
	add("header over a chunk, no blank line", strings.TrimSuffix(headerFields(ChunkSize+100), "\r\n"))
	// Bare LF is stored as CRLF: the header size is that of the stored form.
	lf := "Subject: bare LF\nFrom: a@example.org\n\nline 1\nline 2\n"
	cs = append(cs, layoutCase{name: "bare LF", raw: []byte(lf), stored: []byte(strings.ReplaceAll(lf, "\n", "\r\n")), hsize: -1})
	lfBig := "Subject: bare LF, big\n\n" + strings.Repeat("0123456789abcdef\n", ChunkSize/17+3)
	cs = append(cs, layoutCase{name: "bare LF over a chunk", raw: []byte(lfBig), stored: []byte(strings.ReplaceAll(lfBig, "\n", "\r\n")), hsize: -1})
	return cs
}

// headerEnd is the size of the header section of a stored message: up to
// and including the blank line, or all of it when it has none.
func headerEnd(b []byte) int {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return 2
	}
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return len(b)
}

const testPrefix = "Delivered-To: alice@example.test\r\n"

func deliverCase(t *testing.T, s *Store, userID int64, raw []byte) Delivery {
	t.Helper()
	ds, err := s.Deliver(context.Background(), bytes.NewReader(raw), []Recipient{{UserID: userID, Prefix: []byte(testPrefix)}}, DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ds[0]
}

func blobOf(t testing.TB, s *Store, messageID int64) (id, hsize int64) {
	t.Helper()
	err := s.rdb.QueryRow(`SELECT b.id, b.header_size FROM messages m JOIN blobs b ON b.id = m.blob_id
		WHERE m.id = ?`, messageID).Scan(&id, &hsize)
	if err != nil {
		t.Fatal(err)
	}
	return id, hsize
}

func chunkRows(t *testing.T, s *Store, blobID int64) [][]byte {
	t.Helper()
	rows, err := s.rdb.Query("SELECT seq, data FROM blob_chunks WHERE blob_id = ? ORDER BY seq", blobID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var seq int
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil {
			t.Fatal(err)
		}
		if seq != len(out) {
			t.Fatalf("chunk %d where %d was expected", seq, len(out))
		}
		out = append(out, data)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// cut returns the chunks of a message: flat (every ChunkSize octets), or
// header first (the header section, then the body every ChunkSize octets).
// It is written apart from firstChunk and chunkSpans, to check them.
func cut(raw []byte, hsize int, headerFirst bool) [][]byte {
	var out [][]byte
	from := 0
	if headerFirst {
		out, from = append(out, raw[:hsize]), hsize
	}
	for off := from; off < len(raw) || len(out) == 0; off += ChunkSize {
		out = append(out, raw[off:min(off+ChunkSize, len(raw))])
	}
	return out
}

// deliveredHeaderFirst is whether delivery stores a message header first.
func deliveredHeaderFirst(size, hsize int) bool {
	return hsize <= ChunkSize && size-hsize > smallBody
}

// rewrite stores a blob's chunks again, cut as cut does: flat as a database
// of schema 2 holds every blob, or header first.
func rewrite(t testing.TB, s *Store, blobID int64, raw []byte, headerFirst bool) {
	t.Helper()
	var hsize int
	if err := s.rdb.QueryRow("SELECT header_size FROM blobs WHERE id = ?", blobID).Scan(&hsize); err != nil {
		t.Fatal(err)
	}
	err := s.write(context.Background(), func(tx *Tx) error {
		if _, err := tx.exec("DELETE FROM blob_chunks WHERE blob_id = ?", blobID); err != nil {
			return err
		}
		for seq, p := range cut(raw, hsize, headerFirst) {
			if _, err := tx.exec("INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)", blobID, seq, append([]byte{}, p...)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkChunks(t *testing.T, got [][]byte, stored []byte, hsize int, headerFirst bool) {
	t.Helper()
	want := cut(stored, hsize, headerFirst)
	if len(got) != len(want) {
		t.Fatalf("%d chunks, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("chunk %d: %d octets that differ from the %d expected", i, len(got[i]), len(want[i]))
		}
	}
}

// checkReads reads the message every way there is and compares with want
// (prefix, then the stored message). marks are blob offsets around which
// to seek (chunk and header boundaries).
func checkReads(t *testing.T, s *Store, d Delivery, want []byte, marks []int64, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	for name, open := range map[string]func(context.Context, int64) (*BlobReader, error){
		"OpenMessage": s.OpenMessage, "OpenMessageLoaded": s.OpenMessageLoaded, "OpenMessageHeader": s.OpenMessageHeader,
	} {
		if got := readAllMsg(t, s, d.MessageID, open); !bytes.Equal(got, want) {
			t.Fatalf("%s: %d octets that differ from the %d stored", name, len(got), len(want))
		}
	}

	plen := int64(len(testPrefix))
	size := int64(len(want))
	var seeks []int64
	for _, m := range append(marks, -plen, 0, size-plen) {
		for d := int64(-2); d <= 2; d++ {
			if o := plen + m + d; o >= 0 {
				seeks = append(seeks, o)
			}
		}
	}
	for i := 0; i < 50; i++ {
		seeks = append(seeks, rng.Int64N(size+3))
	}
	shared, err := s.OpenMessage(ctx, d.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	for i, off := range seeks {
		// A fresh reader (which knows nothing of the blob yet) for every
		// other seek, the same one for the others.
		r := shared
		if i%2 == 0 {
			if r, err = s.OpenMessage(ctx, d.MessageID); err != nil {
				t.Fatal(err)
			}
		}
		// Lengths that end inside the same chunk, across one, across several.
		for _, n := range []int64{1, 3, rng.Int64N(ChunkSize + 2), rng.Int64N(3 * ChunkSize)} {
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, n)
			got, err := io.ReadFull(r, buf)
			wantN := max(min(n, size-off), 0)
			if int64(got) != wantN || !bytes.Equal(buf[:got], want[min(off, size):min(off, size)+wantN]) {
				t.Fatalf("read %d at %d: got %d octets (%v), want %d", n, off, got, err, wantN)
			}
			if wantN < n && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("read %d at %d past the end: %v", n, off, err)
			}
		}
	}
	// Relative and end seeks land where the absolute ones do.
	if size > 5 {
		if _, err := shared.Seek(-5, io.SeekEnd); err != nil {
			t.Fatal(err)
		}
		if _, err := shared.Seek(2, io.SeekCurrent); err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(shared)
		if !bytes.Equal(got, want[size-3:]) {
			t.Fatalf("last 3 octets after relative seeks: %q, want %q", got, want[size-3:])
		}
	}
}

// TestBlobLayouts stores messages of every shape around the chunk and
// header boundaries, checks how delivery cut them, and reads them back
// every way (whole, from each opener, seeking) cut both ways: same octets,
// same header sections.
func TestBlobLayouts(t *testing.T) {
	seed := uint64(20240607)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	for _, c := range layoutCases() {
		t.Run(c.name, func(t *testing.T) {
			d := deliverCase(t, s, u.ID, c.raw)
			blobID, hsize := blobOf(t, s, d.MessageID)
			h := c.hsize
			if h < 0 {
				h = headerEnd(c.stored)
			}
			if hsize != int64(h) {
				t.Fatalf("header_size %d, want %d", hsize, h)
			}
			checkChunks(t, chunkRows(t, s, blobID), c.stored, h, deliveredHeaderFirst(len(c.stored), h))
			msg := append([]byte(testPrefix), c.stored...)
			wantHdr := msg[:len(testPrefix)+h]
			var marks []int64
			for k := int64(0); k*ChunkSize <= int64(len(c.stored)); k++ {
				marks = append(marks, k*ChunkSize, int64(h)+k*ChunkSize)
			}

			for _, headerFirst := range []bool{true, false} {
				if headerFirst && h > ChunkSize {
					continue // not a layout: a header over a chunk is stored flat
				}
				rewrite(t, s, blobID, c.stored, headerFirst)
				checkChunks(t, chunkRows(t, s, blobID), c.stored, h, headerFirst)
				hdr, err := s.headerSections(ctx, d.MailboxID, []uint32{d.UID})
				if err != nil {
					t.Fatal(err)
				}
				// The header fetch serves a header that fits; the larger
				// ones are left to the caller's general way.
				if len(wantHdr) <= MaxHeaderSection && !bytes.Equal(hdr[d.UID], wantHdr) {
					t.Fatalf("header first %v: header section %q, want %q", headerFirst, hdr[d.UID], wantHdr)
				} else if len(wantHdr) > MaxHeaderSection && len(hdr) != 0 {
					t.Fatalf("header first %v: header of %d octets served", headerFirst, len(wantHdr))
				}
				checkReads(t, s, d, msg, marks, rng)
			}
		})
	}
}

// TestHeaderReadsNoBody: a blob stored header first gives its header with
// no body chunk at hand (they are deleted here after the open), both to
// the header fetch and to the POP3 TOP reader; the RETR reader has read the
// first body chunk with the message row.
func TestHeaderReadsNoBody(t *testing.T) {
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	raw := []byte("Subject: list me\r\nFrom: a@example.org\r\n\r\n" + bodyOf(100<<10))
	hsize := headerEnd(raw)
	d := deliverCase(t, s, u.ID, raw)
	blobID, _ := blobOf(t, s, d.MessageID)
	want := append([]byte(testPrefix), raw...)

	top, err := s.OpenMessageHeader(ctx, d.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	retr, err := s.OpenMessageLoaded(ctx, d.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	// Gone from under the readers: they have what they need, or fail.
	dropChunks(t, s, blobID, 0)

	hdr := make([]byte, len(testPrefix)+hsize)
	if _, err := io.ReadFull(top, hdr); err != nil || !bytes.Equal(hdr, want[:len(hdr)]) {
		t.Fatalf("header read: %q, %v", hdr, err)
	}
	if _, err := top.Read(make([]byte, 1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("body read with its chunks gone: %v, want ErrNotFound", err)
	}
	if got, err := io.ReadAll(retr); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("RETR reader: %d octets, %v", len(got), err)
	}

	// Only chunk 0 left: the header fetch still serves the header.
	d = deliverCase(t, s, u.ID, raw)
	blobID, _ = blobOf(t, s, d.MessageID)
	dropChunks(t, s, blobID, 1)
	hs, err := s.headerSections(ctx, d.MailboxID, []uint32{d.UID})
	if err != nil || !bytes.Equal(hs[d.UID], want[:len(testPrefix)+hsize]) {
		t.Fatalf("header section %q, %v", hs[d.UID], err)
	}
}

// TestBlobReaderReadAhead: a first read to the end of the message gets the
// body's chunk with the header's, in one query (the chunks are deleted under
// the reader after it), and so does a later read from one chunk into the
// next; a read of the header alone gets nothing of the body.
func TestBlobReaderReadAhead(t *testing.T) {
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	raw := []byte("Subject: read ahead\r\n\r\n" + bodyOf(100<<10))
	want := append([]byte(testPrefix), raw...)
	hlen := int64(len(testPrefix) + headerEnd(raw))

	d := deliverCase(t, s, u.ID, raw)
	blobID, _ := blobOf(t, s, d.MessageID)
	r, err := s.OpenMessage(ctx, d.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.LimitReader(r, hlen))
	if err != nil || !bytes.Equal(got, want[:hlen]) {
		t.Fatalf("header read: %q, %v", got, err)
	}
	dropChunks(t, s, blobID, 1)
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("body read after a header read, its chunk gone: %v, want ErrNotFound", err)
	}

	// A message read whole with one buffer (IMAP BODY[] of one up to 32
	// KiB): one query.
	whole := []byte("Subject: read ahead, whole\r\n\r\n" + bodyOf(20<<10))
	want = append([]byte(testPrefix), whole...)
	d = deliverCase(t, s, u.ID, whole)
	blobID, _ = blobOf(t, s, d.MessageID)
	r, err = s.OpenMessage(ctx, d.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	n1, err := r.Read(buf) // the prefix
	if err != nil {
		t.Fatal(err)
	}
	n2, err := r.Read(buf[n1:]) // the header, and the body fetched with it
	if err != nil {
		t.Fatal(err)
	}
	dropChunks(t, s, blobID, 0)
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("whole read, chunks gone after its first read: %v", err)
	}
	if got := append(buf[:n1+n2:n1+n2], rest...); !bytes.Equal(got, want) {
		t.Fatalf("whole read: %d octets that differ from the %d stored", len(got), len(want))
	}

	// Once the reader knows the cut: a read from near the end of body
	// chunk 1 into chunk 2 gets both at once.
	big := []byte("Subject: read ahead, big\r\n\r\n" + bodyOf(2*ChunkSize+100))
	want = append([]byte(testPrefix), big...)
	d = deliverCase(t, s, u.ID, big)
	blobID, _ = blobOf(t, s, d.MessageID)
	r, err = s.OpenMessageHeader(ctx, d.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	at := int64(len(testPrefix)+headerEnd(big)) + ChunkSize - 10
	if _, err := r.Seek(at, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	n, err := r.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	dropChunks(t, s, blobID, 0)
	rest, err = io.ReadAll(io.LimitReader(r, 1000))
	if got := append(buf[:n:n], rest...); err != nil || !bytes.Equal(got, want[at:at+int64(len(got))]) || len(got) != n+1000 {
		t.Fatalf("read across body chunks 1 and 2: %d octets, %v", len(got), err)
	}
}

// dropChunks deletes the chunks of a blob from seq from on.
func dropChunks(t *testing.T, s *Store, blobID int64, from int) {
	t.Helper()
	err := s.write(context.Background(), func(tx *Tx) error {
		_, err := tx.exec("DELETE FROM blob_chunks WHERE blob_id = ? AND seq >= ?", blobID, from)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrationKeepsFlatBlobs opens a database of schema 2 holding flat
// blobs: after the migration to schema 3 they read as before, and a new
// delivery is stored header first beside them.
func TestMigrationKeepsFlatBlobs(t *testing.T) {
	s, dir := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	var msgs [][]byte
	var ds []Delivery
	for _, c := range layoutCases() {
		d := deliverCase(t, s, u.ID, c.raw)
		blobID, _ := blobOf(t, s, d.MessageID)
		rewrite(t, s, blobID, c.stored, false)
		msgs, ds = append(msgs, c.stored), append(ds, d)
	}
	s.Close()

	// Back to schema 2, as a database written before this migration.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "pombo.db"))
	if err != nil {
		t.Fatal(err)
	}
	// Tables of later schemas go too.
	downgradeTo4(t, db)
	if _, err := db.Exec("DROP TABLE view_snapshots; PRAGMA user_version = 2"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var version int
	if err := s.rdb.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != SchemaVersion() {
		t.Fatalf("schema version %d after the migration (%v), want %d", version, err, SchemaVersion())
	}
	for i, d := range ds {
		blobID, hsize := blobOf(t, s, d.MessageID)
		checkChunks(t, chunkRows(t, s, blobID), msgs[i], int(hsize), false)
		want := append([]byte(testPrefix), msgs[i]...)
		for _, open := range []func(context.Context, int64) (*BlobReader, error){s.OpenMessage, s.OpenMessageLoaded, s.OpenMessageHeader} {
			if got := readAllMsg(t, s, d.MessageID, open); !bytes.Equal(got, want) {
				t.Fatalf("message %d: read %d octets that differ from the %d stored", i, len(got), len(want))
			}
		}
		if hs, err := s.headerSections(ctx, d.MailboxID, []uint32{d.UID}); err != nil {
			t.Fatal(err)
		} else if w := want[:len(testPrefix)+int(hsize)]; len(w) <= MaxHeaderSection && !bytes.Equal(hs[d.UID], w) {
			t.Fatalf("message %d: header section %q, want %q", i, hs[d.UID], w)
		}
	}
	raw := testMessage(1, 3*smallBody)
	d := deliverCase(t, s, u.ID, raw)
	blobID, hsize := blobOf(t, s, d.MessageID)
	checkChunks(t, chunkRows(t, s, blobID), raw, int(hsize), true)
}

// TestHeaderSectionsMixedLayouts reads one batch over blobs of both layouts
// (corpus messages, every other one stored flat, the others header first):
// each header as stored.
func TestHeaderSectionsMixedLayouts(t *testing.T) {
	msgs := corpusMessages(t)[:60]
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	var uids []uint32
	want := map[uint32][]byte{}
	var mbox int64
	for i, m := range msgs {
		d := deliverCase(t, s, u.ID, m)
		raw := readAll(t, s, d.MessageID)[len(testPrefix):]
		blobID, hsize := blobOf(t, s, d.MessageID)
		rewrite(t, s, blobID, raw, i%2 == 0)
		uids = append(uids, d.UID)
		want[d.UID] = append([]byte(testPrefix), raw[:hsize]...)
		mbox = d.MailboxID
	}
	// A range of UIDs (read as one), the same in reverse and with gaps (read
	// as a list), and a range that runs past the last message.
	reversed := slices.Clone(uids)
	slices.Reverse(reversed)
	gaps, past := gapsAndPast(uids)
	for _, c := range []struct {
		name string
		uids []uint32
	}{{"range", uids}, {"reversed", reversed}, {"gaps", gaps}, {"past the end", past}, {"one", uids[7:8]}} {
		got, err := s.headerSections(ctx, mbox, c.uids)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, uid := range c.uids {
			w, ok := want[uid]
			if !ok {
				if g, ok := got[uid]; ok {
					t.Fatalf("%s: uid %d has no message, got a header section %q", c.name, uid, g)
				}
				continue
			}
			n++
			if !bytes.Equal(got[uid], w) {
				t.Fatalf("%s: uid %d: header section %q, want %q", c.name, uid, got[uid], w)
			}
		}
		if len(got) != n {
			t.Fatalf("%s: %d header sections, want %d", c.name, len(got), n)
		}
	}
}
