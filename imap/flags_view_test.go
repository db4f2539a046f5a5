package imap_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"pombo/storage"
)

// flagsByUID runs UID FETCH 1:* (UID FLAGS), plus the items of extra, and
// returns each message's flags, sorted, by UID. Unsolicited FETCH updates
// that come with it carry a UID too and, coming later, win.
func flagsByUID(t *testing.T, c *imapclient.Client, extra *imap.FetchOptions) map[uint32]string {
	t.Helper()
	o := &imap.FetchOptions{UID: true, Flags: true}
	if extra != nil {
		o.Envelope, o.InternalDate, o.RFC822Size = extra.Envelope, extra.InternalDate, extra.RFC822Size
	}
	msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, o).Collect()
	if err != nil {
		t.Fatalf("fetch flags: %v", err)
	}
	out := make(map[uint32]string)
	for _, m := range msgs {
		if m.UID == 0 {
			t.Fatalf("FETCH without UID: %+v", m)
		}
		out[uint32(m.UID)] = sortedFlags(m.Flags)
	}
	return out
}

func sortedFlags(fl []imap.Flag) string {
	s := make([]string, len(fl))
	for i, f := range fl {
		s[i] = strings.ToLower(string(f))
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

// truth is what a session selecting the mailbox now sees.
func truth(t *testing.T, e *env) map[uint32]string {
	t.Helper()
	c := e.client(t, nil)
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	got := flagsByUID(t, c, nil)
	c.Logout().Wait()
	return got
}

// selectSynced selects name on c and returns once c.Mailbox() shows it.
// go-imap's client (v2.0.0-beta.8) wakes Select's Wait before its reading
// goroutine records the selection, so right after Wait, Mailbox() can still
// be nil (or the previous mailbox). That goroutine handles responses in
// order, so once the tagged reply to a later NOOP has come, the selection is
// recorded.
func selectSynced(t *testing.T, c *imapclient.Client, name string) {
	t.Helper()
	selectBox(t, c, name)
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("noop after select %s: %v", name, err)
	}
}

// numMessages is how many messages c's selected mailbox has, as go-imap's
// client counts them from the EXISTS and EXPUNGE responses it has read.
func numMessages(t *testing.T, c *imapclient.Client, step int) uint32 {
	t.Helper()
	mb := c.Mailbox()
	if mb == nil {
		t.Fatalf("step %d: client has no mailbox selected (state %v)", step, c.State())
	}
	return mb.NumMessages
}

func store(t *testing.T, c *imapclient.Client, seq uint32, op imap.StoreFlagsOp, flags ...imap.Flag) {
	t.Helper()
	if err := c.Store(imap.SeqSetNum(seq), &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
		t.Fatalf("store %d: %v", seq, err)
	}
}

// A session answers FLAGS from its view of the mailbox; whatever another
// session (or storage directly) changed before must still show, without a
// NOOP in between, and its own changes too.
func TestFlagsFollowOtherSessions(t *testing.T) {
	e := start(t, nil)
	for i := 0; i < 5; i++ {
		e.deliver(t, "INBOX", simpleMsg(fmt.Sprintf("m%d", i), "x"))
	}
	a := e.client(t, nil)
	b := e.client(t, nil)
	selectBox(t, a, "INBOX")
	selectBox(t, b, "INBOX")
	check := func(step string, extra *imap.FetchOptions) {
		t.Helper()
		want := truth(t, e)
		got := flagsByUID(t, a, extra)
		for uid, w := range want {
			if g, ok := got[uid]; ok && g != w {
				t.Errorf("%s: A has UID %d flags %q, storage %q", step, uid, g, w)
			}
		}
	}
	check("start", nil)

	store(t, b, 2, imap.StoreFlagsAdd, imap.FlagFlagged, "$Work")
	check("B added flag and keyword", nil)
	store(t, b, 2, imap.StoreFlagsDel, "$work")
	store(t, b, 3, imap.StoreFlagsSet, imap.FlagSeen, imap.FlagAnswered)
	check("B removed keyword, replaced flags", nil)
	check("again, view synced", &imap.FetchOptions{Envelope: true})

	store(t, a, 4, imap.StoreFlagsAdd, imap.FlagDeleted, "Later")
	check("A's own store", nil)

	mb, err := e.srv.Store.MailboxByName(t.Context(), e.userID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Store.SetFlags(t.Context(), mb.ID, []uint32{1}, storage.FlagsAdd, storage.FlagDraft, []string{"direct"}); err != nil {
		t.Fatal(err)
	}
	check("storage SetFlags", &imap.FetchOptions{RFC822Size: true})

	// A new message: A sees it after NOOP, with the flags it has by then.
	e.deliver(t, "INBOX", simpleMsg("new", "y"))
	for _, c := range []*imapclient.Client{a, b} {
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
	}
	store(t, b, 6, imap.StoreFlagsAdd, imap.FlagSeen)
	check("new message flagged by B", &imap.FetchOptions{Envelope: true, InternalDate: true})
	if got := flagsByUID(t, a, nil); got[6] != `\seen` {
		t.Errorf("A: new message has %q", got[6])
	}

	// B expunges 4: A's numbering shifts after NOOP, and its flags stay
	// with the right messages.
	if _, err := b.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	check("expunged, not yet told", nil)
	if err := a.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := a.Fetch(imap.SeqSetNum(4, 5), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("fetch 4:5: %v %+v", err, msgs)
	}
	if msgs[0].UID != 5 || sortedFlags(msgs[0].Flags) != "" || msgs[1].UID != 6 || sortedFlags(msgs[1].Flags) != `\seen` {
		t.Errorf("after expunge: %+v %+v", msgs[0], msgs[1])
	}

	// BODY[] sets \Seen, and the next FETCH FLAGS shows it.
	if _, err := a.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect(); err != nil {
		t.Fatal(err)
	}
	if got := flagsByUID(t, a, nil); !strings.Contains(got[1], `\seen`) || !strings.Contains(got[1], "direct") {
		t.Errorf("after BODY[]: UID 1 has %q", got[1])
	}
	check("end", nil)
}

// Random changes by three writers against a session that only reads: its
// FETCH FLAGS agrees with storage at every step, for every message it has
// in common with a fresh session, and after NOOP it has the same messages.
func TestFlagsViewRandomChanges(t *testing.T) {
	e := start(t, nil)
	for i := 0; i < 12; i++ {
		e.deliver(t, "INBOX", simpleMsg(fmt.Sprintf("m%d", i), "x"))
	}
	a := e.client(t, nil)
	b := e.client(t, nil)
	selectSynced(t, a, "INBOX")
	selectSynced(t, b, "INBOX")
	mb, err := e.srv.Store.MailboxByName(t.Context(), e.userID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 2))
	flags := []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, "$Label1", "$Label2", "Junk"}
	pick := func() []imap.Flag {
		var out []imap.Flag
		for _, f := range flags {
			if rng.IntN(3) == 0 {
				out = append(out, f)
			}
		}
		return out
	}
	ops := []imap.StoreFlagsOp{imap.StoreFlagsAdd, imap.StoreFlagsDel, imap.StoreFlagsSet}
	for step := 0; step < 60; step++ {
		switch n := numMessages(t, b, step); rng.IntN(8) {
		case 0:
			e.deliver(t, "INBOX", simpleMsg(fmt.Sprintf("s%d", step), "y"))
		case 1:
			if _, err := b.Expunge().Collect(); err != nil {
				t.Fatal(err)
			}
		case 2:
			if n := numMessages(t, a, step); n > 0 {
				store(t, a, 1+rng.Uint32N(n), ops[rng.IntN(3)], pick()...)
			}
		case 3:
			uid := 1 + rng.Uint32N(20)
			kws := []string{"direct"}
			if rng.IntN(2) == 0 {
				kws = nil
			}
			if _, err := e.srv.Store.SetFlags(t.Context(), mb.ID, []uint32{uid}, storage.FlagsReplace, storage.Flags(rng.IntN(32)), kws); err != nil {
				t.Fatal(err)
			}
		default:
			if n > 0 {
				store(t, b, 1+rng.Uint32N(n), ops[rng.IntN(3)], pick()...)
			}
		}
		if err := b.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		want := truth(t, e)
		var extra *imap.FetchOptions
		if step%3 == 0 {
			extra = &imap.FetchOptions{Envelope: true}
		}
		got := flagsByUID(t, a, extra)
		for uid, w := range want {
			if g, ok := got[uid]; ok && g != w {
				t.Fatalf("step %d: A has UID %d flags %q, storage %q", step, uid, g, w)
			}
		}
		if rng.IntN(3) == 0 {
			if err := a.Noop().Wait(); err != nil {
				t.Fatal(err)
			}
			got = flagsByUID(t, a, nil)
			if len(got) != len(want) {
				t.Fatalf("step %d: after NOOP A has %d messages, storage %d", step, len(got), len(want))
			}
			for uid, w := range want {
				if got[uid] != w {
					t.Fatalf("step %d: after NOOP A has UID %d flags %q, storage %q", step, uid, got[uid], w)
				}
			}
		}
	}
}
