package storage

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"
)

var viewSeed = flag.Uint64("viewcache.seed", 0, "seed of TestCachedViewEqualsView (0: from the clock)")

// checkCachedView fails unless CachedView and View agree on mailbox id.
func checkCachedView(t *testing.T, s *Store, id int64, step string) {
	t.Helper()
	ctx := context.Background()
	want, werr := s.View(ctx, id)
	got, gerr := s.CachedView(ctx, id)
	if werr != nil || gerr != nil {
		if !errors.Is(werr, ErrNotFound) || !errors.Is(gerr, ErrNotFound) {
			t.Fatalf("%s: mailbox %d: View: %v, CachedView: %v", step, id, werr, gerr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: mailbox %d: CachedView differs from View\n got %s\nwant %s", step, id, describeView(got), describeView(want))
	}
}

// checkNoRepairs fails if the cache had to read a view again because the
// changes it read did not bring it to the mailbox's state: it would still
// be right, but at the cost of a full read, and it means applying them is
// wrong.
func checkNoRepairs(t *testing.T, s *Store, step string) {
	t.Helper()
	if n := s.views.repairs.Load(); n != 0 {
		t.Fatalf("%s: %d views read again, the changes did not fit", step, n)
	}
}

func describeView(v *MailboxView) string {
	return fmt.Sprintf("%+v UIDs=%v Flags=%v Keywords=%v FirstUnseen=%d", v.Mailbox, v.UIDs, v.Flags, v.Keywords, v.FirstUnseenUID)
}

var testKeywords = []string{"$Forwarded", "$NotJunk", "Work", "$Label1"}

func randomFlags(r *rand.Rand) (Flags, []string) {
	f := Flags(r.IntN(32))
	var kws []string
	for _, k := range testKeywords {
		if r.IntN(4) == 0 {
			kws = append(kws, k)
		}
	}
	return f, kws
}

// randomUIDs picks UIDs of the mailbox, some of them already gone.
func randomUIDs(t *testing.T, s *Store, r *rand.Rand, id int64) []uint32 {
	t.Helper()
	uids, err := s.UIDs(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for _, u := range uids {
		if r.IntN(3) == 0 {
			out = append(out, u)
		}
	}
	if r.IntN(4) == 0 {
		out = append(out, 1, 1<<31) // never there, or expunged
	}
	return out
}

// TestCachedViewEqualsView runs random changes on two mailboxes (and
// deletes, recreates and renames them) and compares the cached view with a
// fresh one after each, so that the cache sees deltas of every size.
func TestCachedViewEqualsView(t *testing.T) {
	seed := *viewSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -viewcache.seed=%d)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 0))
	s, _ := openTest(t)
	s.views.snapMin = 1 // every view read whole is saved
	ctx := context.Background()
	u := addUser(t, s, "alice@example.test")
	if err := s.CreateMailbox(ctx, u.ID, "Other", ""); err != nil {
		t.Fatal(err)
	}
	names := []string{"INBOX", "Other"}
	idOf := func(name string) int64 {
		m, err := s.MailboxByName(ctx, u.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	var seen []int64 // every id a mailbox had, deleted ones too
	seenID := func(id int64) {
		for _, x := range seen {
			if x == id {
				return
			}
		}
		seen = append(seen, id)
	}
	reused, forgot := 0, 0
	for step := 0; step < 400; step++ {
		if r.IntN(20) == 0 {
			// As after a restart: the next reads start from the saved views.
			forgetViews(s)
			forgot++
		}
		a := idOf(names[r.IntN(2)])
		b := idOf(names[r.IntN(2)])
		var what string
		switch k := r.IntN(100); {
		case k < 30:
			n := 1 + r.IntN(5)
			what = fmt.Sprintf("deliver %d to %d", n, a)
			for i := 0; i < n; i++ {
				f, kws := randomFlags(r)
				if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(step, 200)), []Recipient{{MailboxID: a}},
					DeliverOptions{Flags: f, Keywords: kws}); err != nil {
					t.Fatal(err)
				}
			}
		case k < 55:
			f, kws := randomFlags(r)
			op := FlagOp(r.IntN(3))
			what = fmt.Sprintf("flags op %d %v %v on %d", op, f, kws, a)
			if _, err := s.SetFlags(ctx, a, randomUIDs(t, s, r, a), op, f, kws); err != nil {
				t.Fatal(err)
			}
		case k < 65:
			what = fmt.Sprintf("expunge %d", a)
			uids := randomUIDs(t, s, r, a)
			if r.IntN(2) == 0 {
				uids = nil // every \Deleted one
			}
			if _, err := s.Expunge(ctx, a, uids); err != nil {
				t.Fatal(err)
			}
		case k < 70:
			what = fmt.Sprintf("remove from %d", a)
			if _, err := s.Remove(ctx, a, randomUIDs(t, s, r, a)); err != nil {
				t.Fatal(err)
			}
		case k < 80:
			what = fmt.Sprintf("copy %d to %d", a, b)
			if _, _, err := s.Copy(ctx, a, randomUIDs(t, s, r, a), b); err != nil {
				t.Fatal(err)
			}
		case k < 90:
			what = fmt.Sprintf("move %d to %d", a, b)
			if _, _, err := s.Move(ctx, a, randomUIDs(t, s, r, a), b); err != nil {
				t.Fatal(err)
			}
		case k < 96:
			// The newest mailbox: SQLite gives its id to the next one.
			old := idOf("Other")
			what = fmt.Sprintf("delete and recreate Other (%d)", old)
			if err := s.DeleteMailbox(ctx, u.ID, "Other"); err != nil {
				t.Fatal(err)
			}
			checkCachedView(t, s, old, what+", deleted")
			if err := s.CreateMailbox(ctx, u.ID, "Other", ""); err != nil {
				t.Fatal(err)
			}
			if idOf("Other") == old {
				reused++
			}
		default:
			// INBOX's messages move to a new mailbox, INBOX stays, empty.
			what = fmt.Sprintf("rename INBOX (%d) to Other", idOf("INBOX"))
			if err := s.DeleteMailbox(ctx, u.ID, "Other"); err != nil {
				t.Fatal(err)
			}
			if err := s.RenameMailbox(ctx, u.ID, "INBOX", "Other"); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range names {
			seenID(idOf(n))
		}
		// Not every step: some deltas span several changes.
		for _, id := range seen {
			if r.IntN(3) != 0 {
				checkCachedView(t, s, id, fmt.Sprintf("step %d (%s)", step, what))
				checkNoRepairs(t, s, fmt.Sprintf("step %d (%s)", step, what))
			}
		}
	}
	for _, id := range seen {
		checkCachedView(t, s, id, "end")
	}
	t.Logf("%d mailbox ids, %d deletes gave the id to the next mailbox; cache forgotten %d times, %d views read from a saved one",
		len(seen), reused, forgot, s.views.fromSnapshot.Load())
	if forgot > 2 && s.views.fromSnapshot.Load() == 0 {
		t.Fatal("no view was read from a saved one")
	}
}

// TestCachedViewIsASnapshot checks that a view CachedView returned keeps
// the state it was read in while the cache is brought up to date with every
// kind of change, and that a caller appending to its view changes nothing
// of anybody else's.
func TestCachedViewIsASnapshot(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	inbox := inboxWith(t, s, 5, DeliverOptions{Keywords: []string{"Work"}})
	deliver := func(kws []string) {
		t.Helper()
		if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(9, 100)), []Recipient{{MailboxID: inbox.ID}}, DeliverOptions{Keywords: kws}); err != nil {
			t.Fatal(err)
		}
	}
	changes := []struct {
		name   string
		change func()
	}{
		{"new message", func() { deliver(nil) }},
		{"new message with keywords", func() { deliver([]string{"$NotJunk"}) }},
		{"flags", func() {
			if _, err := s.SetFlags(ctx, inbox.ID, []uint32{2}, FlagsAdd, FlagSeen, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"keywords", func() {
			if _, err := s.SetFlags(ctx, inbox.ID, []uint32{3}, FlagsRemove, 0, []string{"Work"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"expunge", func() {
			if _, err := s.SetFlags(ctx, inbox.ID, []uint32{1, 4}, FlagsAdd, FlagDeleted, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Expunge(ctx, inbox.ID, nil); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range changes {
		held, err := s.CachedView(ctx, inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.View(ctx, inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		c.change()
		checkCachedView(t, s, inbox.ID, c.name)
		if !reflect.DeepEqual(held, want) {
			t.Fatalf("%s: a view held across the change changed\n got %s\nwant %s", c.name, describeView(held), describeView(want))
		}
	}

	// Two callers hold views of different lengths from one array; the
	// shorter one appends.
	short, err := s.CachedView(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	deliver(nil)
	long, err := s.CachedView(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.View(ctx, inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	short.UIDs = append(short.UIDs, 1<<30)
	short.Flags = append(short.Flags, FlagDraft)
	if !reflect.DeepEqual(long, want) {
		t.Fatalf("another caller's append changed a view\n got %s\nwant %s", describeView(long), describeView(want))
	}
	checkCachedView(t, s, inbox.ID, "after a caller appended to its view")
}

// inboxWith delivers n test messages to the INBOX of a new user and
// returns that mailbox.
func inboxWith(t *testing.T, s *Store, n int, o DeliverOptions) *Mailbox {
	t.Helper()
	ctx := context.Background()
	u := addUser(t, s, "alice@example.test")
	inbox, err := s.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(i, 100)), []Recipient{{MailboxID: inbox.ID}}, o); err != nil {
			t.Fatal(err)
		}
	}
	return inbox
}

// TestCachedViewOddRows checks that the cache reads a mailbox again when
// its row does not continue the cached state: a HIGHESTMODSEQ gone back, a
// new UIDVALIDITY, or rows changed without a MODSEQ.
func TestCachedViewOddRows(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	inbox := inboxWith(t, s, 6, DeliverOptions{})
	exec := func(q string, args ...any) {
		t.Helper()
		if err := s.write(ctx, func(tx *Tx) error { _, err := tx.exec(q, args...); return err }); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		qs     []string
		repair bool // counted as a repair; a new UIDVALIDITY is a new mailbox
	}{
		{"modseq back", []string{"UPDATE mailboxes SET highestmodseq = 1 WHERE id = ?"}, true},
		{"uidvalidity", []string{"UPDATE mailboxes SET uidvalidity = uidvalidity + 1 WHERE id = ?"}, false},
		// What changes no MODSEQ shows in the counters kept by triggers.
		{"unseen without modseq", []string{"UPDATE messages SET flags = 0, modseq = 1 WHERE mailbox_id = ? AND uid = 2"}, true},
		{"deleted without tombstone", []string{"DELETE FROM messages WHERE mailbox_id = ? AND uid = 3"}, true},
		{"deleted, modseq up", []string{
			"DELETE FROM messages WHERE mailbox_id = ? AND uid = 4",
			"UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?",
		}, true},
	}
	for _, c := range cases {
		if _, err := s.SetFlags(ctx, inbox.ID, []uint32{1, 2, 3, 4, 5, 6}, FlagsAdd, FlagSeen, []string{"Work"}); err != nil {
			t.Fatal(err)
		}
		checkCachedView(t, s, inbox.ID, c.name+", before")
		for _, q := range c.qs {
			exec(q, inbox.ID)
		}
		before := s.views.repairs.Load()
		checkCachedView(t, s, inbox.ID, c.name)
		if got := s.views.repairs.Load() - before; got != map[bool]int64{true: 1}[c.repair] {
			t.Errorf("%s: %d repairs counted", c.name, got)
		}
	}
}

// TestCachedViewConcurrent selects three mailboxes from many goroutines
// while they change; each view must be one consistent state (the counters
// of its mailbox row agree with its flags).
func TestCachedViewConcurrent(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	u := addUser(t, s, "alice@example.test")
	var ids []int64
	for _, name := range []string{"A", "B", "C"} {
		if err := s.CreateMailbox(ctx, u.ID, name, ""); err != nil {
			t.Fatal(err)
		}
		m, err := s.MailboxByName(ctx, u.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	s.views.mu.Lock()
	s.views.max = 150 // some evictions too
	s.views.mu.Unlock()
	stop := make(chan struct{})
	var writers, readers sync.WaitGroup
	for w, id := range ids {
		writers.Add(1)
		go func() {
			defer writers.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; i < 60; i++ {
				if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(i, 100)), []Recipient{{MailboxID: id}}, DeliverOptions{}); err != nil {
					t.Error(err)
					return
				}
				uids := []uint32{uint32(1 + r.IntN(i+1)), uint32(1 + r.IntN(i+1))}
				if _, err := s.SetFlags(ctx, id, uids, FlagOp(r.IntN(3)), Flags(r.IntN(32)), nil); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 9 {
					if _, err := s.Expunge(ctx, id, nil); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	for g := 0; g < 6; g++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				v, err := s.CachedView(ctx, ids[(g+n)%len(ids)])
				if err != nil {
					t.Error(err)
					return
				}
				if msg := viewInconsistency(v); msg != "" {
					t.Errorf("mailbox %d at modseq %d: %s", v.ID, v.HighestModSeq, msg)
					return
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	for _, id := range ids {
		checkCachedView(t, s, id, "after the writers")
	}
}

// viewInconsistency says how a view contradicts its own mailbox row.
func viewInconsistency(v *MailboxView) string {
	if int64(len(v.UIDs)) != v.Messages || len(v.Flags) != len(v.UIDs) {
		return fmt.Sprintf("%d UIDs, %d flags, row says %d messages", len(v.UIDs), len(v.Flags), v.Messages)
	}
	var unseen int64
	var first uint32
	for i, f := range v.Flags {
		if i > 0 && v.UIDs[i] <= v.UIDs[i-1] {
			return fmt.Sprintf("UIDs not ascending: %v", v.UIDs)
		}
		if f&FlagSeen == 0 {
			unseen++
			if first == 0 {
				first = v.UIDs[i]
			}
		}
	}
	if unseen != v.Unseen || first != v.FirstUnseenUID {
		return fmt.Sprintf("%d unseen, first %d; row says %d, view says first %d", unseen, first, v.Unseen, v.FirstUnseenUID)
	}
	return ""
}

// TestViewCacheBounded fills more mailboxes than the cap holds: the least
// recently selected go first, one larger than the cap is not kept, and
// every view is still right.
func TestViewCacheBounded(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	u := addUser(t, s, "alice@example.test")
	const max = 25
	s.views.mu.Lock()
	s.views.max = max
	s.views.mu.Unlock()
	sizes := map[string]int{"A": 10, "B": 10, "C": 10, "Big": 30}
	ids := map[string]int64{}
	for _, name := range []string{"A", "B", "C", "Big"} {
		if err := s.CreateMailbox(ctx, u.ID, name, ""); err != nil {
			t.Fatal(err)
		}
		m, err := s.MailboxByName(ctx, u.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = m.ID
		for i := 0; i < sizes[name]; i++ {
			if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(i, 100)), []Recipient{{MailboxID: m.ID}}, DeliverOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cached := func() []string {
		s.views.mu.Lock()
		defer s.views.mu.Unlock()
		var out []string
		for e := s.views.lru.Front(); e != nil; e = e.Next() {
			for name, id := range ids {
				if id == e.Value.(*viewEntry).id {
					out = append(out, name)
				}
			}
		}
		return out
	}
	for _, step := range []struct {
		sel  string
		want []string // most recent first
	}{
		{"A", []string{"A"}},
		{"B", []string{"B", "A"}},
		{"A", []string{"A", "B"}},
		{"C", []string{"C", "A"}}, // B was the least recent
		{"Big", []string{"C", "A"}},
		{"B", []string{"B", "C"}},
	} {
		checkCachedView(t, s, ids[step.sel], "select "+step.sel)
		got := cached()
		if !reflect.DeepEqual(got, step.want) {
			t.Fatalf("after selecting %s the cache holds %v, want %v", step.sel, got, step.want)
		}
		mailboxes, messages := s.views.stats()
		if messages > max || mailboxes != len(got) {
			t.Fatalf("after selecting %s: %d mailboxes, %d messages cached (cap %d)", step.sel, mailboxes, messages, max)
		}
	}
	// A deleted mailbox leaves the cache.
	if err := s.DeleteMailbox(ctx, u.ID, "B"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CachedView(ctx, ids["B"]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted mailbox: %v", err)
	}
	if got := cached(); !reflect.DeepEqual(got, []string{"C"}) {
		t.Fatalf("after B was deleted the cache holds %v", got)
	}
	if _, messages := s.views.stats(); messages != 10 {
		t.Fatalf("%d messages counted after B was deleted, want 10", messages)
	}
}

// BenchmarkCachedView is the read of SELECT on 100,000 messages: View
// reads every row; cold-saved is CachedView's first read after a restart,
// from the saved view; then CachedView holding the mailbox reads what
// changed (nothing, or one flag).
func BenchmarkCachedView(b *testing.B) {
	s, mb := bigBox(b, 100000)
	ctx := context.Background()
	b.Run("View", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, err := s.View(ctx, mb); err != nil || len(v.UIDs) != 100000 {
				b.Fatal(err)
			}
		}
	})
	// The first read saves the view (view_snapshots).
	if _, err := s.CachedView(ctx, mb); err != nil {
		b.Fatal(err)
	}
	b.Run("cold-saved", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			forgetViews(s)
			if v, err := s.CachedView(ctx, mb); err != nil || len(v.UIDs) != 100000 {
				b.Fatal(err)
			}
		}
		if s.views.fromSnapshot.Load() == 0 {
			b.Fatal("not read from the saved view")
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, err := s.CachedView(ctx, mb); err != nil || len(v.UIDs) != 100000 {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-flag-changed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			b.StopTimer()
			op := FlagsAdd
			if i%2 == 1 {
				op = FlagsRemove
			}
			i++
			if _, err := s.SetFlags(ctx, mb, []uint32{50000}, op, FlagFlagged, nil); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if v, err := s.CachedView(ctx, mb); err != nil || len(v.UIDs) != 100000 {
				b.Fatal(err)
			}
		}
	})
}

// bigBox is a mailbox of n messages sharing one blob, each with its own
// trace prefix as deliveries have, written in one transaction.
func bigBox(b *testing.B, n int) (*Store, int64) {
	b.Helper()
	s, _ := openTest(b)
	ctx := context.Background()
	u := addUser(b, s, "alice@example.test")
	mbx, err := s.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	ds, err := s.Deliver(ctx, bytes.NewReader(testMessage(0, 4096)), []Recipient{{MailboxID: mbx.ID}}, DeliverOptions{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := s.MessageByUID(ctx, mbx.ID, ds[0].UID)
	if err != nil {
		b.Fatal(err)
	}
	err = s.write(ctx, func(tx *Tx) error {
		for i := 1; i < n; i++ {
			f := FlagSeen
			if i >= n-50 {
				f = 0
			}
			prefix := []byte(fmt.Sprintf("Delivered-To: alice@example.test\r\nReceived: from a.example.org by pombo id %d\r\n", i))
			if _, err := insertMessage(tx, mbx.ID, m.BlobID, prefix, f, "", time.Now().Unix(), m.Size+int64(len(prefix)), false); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return s, mbx.ID
}

// TestWarmView checks that WarmView puts a mailbox's view in the cache, that
// a later CachedView served from it agrees with View after more changes, and
// that a mailbox that does not exist leaves nothing behind.
func TestWarmView(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	inbox := inboxWith(t, s, 7, DeliverOptions{})
	if mb, msgs := s.ViewCacheStats(); mb != 0 || msgs != 0 {
		t.Fatalf("before WarmView the cache holds %d mailboxes, %d messages", mb, msgs)
	}
	if err := s.WarmView(ctx, inbox.ID); err != nil {
		t.Fatal(err)
	}
	if mb, msgs := s.ViewCacheStats(); mb != 1 || msgs != 7 {
		t.Fatalf("after WarmView the cache holds %d mailboxes, %d messages; want 1, 7", mb, msgs)
	}
	if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(7, 100)), []Recipient{{MailboxID: inbox.ID}}, DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.WarmView(ctx, inbox.ID); err != nil {
		t.Fatal(err)
	}
	// WarmView leaves a cached view as it is; CachedView brings it up to date.
	if _, msgs := s.ViewCacheStats(); msgs != 7 {
		t.Fatalf("a second WarmView changed the cached view: %d messages", msgs)
	}
	checkCachedView(t, s, inbox.ID, "after a delivery past the warm view")
	if _, msgs := s.ViewCacheStats(); msgs != 8 {
		t.Fatalf("CachedView left %d messages in the cache, want 8", msgs)
	}
	checkNoRepairs(t, s, "warm view")

	if err := s.WarmView(ctx, inbox.ID+1000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("WarmView of a missing mailbox: %v, want ErrNotFound", err)
	}
	if mb, _ := s.ViewCacheStats(); mb != 1 {
		t.Fatalf("a missing mailbox left an entry: %d mailboxes cached", mb)
	}
}
