package storage

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"
)

// flagSearches are the flag criteria clients send most, each with the
// messages it must match given the flags of every UID.
var flagSearches = []struct {
	name string
	c    SearchCriteria
	want func(f Flags) bool
}{
	{"UNSEEN", SearchCriteria{NotFlags: FlagSeen}, func(f Flags) bool { return f&FlagSeen == 0 }},
	{"SEEN", SearchCriteria{Flags: FlagSeen}, func(f Flags) bool { return f&FlagSeen != 0 }},
	{"NOT SEEN", SearchCriteria{Not: []SearchCriteria{{Flags: FlagSeen}}}, func(f Flags) bool { return f&FlagSeen == 0 }},
	{"UNSEEN UNDELETED", SearchCriteria{NotFlags: FlagSeen | FlagDeleted}, func(f Flags) bool { return f&(FlagSeen|FlagDeleted) == 0 }},
	{"NOT (SEEN FLAGGED)", SearchCriteria{Not: []SearchCriteria{{Flags: FlagSeen | FlagFlagged}}},
		func(f Flags) bool { return f&(FlagSeen|FlagFlagged) != FlagSeen|FlagFlagged }},
	{"UNSEEN OR FLAGGED", SearchCriteria{Or: [][2]SearchCriteria{{{NotFlags: FlagSeen}, {Flags: FlagFlagged}}}},
		func(f Flags) bool { return f&FlagSeen == 0 || f&FlagFlagged != 0 }},
	{"NOT UNSEEN", SearchCriteria{Not: []SearchCriteria{{NotFlags: FlagSeen}}}, func(f Flags) bool { return f&FlagSeen != 0 }},
}

// checkFlagSearches compares every flag search with the flags stored.
func checkFlagSearches(t *testing.T, s *Store, mb int64) {
	t.Helper()
	rows, err := s.rdb.Query("SELECT uid, flags FROM messages WHERE mailbox_id = ? ORDER BY uid", mb)
	if err != nil {
		t.Fatal(err)
	}
	type uf struct {
		uid   uint32
		flags Flags
	}
	var all []uf
	for rows.Next() {
		var r uf
		if err := rows.Scan(&r.uid, &r.flags); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	rows.Close()
	for _, fs := range flagSearches {
		var want []uint32
		for _, r := range all {
			if fs.want(r.flags) {
				want = append(want, r.uid)
			}
		}
		got, err := s.Search(context.Background(), mb, &fs.c)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", fs.name, got, want)
		}
		if !fs.c.FlagsOnly() {
			t.Fatalf("%s: FlagsOnly = false", fs.name)
		}
		var mem []uint32
		for _, r := range all {
			if fs.c.MatchFlags(r.uid, r.flags, nil) {
				mem = append(mem, r.uid)
			}
		}
		if !slices.Equal(mem, want) {
			t.Errorf("%s in memory: got %v, want %v", fs.name, mem, want)
		}
	}
}

// UNSEEN, SEEN and their spellings follow every change of \Seen, by
// delivery, STORE and expunge, in SQL and in MatchFlags (which IMAP uses on
// its in-memory view) alike.
func TestSearchUnseenFollowsChanges(t *testing.T) {
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	mbx, err := s.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.MailboxByName(ctx, u.ID, "Archive")
	if err != nil {
		t.Fatal(err)
	}
	mb := mbx.ID
	for i := 0; i < 40; i++ {
		var f Flags
		if i%3 == 0 {
			f = FlagSeen
		}
		if i%5 == 0 {
			f |= FlagDeleted
		}
		if i%7 == 0 {
			f |= FlagFlagged
		}
		if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(i, 300)), []Recipient{{UserID: u.ID}}, DeliverOptions{Flags: f}); err != nil {
			t.Fatal(err)
		}
		// Unseen mail in another mailbox must not show up.
		if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(i, 300)), []Recipient{{UserID: u.ID, Mailbox: "Archive"}}, DeliverOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	checkFlagSearches(t, s, mb)

	steps := []struct {
		name string
		do   func() error
	}{
		{"seen added", func() error {
			_, err := s.SetFlags(ctx, mb, []uint32{2, 3, 4, 40}, FlagsAdd, FlagSeen, nil)
			return err
		}},
		{"seen removed", func() error { _, err := s.SetFlags(ctx, mb, []uint32{1, 4, 7}, FlagsRemove, FlagSeen, nil); return err }},
		{"flags replaced", func() error {
			_, err := s.SetFlags(ctx, mb, []uint32{10, 11, 12}, FlagsReplace, FlagFlagged, nil)
			return err
		}},
		{"other flag only", func() error { _, err := s.SetFlags(ctx, mb, []uint32{5, 6}, FlagsAdd, FlagAnswered, nil); return err }},
		{"expunge", func() error {
			_, err := s.Remove(ctx, mb, []uint32{1, 2, 5, 20, 39})
			return err
		}},
		{"expunge deleted", func() error { _, err := s.Expunge(ctx, mb, nil); return err }},
		{"delivery", func() error {
			_, err := s.Deliver(ctx, bytes.NewReader(testMessage(99, 300)), []Recipient{{UserID: u.ID}}, DeliverOptions{})
			return err
		}},
		{"all seen", func() error {
			_, err := s.SetFlags(ctx, mb, []uint32{1, 100}, FlagsAdd, FlagSeen, nil)
			if err != nil {
				return err
			}
			all, err := s.Search(ctx, mb, &SearchCriteria{})
			if err != nil {
				return err
			}
			_, err = s.SetFlags(ctx, mb, all, FlagsAdd, FlagSeen, nil)
			return err
		}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		checkFlagSearches(t, s, mb)
		if t.Failed() {
			t.Fatalf("after %s", st.name)
		}
	}
	if got, err := s.Search(ctx, mb, &SearchCriteria{NotFlags: FlagSeen}); err != nil || len(got) != 0 {
		t.Fatalf("UNSEEN with every message seen: %v, %v", got, err)
	}
	if got, err := s.Search(ctx, other.ID, &SearchCriteria{NotFlags: FlagSeen}); err != nil || len(got) != 40 {
		t.Fatalf("UNSEEN in Archive: %d messages, %v; want 40", len(got), err)
	}
}

// FlagsOnly is false as soon as any criterion, however deep, needs more
// than UIDs, flags and keywords.
func TestFlagsOnlyRefusesOtherCriteria(t *testing.T) {
	day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for _, c := range []SearchCriteria{
		{Since: day}, {Before: day}, {SentSince: day}, {SentBefore: day},
		{Larger: 10}, {Smaller: 10},
		{Header: []HeaderMatch{{Name: "Subject"}}}, {Body: []string{"x"}}, {Text: []string{"x"}},
		{Not: []SearchCriteria{{Larger: 10}}},
		{Or: [][2]SearchCriteria{{{NotFlags: FlagSeen}, {Body: []string{"x"}}}}},
	} {
		if c.FlagsOnly() {
			t.Errorf("%+v: FlagsOnly = true", c)
		}
	}
	if c := (SearchCriteria{UIDSets: [][]UIDRange{{{Start: 1, Stop: 5}}}, Keywords: []string{"$Junk"}}); !c.FlagsOnly() {
		t.Errorf("%+v: FlagsOnly = false", c)
	}
}
