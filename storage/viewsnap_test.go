package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"reflect"
	"slices"
	"testing"
)

// forgetViews empties the view cache of s, as a restart does.
func forgetViews(s *Store) {
	c := &s.views
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries, c.lru, c.total = nil, nil, 0
}

// TestViewSnapshotAcrossRestart reads a view whole (which saves it),
// changes the mailbox in every way, restarts, and checks that the view is
// then read from the saved one plus the changes, equal to a fresh read.
func TestViewSnapshotAcrossRestart(t *testing.T) {
	s, dir := openTest(t)
	s.views.snapMin = 1
	ctx := context.Background()
	inbox := inboxWith(t, s, 40, DeliverOptions{Keywords: []string{"Work"}})
	if _, err := s.SetFlags(ctx, inbox.ID, []uint32{3, 4, 5}, FlagsAdd, FlagSeen, []string{"$NotJunk"}); err != nil {
		t.Fatal(err)
	}
	checkCachedView(t, s, inbox.ID, "first read")
	var saved int64
	if err := s.rdb.QueryRow("SELECT modseq FROM view_snapshots WHERE mailbox_id = ?", inbox.ID).Scan(&saved); err != nil {
		t.Fatalf("no saved view after a read of 40 messages: %v", err)
	}
	if m, _ := s.MailboxByName(ctx, inbox.UserID, "INBOX"); m.HighestModSeq != saved {
		t.Fatalf("saved as of MODSEQ %d, the mailbox is at %d", saved, m.HighestModSeq)
	}

	if _, err := s.SetFlags(ctx, inbox.ID, []uint32{1, 2}, FlagsAdd, FlagSeen|FlagDeleted, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetFlags(ctx, inbox.ID, []uint32{10}, FlagsRemove, 0, []string{"Work"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, inbox.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(99, 100)), []Recipient{{MailboxID: inbox.ID}}, DeliverOptions{Keywords: []string{"New"}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkCachedView(t, s, inbox.ID, "after the restart")
	checkNoRepairs(t, s, "after the restart")
	if n := s.views.fromSnapshot.Load(); n != 1 {
		t.Fatalf("%d views read from a saved one, want 1", n)
	}
	v, _ := s.CachedView(ctx, inbox.ID)
	if len(v.UIDs) != 39 || v.UIDs[0] != 3 || !slices.Equal(v.Keywords[41], []string{"New"}) || v.Keywords[10] != nil {
		t.Fatalf("view after the restart: %s", describeView(v))
	}
}

// TestViewSnapshotRefused checks that a saved view that does not lead to
// the mailbox's state, or is not one pombo wrote, is passed over for a
// whole read, and that the view is right either way.
func TestViewSnapshotRefused(t *testing.T) {
	s, _ := openTest(t)
	s.views.snapMin = 1
	inbox := inboxWith(t, s, 20, DeliverOptions{})
	checkCachedView(t, s, inbox.ID, "first read")
	var good []byte
	if err := s.rdb.QueryRow("SELECT data FROM view_snapshots WHERE mailbox_id = ?", inbox.ID).Scan(&good); err != nil {
		t.Fatal(err)
	}
	huge := append([]byte{snapshotVersion}, binary.AppendUvarint(nil, 1<<40)...)
	cases := []struct {
		name string
		sql  string
		args []any
	}{
		{"empty data", "UPDATE view_snapshots SET data = x''", nil},
		{"other version", "UPDATE view_snapshots SET data = ?", []any{append([]byte{9}, good[1:]...)}},
		{"truncated", "UPDATE view_snapshots SET data = ?", []any{good[:len(good)-3]}},
		{"trailing octets", "UPDATE view_snapshots SET data = ?", []any{append(slices.Clone(good), 1, 0, 0)}},
		{"count beyond the data", "UPDATE view_snapshots SET data = ?", []any{huge}},
		{"UID not ascending", "UPDATE view_snapshots SET data = ?", []any{[]byte{snapshotVersion, 2, 5, 0, 0, 0, 0, 0}}},
		{"MODSEQ ahead of the mailbox", "UPDATE view_snapshots SET modseq = modseq + 1000", nil},
		{"another UIDVALIDITY", "UPDATE view_snapshots SET uid_validity = uid_validity + 1", nil},
		{"a message missing", "UPDATE view_snapshots SET data = ?", []any{snapshotWithout(t, good)}},
	}
	for _, c := range cases {
		if _, err := s.wdb.Exec("UPDATE view_snapshots SET data = ?, modseq = (SELECT highestmodseq FROM mailboxes WHERE id = ?), uid_validity = (SELECT uidvalidity FROM mailboxes WHERE id = ?)", good, inbox.ID, inbox.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.wdb.Exec(c.sql, c.args...); err != nil {
			t.Fatal(err)
		}
		before := s.views.fromSnapshot.Load()
		forgetViews(s)
		checkCachedView(t, s, inbox.ID, c.name)
		if s.views.fromSnapshot.Load() != before {
			t.Fatalf("%s: the saved view was used", c.name)
		}
	}
	// The good one is used, which shows the cases above were refused for
	// what they changed.
	if _, err := s.wdb.Exec("DELETE FROM view_snapshots"); err != nil {
		t.Fatal(err)
	}
	forgetViews(s)
	checkCachedView(t, s, inbox.ID, "saved again")
	forgetViews(s)
	checkCachedView(t, s, inbox.ID, "from the saved view")
	if s.views.fromSnapshot.Load() != 1 {
		t.Fatal("a good saved view was not used")
	}
}

// snapshotWithout re-encodes a saved view without its first message: it
// decodes, but does not fit the mailbox's counters.
func snapshotWithout(t *testing.T, data []byte) []byte {
	t.Helper()
	v, err := decodeView(data, &Mailbox{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	v.UIDs, v.Flags = v.UIDs[1:], v.Flags[1:]
	return encodeView(v)
}

// FuzzDecodeView feeds decodeView arbitrary data: it returns an error or a
// view with ascending UIDs that encodes back to a view equal to it.
func FuzzDecodeView(f *testing.F) {
	v := &cachedView{MailboxView: MailboxView{
		UIDs:     []uint32{1, 2, 7, 300, 1 << 31},
		Flags:    []Flags{0, FlagSeen, FlagSeen | FlagDeleted, 0, FlagDraft},
		Keywords: map[uint32][]string{2: {"$NotJunk"}, 300: {"a", "b"}},
	}}
	f.Add(encodeView(v))
	f.Add(encodeView(&cachedView{}))
	f.Add([]byte{snapshotVersion, 1, 1, 0, 3, 'a', ' ', 'b'})
	f.Add([]byte{snapshotVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeView(data, &Mailbox{}, 0)
		if err != nil {
			return
		}
		if len(v.Flags) != len(v.UIDs) || !slices.IsSorted(v.UIDs) {
			t.Fatalf("decoded %s", describeView(&v.MailboxView))
		}
		for i := 1; i < len(v.UIDs); i++ {
			if v.UIDs[i] == v.UIDs[i-1] {
				t.Fatalf("UID %d twice", v.UIDs[i])
			}
		}
		w, err := decodeView(encodeView(v), &Mailbox{}, 0)
		if err != nil {
			t.Fatalf("re-encoded view does not decode: %v", err)
		}
		if !reflect.DeepEqual(w.MailboxView, v.MailboxView) || w.unseen != v.unseen {
			t.Fatalf("round trip changed the view\n got %s\nwant %s", describeView(&w.MailboxView), describeView(&v.MailboxView))
		}
	})
}
