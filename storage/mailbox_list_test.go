package storage

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestMailboxesOrder: Mailboxes lists INBOX first and then by octets (the
// BINARY collation), here checked against a sort in Go. The names mix
// cases, a child of INBOX, names that start like INBOX, non-ASCII, and '-'
// and '.' that sort before the delimiter.
func TestMailboxesOrder(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	u := addUser(t, s, "alice@example.test")
	other := addUser(t, s, "bob@example.test")
	names := []string{"inbox/Sub", "Inboxes", "INBOXES", "a", "B", "b/c", "b-c", "b.c", "Ärger", "zz", "Z", "INBOX/Sub/x", "~"}
	for _, n := range names {
		if err := s.CreateMailbox(ctx, u.ID, n, ""); err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
	}
	if err := s.CreateMailbox(ctx, other.ID, "Bob's", ""); err != nil {
		t.Fatal(err)
	}
	got, err := s.Mailboxes(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range DefaultMailboxes {
		if m.Name != "INBOX" {
			want = append(want, m.Name)
		}
	}
	// inbox/Sub is stored as INBOX/Sub; B, b and Z keep their case.
	want = append(want, "INBOX/Sub", "Inboxes", "INBOXES", "a", "B", "b", "b/c", "b-c", "b.c", "Ärger", "zz", "Z", "INBOX/Sub/x", "~")
	slices.Sort(want)
	want = append([]string{"INBOX"}, want...)
	var gotNames []string
	for _, m := range got {
		gotNames = append(gotNames, m.Name)
		if m.UserID != u.ID {
			t.Errorf("%s belongs to user %d", m.Name, m.UserID)
		}
	}
	if !slices.Equal(gotNames, want) {
		t.Errorf("order:\n got %q\nwant %q", gotNames, want)
	}
	if gotNames[0] != "INBOX" {
		t.Errorf("INBOX is not first: %q", gotNames)
	}
	// Every field of a row as MailboxByName reads it.
	for _, m := range got {
		one, err := s.MailboxByName(ctx, u.ID, m.Name)
		if err != nil || *one != m {
			t.Errorf("%s: Mailboxes %+v, MailboxByName %+v %v", m.Name, m, one, err)
		}
	}
}

// TestMailboxUIDNextRange: UIDNEXT 2^32-1 reads back exactly, and a row
// past the range of a UID (the last UID taken) is an error, not a UIDNEXT
// that wrapped to 0.
func TestMailboxUIDNextRange(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	u := addUser(t, s, "alice@example.test")
	set := func(v int64) {
		t.Helper()
		if _, err := s.wdb.Exec("UPDATE mailboxes SET uidnext = ? WHERE user_id = ? AND name = 'Sent'", v, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	set(1<<32 - 1)
	m, err := s.MailboxByName(ctx, u.ID, "Sent")
	if err != nil || m.UIDNext != 1<<32-1 {
		t.Fatalf("uidnext 2^32-1: %+v %v", m, err)
	}
	set(1 << 32)
	if m, err := s.MailboxByName(ctx, u.ID, "Sent"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("uidnext 2^32: %+v %v", m, err)
	}
	if ms, err := s.Mailboxes(ctx, u.ID); err == nil {
		t.Errorf("Mailboxes with uidnext 2^32: %+v", ms)
	}
}
