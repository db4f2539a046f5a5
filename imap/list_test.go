package imap_test

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// listBox starts a server whose user has the default mailboxes and names
// that sort or match awkwardly: a parent and its child with a sibling in
// between ("A", "A-b", "A/c": '-' sorts before '/'), a child of INBOX, a
// name that starts like INBOX, lower case after upper case, a non-ASCII
// name; "A" and "Zed" are unsubscribed.
func listBox(t *testing.T) (*env, *raw) {
	t.Helper()
	e := start(t, nil)
	ctx := context.Background()
	for _, name := range []string{"A/c", "A-b", "inbox/Sub", "Inboxes", "Zed", "a", "Café"} {
		if err := e.srv.Store.CreateMailbox(ctx, e.userID, name, ""); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	for _, name := range []string{"A", "Zed"} {
		if err := e.srv.Store.SetSubscribed(ctx, e.userID, name, false); err != nil {
			t.Fatal(err)
		}
	}
	r := dialRaw(t, e.addr, false)
	r.login()
	return e, r
}

// untagged sends a command, checks that it succeeds, and returns its
// untagged responses without their line ends.
func (r *raw) untagged(cmd string) []string {
	r.t.Helper()
	out := r.cmd("T", cmd)
	if last := out[len(out)-1]; !strings.HasPrefix(last, "T OK") {
		r.t.Fatalf("%s: %q", cmd, out)
	}
	lines := []string{}
	for _, l := range out[:len(out)-1] {
		lines = append(lines, strings.TrimRight(l, "\r\n"))
	}
	return lines
}

func TestListLines(t *testing.T) {
	e, r := listBox(t)
	all := []string{
		`* LIST (\HasChildren) "/" INBOX`,
		`* LIST (\HasChildren) "/" "A"`,
		`* LIST (\HasNoChildren) "/" "A-b"`,
		`* LIST (\HasNoChildren) "/" "A/c"`,
		`* LIST (\HasNoChildren \Archive) "/" "Archive"`,
		`* LIST (\HasNoChildren) "/" "Caf&AOk-"`,
		`* LIST (\HasNoChildren \Drafts) "/" "Drafts"`,
		`* LIST (\HasNoChildren) "/" "INBOX/Sub"`,
		`* LIST (\HasNoChildren) "/" "Inboxes"`,
		`* LIST (\HasNoChildren \Junk) "/" "Junk"`,
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* LIST (\HasNoChildren \Trash) "/" "Trash"`,
		`* LIST (\HasNoChildren) "/" "Zed"`,
		`* LIST (\HasNoChildren) "/" "a"`,
	}
	nameOf := func(l string) string { return strings.Trim(l[strings.LastIndexByte(l, ' ')+1:], `"`) }
	without := func(drop ...string) []string {
		var out []string
		for _, l := range all {
			if !slices.Contains(drop, nameOf(l)) {
				out = append(out, l)
			}
		}
		return out
	}
	only := func(keep ...string) []string {
		var out []string
		for _, l := range all {
			if slices.Contains(keep, nameOf(l)) {
				out = append(out, l)
			}
		}
		return out
	}
	cases := []struct {
		cmd  string
		want []string
	}{
		// INBOX first, then the others in octet order.
		{`LIST "" "*"`, all},
		{`LIST "" *`, all},
		// % stops at the delimiter.
		{`LIST "" "%"`, without("A/c", "INBOX/Sub")},
		{`LIST "" "A%"`, only("A", "A-b", "Archive")},
		{`LIST "" "A*"`, only("A", "A-b", "A/c", "Archive")},
		{`LIST "" "*/%"`, only("A/c", "INBOX/Sub")},
		{`LIST "A" "%"`, only("A/c")},
		{`LIST "A/" "*"`, only("A/c")},
		// A pattern that starts with the delimiter ignores the reference.
		{`LIST "A" "/Zed"`, only("Zed")},
		{`LIST "A" "%/c"`, nil},
		// INBOX in any case, and the INBOX part of its children's names.
		{`LIST "" "inbox"`, only("INBOX")},
		{`LIST "" "InBoX/*"`, only("INBOX/Sub")},
		{`LIST "iNbOx" "%"`, only("INBOX/Sub")},
		{`LIST "" "inbox*"`, only("INBOX", "INBOX/Sub")},
		// Other names are case-sensitive, even when they start like INBOX.
		{`LIST "" "Inboxes"`, only("Inboxes")},
		{`LIST "" "INBOXES"`, nil},
		{`LIST "" "a"`, only("a")},
		{`LIST "" "Caf&AOk-"`, only("Caf&AOk-")},
		{`LIST "" "Nope*"`, nil},
		// Several patterns (LIST-EXTENDED): each name once, in order.
		{`LIST "" ("Sent" "INBOX" "S*")`, only("INBOX", "Sent")},
		// SPECIAL-USE selection.
		{`LIST (SPECIAL-USE) "" "*"`, only("Archive", "Drafts", "Junk", "Sent", "Trash")},
		// The root and delimiter.
		{`LIST "" ""`, []string{`* LIST (\Noselect) "/" ""`}},
		// Subscriptions: only the subscribed, marked so.
		{`LIST (SUBSCRIBED) "" "%"`, []string{
			`* LIST (\HasChildren \Subscribed) "/" INBOX`,
			`* LIST (\HasNoChildren \Subscribed) "/" "A-b"`,
			`* LIST (\HasNoChildren \Subscribed \Archive) "/" "Archive"`,
			`* LIST (\HasNoChildren \Subscribed) "/" "Caf&AOk-"`,
			`* LIST (\HasNoChildren \Subscribed \Drafts) "/" "Drafts"`,
			`* LIST (\HasNoChildren \Subscribed) "/" "Inboxes"`,
			`* LIST (\HasNoChildren \Subscribed \Junk) "/" "Junk"`,
			`* LIST (\HasNoChildren \Subscribed \Sent) "/" "Sent"`,
			`* LIST (\HasNoChildren \Subscribed \Trash) "/" "Trash"`,
			`* LIST (\HasNoChildren \Subscribed) "/" "a"`,
		}},
		// An unsubscribed parent of a subscribed mailbox (RFC 5258 §3.5).
		{`LIST (SUBSCRIBED RECURSIVEMATCH) "" "A"`, []string{`* LIST (\HasChildren) "/" "A" (CHILDINFO ("SUBSCRIBED"))`}},
		{`LIST "" "*" RETURN (SUBSCRIBED)`, []string{
			`* LIST (\HasChildren \Subscribed) "/" INBOX`,
			`* LIST (\HasChildren) "/" "A"`,
			`* LIST (\HasNoChildren \Subscribed) "/" "A-b"`,
			`* LIST (\HasNoChildren \Subscribed) "/" "A/c"`,
			`* LIST (\HasNoChildren \Subscribed \Archive) "/" "Archive"`,
			`* LIST (\HasNoChildren \Subscribed) "/" "Caf&AOk-"`,
			`* LIST (\HasNoChildren \Subscribed \Drafts) "/" "Drafts"`,
			`* LIST (\HasNoChildren \Subscribed) "/" "INBOX/Sub"`,
			`* LIST (\HasNoChildren \Subscribed) "/" "Inboxes"`,
			`* LIST (\HasNoChildren \Subscribed \Junk) "/" "Junk"`,
			`* LIST (\HasNoChildren \Subscribed \Sent) "/" "Sent"`,
			`* LIST (\HasNoChildren \Subscribed \Trash) "/" "Trash"`,
			`* LIST (\HasNoChildren) "/" "Zed"`,
			`* LIST (\HasNoChildren \Subscribed) "/" "a"`,
		}},
		{`LSUB "" "A*"`, []string{
			`* LSUB (\HasNoChildren \Subscribed) "/" "A-b"`,
			`* LSUB (\HasNoChildren \Subscribed) "/" "A/c"`,
			`* LSUB (\HasNoChildren \Subscribed \Archive) "/" "Archive"`,
		}},
	}
	for _, c := range cases {
		if got := r.untagged(c.cmd); !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%s:\n got %q\nwant %q", c.cmd, got, c.want)
		}
	}

	// LIST-STATUS: each mailbox's STATUS follows its LIST line.
	e.deliver(t, "INBOX", simpleMsg("one", "hello"))
	e.deliver(t, "Sent", simpleMsg("two", "hello"))
	want := []string{
		`* LIST (\HasChildren) "/" INBOX`,
		`* STATUS INBOX (MESSAGES 1 UNSEEN 1)`,
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* STATUS "Sent" (MESSAGES 1 UNSEEN 1)`,
		`* LIST (\HasNoChildren \Trash) "/" "Trash"`,
		`* STATUS "Trash" (MESSAGES 0 UNSEEN 0)`,
	}
	if got := r.untagged(`LIST "" ("INBOX" "Sent" "Trash") RETURN (STATUS (MESSAGES UNSEEN))`); !slices.Equal(got, want) {
		t.Errorf("LIST-STATUS:\n got %q\nwant %q", got, want)
	}
	// STATUS itself, and the same for INBOX in another case.
	for _, name := range []string{"INBOX", "inbox"} {
		want := []string{`* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UNSEEN 1 RECENT 0)`}
		if got := r.untagged(`STATUS ` + name + ` (MESSAGES UIDNEXT UNSEEN RECENT)`); !slices.Equal(got, want) {
			t.Errorf("STATUS %s:\n got %q\nwant %q", name, got, want)
		}
	}
	if out := r.cmd("T", `STATUS Nope (MESSAGES)`); !strings.HasPrefix(out[len(out)-1], "T NO") {
		t.Errorf("STATUS of a missing mailbox: %q", out)
	}
}

// TestListBacktrackingPattern: a LIST pattern that makes a backtracking
// matcher try every way of splitting a long name (minutes of CPU with
// imapserver.MatchList) is answered, and the session goes on.
func TestListBacktrackingPattern(t *testing.T) {
	e, r := listBox(t)
	name := strings.Repeat("a", 60)
	if err := e.srv.Store.CreateMailbox(context.Background(), e.userID, name, ""); err != nil {
		t.Fatal(err)
	}
	if got := r.untagged(`LIST "" "` + strings.Repeat("*a", 25) + `b"`); len(got) != 0 {
		t.Errorf("matched: %q", got)
	}
	want := []string{`* LIST (\HasNoChildren) "/" "` + name + `"`}
	if got := r.untagged(`LIST "" "` + strings.Repeat("%a", 25) + `*"`); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := r.untagged("NOOP"); len(got) != 0 {
		t.Errorf("NOOP: %q", got)
	}
}
