package storage

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// schema5to4 turns a database of schema 5 back into one of schema 4, for
// the tests of earlier migrations.
const schema5to4 = `
DROP TRIGGER messages_count_ins;
DROP TRIGGER messages_count_del;
ALTER TABLE users ADD COLUMN used_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE users SET used_bytes = (SELECT coalesce(sum(size), 0) FROM mailboxes WHERE user_id = users.id);
CREATE INDEX messages_blob ON messages (blob_id);
CREATE TRIGGER messages_count_ins AFTER INSERT ON messages BEGIN
	UPDATE mailboxes SET messages = messages + 1, unseen = unseen + (NEW.flags & 1 = 0), size = size + NEW.size
	WHERE id = NEW.mailbox_id;
	UPDATE users SET used_bytes = used_bytes + NEW.size
	WHERE id = (SELECT user_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;
CREATE TRIGGER messages_count_del AFTER DELETE ON messages BEGIN
	UPDATE mailboxes SET messages = messages - 1, unseen = unseen - (OLD.flags & 1 = 0), size = size - OLD.size
	WHERE id = OLD.mailbox_id;
	UPDATE users SET used_bytes = used_bytes - OLD.size
	WHERE id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;
PRAGMA user_version = 4;`

// downgradeTo4 turns a database of the current schema into one of schema 4.
func downgradeTo4(t testing.TB, db *sql.DB) {
	t.Helper()
	downgradeTo5(t, db)
	if _, err := db.Exec(schema5to4); err != nil {
		t.Fatalf("back to schema 4: %v", err)
	}
}

// schema4DB writes a database of schema 4 in dir, as pombo wrote it before
// schema 5, with the embedded migrations 1 to 4 and the statements of that
// pombo: two users, three messages of which two share a blob of three
// chunks, and the newest message expunged (the sequence of message ids is
// past every id left). It returns the raw messages by message id.
func schema4DB(t *testing.T, dir string) map[int64][]byte {
	t.Helper()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "pombo.db")+"?_foreign_keys=1&_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, m := range ms[:4] {
		if _, err := db.Exec(m.sql); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	big := testMessage(1, 2*ChunkSize+1000) // three chunks, flat
	small := testMessage(2, 3000)
	gone := testMessage(3, 100)
	exec := func(q string, args ...any) int64 {
		t.Helper()
		res, err := db.Exec(q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		id, _ := res.LastInsertId()
		return id
	}
	exec("INSERT INTO domains (name, created) VALUES ('example.test', 0)")
	users := []int64{
		exec("INSERT INTO users (address, domain_id, password_hash, created) VALUES ('alice@example.test', 1, 'x', 0)"),
		exec("INSERT INTO users (address, domain_id, password_hash, created) VALUES ('bob@example.test', 1, 'x', 0)"),
	}
	var boxes []int64
	for _, u := range users {
		boxes = append(boxes, exec("INSERT INTO mailboxes (user_id, name, uidvalidity) VALUES (?, 'INBOX', 1)", u))
	}
	blob := func(raw []byte) int64 {
		id := exec("INSERT INTO blobs (size, header_size, created) VALUES (?, 0, 0)", len(raw))
		exec("INSERT INTO blob_search (blob_id, headers, text) VALUES (?, '', '')", id)
		for seq, off := 0, 0; off < len(raw) || seq == 0; seq, off = seq+1, off+ChunkSize {
			exec("INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)", id, seq, raw[off:min(off+ChunkSize, len(raw))])
		}
		return id
	}
	out := map[int64][]byte{}
	deliver := func(box, blobID int64, prefix string, raw []byte) int64 {
		var uid, modseq int64
		if err := db.QueryRow("UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING uidnext - 1, highestmodseq", box).Scan(&uid, &modseq); err != nil {
			t.Fatal(err)
		}
		id := exec(`INSERT INTO messages (mailbox_id, uid, modseq, blob_id, prefix, internal_date, size) VALUES (?, ?, ?, ?, ?, 0, ?)`,
			box, uid, modseq, blobID, []byte(prefix), len(prefix)+len(raw))
		out[id] = append([]byte(prefix), raw...)
		return id
	}
	bigID := blob(big)
	deliver(boxes[0], bigID, "Delivered-To: alice@example.test\r\n", big)
	deliver(boxes[1], bigID, "Delivered-To: bob@example.test\r\n", big)
	deliver(boxes[0], blob(small), "", small)
	last := deliver(boxes[1], blob(gone), "", gone)
	exec("DELETE FROM messages WHERE id = ?", last)
	delete(out, last)
	exec("PRAGMA user_version = 4")
	return out
}

// TestMigrationTo5 opens a database of schema 4: every message reads as
// before, usage and counters are kept, message ids are not reused, and a
// blob's chunks go with its last message.
func TestMigrationTo5(t *testing.T) {
	dir := t.TempDir()
	want := schema4DB(t, dir)
	old, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "pombo.db"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]int64{}
	rows, err := old.Query("SELECT address, used_bytes FROM users")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		var n int64
		rows.Scan(&a, &n)
		used[a] = n
	}
	rows.Close()
	var seq int64
	old.QueryRow("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").Scan(&seq)
	old.Close()
	if len(used) != 2 || used["alice@example.test"] == 0 || seq != 4 {
		t.Fatalf("schema 4 database: usage %v, sequence %d", used, seq)
	}

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var version int
	s.rdb.QueryRow("PRAGMA user_version").Scan(&version)
	if version != SchemaVersion() || version < 5 {
		t.Fatalf("schema version %d, want %d", version, SchemaVersion())
	}
	for _, q := range []string{"PRAGMA integrity_check", "PRAGMA foreign_key_check"} {
		var res sql.NullString
		if err := s.rdb.QueryRow(q).Scan(&res); err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		if res.Valid && res.String != "ok" {
			t.Fatalf("%s: %s", q, res.String)
		}
	}
	for id, raw := range want {
		if got := readAll(t, s, id); !bytes.Equal(got, raw) {
			t.Errorf("message %d: %d octets, want %d", id, len(got), len(raw))
		}
		r, err := s.OpenMessageLoaded(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got := new(bytes.Buffer)
		got.ReadFrom(r)
		if !bytes.Equal(got.Bytes(), raw) {
			t.Errorf("message %d loaded: %d octets, want %d", id, got.Len(), len(raw))
		}
	}
	for addr, n := range used {
		u, err := s.UserByAddress(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		if u.UsedBytes != n {
			t.Errorf("%s uses %d octets after the migration, %d before", addr, u.UsedBytes, n)
		}
	}

	// The expunged message's id (4) is not given again.
	alice, _ := s.UserByAddress(ctx, "alice@example.test")
	ds, err := s.Deliver(ctx, bytes.NewReader(testMessage(4, 500)), []Recipient{{UserID: alice.ID}}, DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].MessageID <= seq {
		t.Errorf("new message has id %d; ids up to %d were given before", ds[0].MessageID, seq)
	}
	if u, _ := s.UserByAddress(ctx, "alice@example.test"); u.UsedBytes <= used["alice@example.test"] {
		t.Errorf("usage %d after a delivery, %d before", u.UsedBytes, used["alice@example.test"])
	}

	// The shared blob loses its chunks with its second message only.
	chunks := func() (n int) {
		s.rdb.QueryRow("SELECT count(*) FROM blob_chunks").Scan(&n)
		return n
	}
	before := chunks()
	boxes, err := s.Mailboxes(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	var inbox int64
	for _, b := range boxes {
		if b.Name == "INBOX" {
			inbox = b.ID
		}
	}
	if _, err := s.Remove(ctx, inbox, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if n := chunks(); n != before {
		t.Fatalf("%d chunks after removing one of two copies, %d before", n, before)
	}
	bob, _ := s.UserByAddress(ctx, "bob@example.test")
	bobBoxes, _ := s.Mailboxes(ctx, bob.ID)
	if _, err := s.Remove(ctx, bobBoxes[0].ID, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if n := chunks(); n != before-3 {
		t.Fatalf("%d chunks after removing the last copy of a blob of 3, %d before", n, before)
	}
	if u, _ := s.UserByAddress(ctx, "bob@example.test"); u.UsedBytes != 0 {
		t.Errorf("bob uses %d octets with an empty mailbox", u.UsedBytes)
	}
	if n, _, _ := s.BlobCount(ctx); n != 2 {
		t.Errorf("%d blobs left, want 2", n)
	}
}
