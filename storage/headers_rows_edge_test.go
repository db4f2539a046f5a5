package storage

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// FetchRowsWithHeaders decides in Go, from sizes, which header sections it
// serves: exactly at MaxHeaderSection (prefix included) and one octet over,
// an empty message and an empty prefix, NUL and 8-bit octets in a header, a
// header larger than a chunk, and stored chunks that do not hold what
// header_size says (chunk 0 cut short, or longer, as an old layout has it).
// What is served is the start of the message as a whole read gives it.
func TestFetchRowsWithHeadersEdges(t *testing.T) {
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	// A header of n octets (blank line included) with a body of 5000.
	sized := func(n int) []byte {
		return []byte(headerFields(n) + bodyOf(5000))
	}
	type msg struct {
		name   string
		raw    []byte
		prefix string
		served bool
		// cut rewrites the stored chunks of the blob (whose header has
		// hsize octets) after delivery; nil keeps them.
		cut func(stored []byte, hsize int) [][]byte
	}
	msgs := []msg{
		{name: "at the limit", raw: sized(MaxHeaderSection - len(testPrefix)), prefix: testPrefix, served: true},
		{name: "one over", raw: sized(MaxHeaderSection - len(testPrefix) + 1), prefix: testPrefix},
		{name: "at the limit, no prefix", raw: sized(MaxHeaderSection), served: true},
		{name: "over a chunk", raw: sized(ChunkSize + 1000), prefix: testPrefix},
		{name: "empty", raw: []byte{}, prefix: testPrefix, served: true},
		{name: "empty, no prefix", raw: []byte{}, served: true},
		{name: "only a blank line", raw: []byte("\r\n"), served: true},
		{name: "NUL and 8-bit", raw: []byte("Subject: a\x00b\xff\xfe\r\nX: \x00\r\n\r\nbody\x00\r\n"), prefix: testPrefix, served: true},
		{name: "small, flat", raw: []byte("Subject: s\r\n\r\nbody\r\n"), prefix: testPrefix, served: true},
		{name: "chunk 0 cut short", raw: sized(2000), prefix: testPrefix,
			cut: func(b []byte, h int) [][]byte { return [][]byte{b[:h-1], b[h-1:]} }},
		{name: "chunk 0 empty", raw: sized(2000), prefix: testPrefix,
			cut: func(b []byte, h int) [][]byte { return [][]byte{{}, b} }},
		{name: "chunk 0 longer than the header", raw: sized(2000), prefix: testPrefix, served: true,
			cut: func(b []byte, h int) [][]byte { return [][]byte{b[:h+10], b[h+10:]} }},
		{name: "chunk 0 flat, body over smallBody", raw: sized(3000), prefix: testPrefix, served: true,
			cut: func(b []byte, h int) [][]byte { return [][]byte{b} }},
	}
	var uids []uint32
	var mbox int64
	byUID := map[uint32]msg{}
	whole := map[uint32][]byte{}
	for _, m := range msgs {
		ds, err := s.Deliver(ctx, bytes.NewReader(m.raw), []Recipient{{UserID: u.ID, Prefix: []byte(m.prefix)}}, DeliverOptions{})
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		d := ds[0]
		whole[d.UID] = readAll(t, s, d.MessageID)
		if m.cut != nil {
			blobID, hsize := blobOf(t, s, d.MessageID)
			stored := whole[d.UID][len(m.prefix):]
			if err := s.write(ctx, func(tx *Tx) error {
				if _, err := tx.exec("DELETE FROM blob_chunks WHERE blob_id = ?", blobID); err != nil {
					return err
				}
				for seq, p := range m.cut(stored, int(hsize)) {
					if _, err := tx.exec("INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)", blobID, seq, append([]byte{}, p...)); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		uids = append(uids, d.UID)
		byUID[d.UID] = m
		mbox = d.MailboxID
	}
	gaps, _ := gapsAndPast(uids)
	for _, list := range [][]uint32{uids, gaps} {
		rows, err := s.FetchRowsWithHeaders(ctx, mbox, list, FetchSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(list) {
			t.Fatalf("%d rows, want %d", len(rows), len(list))
		}
		for _, r := range rows {
			m := byUID[r.UID]
			if r.HasHeader != m.served {
				t.Errorf("%s: served %v, want %v", m.name, r.HasHeader, m.served)
				continue
			}
			if !m.served {
				if r.Header != nil {
					t.Errorf("%s: not served, but %d octets of header", m.name, len(r.Header))
				}
				continue
			}
			want := whole[r.UID][:r.HeaderSize]
			if !bytes.Equal(r.Header, want) || r.HeaderSize != int64(len(r.Header)) {
				t.Errorf("%s: header %.80q (%d octets), want %.80q (%d)", m.name, r.Header, r.HeaderSize, want, len(want))
			}
			if !strings.HasPrefix(string(r.Header), m.prefix) {
				t.Errorf("%s: header without its prefix", m.name)
			}
		}
		// The sections share storage; each must be its own: writing past
		// the end of one (append) must not reach into the next.
		for i := range rows {
			if rows[i].HasHeader {
				_ = append(rows[i].Header, "overwrite"...)
			}
		}
		for _, r := range rows {
			if r.HasHeader && !bytes.Equal(r.Header, whole[r.UID][:r.HeaderSize]) {
				t.Errorf("%s: header changed by an append to another", byUID[r.UID].name)
			}
		}
	}
}

// The header rows' statement reads messages through its (mailbox_id, uid)
// index, for a range and for a list, with the unary plus that keeps it from
// being compiled again at each run (see headerRowsFrom).
func TestHeaderRowsPlan(t *testing.T) {
	s, _ := openTest(t)
	what := FetchFlags | FetchInternalDate | FetchSize | FetchContent
	q, _, _ := strings.Cut(fetchSelect(what), " FROM ")
	for _, c := range []struct {
		where string
		args  []any
	}{
		{"m.uid BETWEEN ? AND ? ORDER BY m.uid", []any{1, 1, 50}},
		{"m.uid IN (SELECT value FROM json_each(?)) ORDER BY m.uid", []any{1, "[1,3]"}},
	} {
		rows, err := s.rdb.Query("EXPLAIN QUERY PLAN "+q+headerRowsFrom+c.where, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		got := strings.Join(plan, "\n")
		for _, want := range []string{
			"SEARCH m USING INDEX sqlite_autoindex_messages_1 (mailbox_id=? AND uid",
			"SEARCH b USING INTEGER PRIMARY KEY (rowid=?)",
			"SEARCH c USING INDEX sqlite_autoindex_blob_chunks_1 (blob_id=? AND seq=?)",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: plan lacks %q:\n%s", c.where, want, got)
			}
		}
		if strings.Contains(got, "SCAN m") || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("%s: plan scans or sorts:\n%s", c.where, got)
		}
	}
}
