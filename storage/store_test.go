package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testHash stands for an argon2id hash: storage never sees passwords.
const testHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

func openTest(t testing.TB) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func addUser(t testing.TB, s *Store, addr string) *User {
	t.Helper()
	ctx := context.Background()
	_, domain, _ := strings.Cut(addr, "@")
	if err := s.AddDomain(ctx, domain); err != nil && !errors.Is(err, ErrExists) {
		t.Fatal(err)
	}
	u, err := s.AddUser(ctx, addr, testHash, 0)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testMessage(i int, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender %d <sender%d@example.org>\r\nTo: alice@example.test\r\nSubject: message %d\r\nMessage-ID: <m%d@example.org>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\n", i, i, i, i)
	line := "The quick brown fox jumps over the lazy dog, again and again.\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

func readAll(t testing.TB, s *Store, id int64) []byte {
	t.Helper()
	r, err := s.OpenMessage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewUserHasDefaultMailboxes(t *testing.T) {
	s, _ := openTest(t)
	u := addUser(t, s, "Alice@Example.TEST")
	if u.Address != "alice@example.test" {
		t.Fatalf("address not normalised: %q", u.Address)
	}
	mbs, err := s.Mailboxes(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mbs {
		got = append(got, m.Name+":"+m.SpecialUse)
	}
	want := `INBOX:,Archive:\Archive,Drafts:\Drafts,Junk:\Junk,Sent:\Sent,Trash:\Trash`
	if strings.Join(got, ",") != want {
		t.Fatalf("mailboxes = %s, want %s", strings.Join(got, ","), want)
	}
	seen := map[uint32]bool{}
	for _, m := range mbs {
		if seen[m.UIDValidity] {
			t.Fatalf("UIDVALIDITY %d used twice", m.UIDValidity)
		}
		seen[m.UIDValidity] = true
	}
}

func TestAccountErrors(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	if _, err := s.AddUser(ctx, "bob@nowhere.test", testHash, 0); !errors.Is(err, ErrUnknownDomain) {
		t.Fatalf("user in unknown domain: err = %v", err)
	}
	addUser(t, s, "alice@example.test")
	if _, err := s.AddUser(ctx, "ALICE@example.test", testHash, 0); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate user: err = %v", err)
	}
	for _, bad := range []string{"", "alice", "@example.test", "alice@", "a b@example.test", "alice@exa mple.test",
		"alice@@example.test", "alice@example..test", "<alice@example.test>", strings.Repeat("a", 65) + "@example.test"} {
		if _, err := s.AddUser(ctx, bad, testHash, 0); !errors.Is(err, ErrBadAddress) {
			t.Errorf("AddUser(%q): err = %v, want ErrBadAddress", bad, err)
		}
	}
	if err := s.AddDomain(ctx, "example.test"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate domain: err = %v", err)
	}
	if err := s.DeleteDomain(ctx, "example.test"); !errors.Is(err, ErrDomainNotEmpty) {
		t.Fatalf("delete domain with users: err = %v", err)
	}
	us, _ := s.Users(ctx)
	if len(us) != 1 {
		t.Fatalf("failed adds left users behind: %v", us)
	}
}

func TestSchemaTooNew(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite3", filepath.Join(dir, "pombo.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion()+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(dir)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer database: err = %v, want ErrSchemaTooNew", err)
	}
}

func TestDurabilitySettings(t *testing.T) {
	s, _ := openTest(t)
	var mode string
	var sync int
	if err := s.wdb.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.wdb.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 2 {
		t.Fatalf("journal_mode=%s synchronous=%d, want wal and 2 (FULL)", mode, sync)
	}
}

// 8 goroutines × 500 deliveries: every one durable, UIDs strictly
// increasing without gaps, counters exact.
func TestConcurrentDeliveries(t *testing.T) {
	s, dir := openTest(t)
	u := addUser(t, s, "alice@example.test")
	const workers, per = 8, 500
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	uidsBy := make([][]uint32, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				ds, err := s.Deliver(context.Background(), bytes.NewReader(testMessage(w*per+i, 600)), []Recipient{{UserID: u.ID}}, DeliverOptions{})
				if err != nil {
					errs <- err
					return
				}
				uidsBy[w] = append(uidsBy[w], ds[0].UID)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w, uids := range uidsBy {
		for i := 1; i < len(uids); i++ {
			if uids[i] <= uids[i-1] {
				t.Fatalf("worker %d saw UID %d after %d", w, uids[i], uids[i-1])
			}
		}
	}
	st := s.Stats()
	t.Logf("%d writes in %d commits", st.Writes, st.Commits)
	s.Close()

	// Reopen: what was acknowledged is on disk.
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	inbox, err := s2.MailboxByName(context.Background(), u.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	uids, err := s2.UIDs(context.Background(), inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(uids) != workers*per || inbox.Messages != workers*per || inbox.Unseen != workers*per {
		t.Fatalf("after reopen: %d uids, counters %d/%d, want %d", len(uids), inbox.Messages, inbox.Unseen, workers*per)
	}
	for i, uid := range uids {
		if uid != uint32(i+1) {
			t.Fatalf("uid[%d] = %d: UIDs must be 1..n", i, uid)
		}
	}
	if inbox.UIDNext != workers*per+1 {
		t.Fatalf("UIDNEXT = %d", inbox.UIDNext)
	}
}

func TestSharedBlobAndRefcount(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	a := addUser(t, s, "alice@example.test")
	b := addUser(t, s, "bob@example.test")
	c := addUser(t, s, "carol@example.test")
	raw := testMessage(1, 700<<10) // more than two chunks
	ds, err := s.Deliver(ctx, bytes.NewReader(raw), []Recipient{
		{UserID: a.ID, Prefix: []byte("Delivered-To: alice@example.test\r\n")},
		{UserID: b.ID, Prefix: []byte("Delivered-To: bob@example.test\r\n")},
		{UserID: c.ID},
	}, DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("%d deliveries", len(ds))
	}
	n, size, err := s.BlobCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || size != int64(len(raw)) {
		t.Fatalf("blobs = %d (%d bytes), want 1 of %d", n, size, len(raw))
	}
	var chunks int
	s.rdb.QueryRow("SELECT count(*) FROM blob_chunks").Scan(&chunks)
	// The header in a chunk of its own, then the body's chunks.
	body := len(raw) - bytes.Index(raw, []byte("\r\n\r\n")) - 4
	if want := 1 + (body+ChunkSize-1)/ChunkSize; chunks != want {
		t.Fatalf("chunks = %d, want %d", chunks, want)
	}
	gotA := readAll(t, s, ds[0].MessageID)
	if want := append([]byte("Delivered-To: alice@example.test\r\n"), raw...); !bytes.Equal(gotA, want) {
		t.Fatalf("alice's copy differs (%d bytes, want %d)", len(gotA), len(want))
	}
	if got := readAll(t, s, ds[2].MessageID); !bytes.Equal(got, raw) {
		t.Fatal("carol's copy differs")
	}
	ua, _ := s.UserByID(ctx, a.ID)
	if ua.UsedBytes != int64(len(raw))+int64(len("Delivered-To: alice@example.test\r\n")) {
		t.Fatalf("alice used %d bytes", ua.UsedBytes)
	}

	// Expunge from two: the blob stays; from the third: it goes.
	for i, d := range ds {
		if _, err := s.SetFlags(ctx, d.MailboxID, []uint32{d.UID}, FlagsAdd, FlagDeleted, nil); err != nil {
			t.Fatal(err)
		}
		gone, err := s.Expunge(ctx, d.MailboxID, nil)
		if err != nil || len(gone) != 1 || gone[0] != d.UID {
			t.Fatalf("expunge: %v %v", gone, err)
		}
		n, _, _ := s.BlobCount(ctx)
		if want := int64(0); i < 2 {
			want = 1
			if n != want {
				t.Fatalf("after %d expunges: %d blobs", i+1, n)
			}
		} else if n != want {
			t.Fatalf("after last expunge: %d blobs", n)
		}
	}
	s.rdb.QueryRow("SELECT count(*) FROM blob_chunks").Scan(&chunks)
	if chunks != 0 {
		t.Fatalf("%d chunks left after the last reference went", chunks)
	}
}

func TestDeleteUserFreesMail(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	a := addUser(t, s, "alice@example.test")
	for i := 0; i < 5; i++ {
		if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(i, 2000)), []Recipient{{UserID: a.ID}}, DeliverOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddAlias(ctx, "postmaster@example.test", []string{"alice@example.test"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "alice@example.test"); err != nil {
		t.Fatal(err)
	}
	n, _, _ := s.BlobCount(ctx)
	var mbs, msgs, aliases int
	s.rdb.QueryRow("SELECT count(*) FROM mailboxes").Scan(&mbs)
	s.rdb.QueryRow("SELECT count(*) FROM messages").Scan(&msgs)
	s.rdb.QueryRow("SELECT count(*) FROM aliases").Scan(&aliases)
	if n != 0 || mbs != 0 || msgs != 0 || aliases != 0 {
		t.Fatalf("after delete: %d blobs, %d mailboxes, %d messages, %d aliases", n, mbs, msgs, aliases)
	}
	if err := s.DeleteUser(ctx, "alice@example.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestResolve(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	a := addUser(t, s, "alice@example.test")
	b := addUser(t, s, "bob@example.test")
	if err := s.CreateMailbox(ctx, a.ID, "Lists", ""); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddAlias(ctx, "team@example.test", []string{"alice@example.test", "bob@example.test"}))
	must(s.AddAlias(ctx, "fwd@example.test", []string{"someone@elsewhere.test"}))
	must(s.AddAlias(ctx, "loop1@example.test", []string{"loop2@example.test"}))
	must(s.AddAlias(ctx, "loop2@example.test", []string{"loop1@example.test"}))

	check := func(addr string, want string) {
		t.Helper()
		ts, err := s.Resolve(ctx, addr)
		var got []string
		for _, tg := range ts {
			got = append(got, fmt.Sprintf("%d:%s:%s", tg.UserID, tg.Address, tg.Folder))
		}
		g := strings.Join(got, ",")
		if err != nil {
			g = "err:" + err.Error()
		}
		if g != want {
			t.Errorf("Resolve(%s) = %s, want %s", addr, g, want)
		}
	}
	check("ALICE@example.test", fmt.Sprintf("%d:alice@example.test:", a.ID))
	check("alice+lists@example.test", fmt.Sprintf("%d:alice@example.test:Lists", a.ID))
	check("alice+nosuch@example.test", fmt.Sprintf("%d:alice@example.test:", a.ID))
	check("team@example.test", fmt.Sprintf("%d:alice@example.test:,%d:bob@example.test:", a.ID, b.ID))
	check("fwd@example.test", "0:someone@elsewhere.test:")
	check("nobody@example.test", "err:nobody@example.test: not found")
	check("loop1@example.test", "err:loop1@example.test: not found")
	check("x@elsewhere.test", "err:domain is not local: elsewhere.test")
	must(s.AddAlias(ctx, "@example.test", []string{"bob@example.test"}))
	check("nobody@example.test", fmt.Sprintf("%d:bob@example.test:", b.ID))
	check("alice@example.test", fmt.Sprintf("%d:alice@example.test:", a.ID))

	addrs, err := s.AddressesOf(ctx, a.ID)
	must(err)
	if strings.Join(addrs, ",") != "alice@example.test,team@example.test" {
		t.Fatalf("AddressesOf = %v", addrs)
	}
	if err := s.AddAlias(ctx, "alice@example.test", []string{"bob@example.test"}); !errors.Is(err, ErrExists) {
		t.Fatalf("alias over a user: %v", err)
	}
	if err := s.AddAlias(ctx, "x@nowhere.test", []string{"bob@example.test"}); !errors.Is(err, ErrUnknownDomain) {
		t.Fatalf("alias in a foreign domain: %v", err)
	}
}

func TestFlagsChangesAndEvents(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	a := addUser(t, s, "alice@example.test")
	sub := s.Subscribe(a.ID)
	defer sub.Close()
	inbox, _ := s.MailboxByName(ctx, a.ID, "inbox")
	var ds []Delivery
	for i := 0; i < 3; i++ {
		d, err := s.Deliver(ctx, bytes.NewReader(testMessage(i, 500)), []Recipient{{UserID: a.ID}}, DeliverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d[0])
	}
	select {
	case <-sub.C:
	case <-time.After(time.Second):
		t.Fatal("no event after delivery")
	}
	evs, lost := sub.Drain()
	if lost || len(evs) != 3 || evs[2].Kind != EventNew || evs[2].UID != 3 {
		t.Fatalf("events = %+v lost=%v", evs, lost)
	}
	mark := ds[2].ModSeq
	ups, err := s.SetFlags(ctx, inbox.ID, []uint32{1, 2}, FlagsAdd, FlagSeen|FlagFlagged, []string{"$Label1"})
	if err != nil || len(ups) != 2 {
		t.Fatalf("SetFlags: %v %v", ups, err)
	}
	// A no-op change gets no new MODSEQ.
	ups2, _ := s.SetFlags(ctx, inbox.ID, []uint32{1}, FlagsAdd, FlagSeen, nil)
	if len(ups2) != 0 {
		t.Fatalf("no-op flag change reported: %+v", ups2)
	}
	mb, _ := s.MailboxByID(ctx, inbox.ID)
	if mb.Unseen != 1 || mb.Messages != 3 {
		t.Fatalf("counters: unseen %d messages %d", mb.Unseen, mb.Messages)
	}
	m, _ := s.MessageByUID(ctx, inbox.ID, 2)
	if m.Flags != FlagSeen|FlagFlagged || strings.Join(m.Keywords, " ") != "$Label1" {
		t.Fatalf("message 2: flags %v kw %v", m.Flags.Names(), m.Keywords)
	}
	if _, err := s.SetFlags(ctx, inbox.ID, []uint32{2}, FlagsRemove, FlagFlagged, []string{"$label1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, inbox.ID, []uint32{3}); err != nil {
		t.Fatal(err)
	}
	ch, err := s.ChangesSince(ctx, inbox.ID, mark)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Changed) != 2 || ch.Changed[0].UID != 1 || ch.Changed[1].UID != 2 ||
		ch.Changed[1].Flags != FlagSeen || len(ch.Changed[1].Keywords) != 0 ||
		len(ch.Expunged) != 1 || ch.Expunged[0] != 3 || ch.ModSeq <= mark {
		t.Fatalf("changes = %+v", ch)
	}
	// Copy and move keep the blob shared and report UID pairs.
	arch, _ := s.MailboxByName(ctx, a.ID, "Archive")
	uv, pairs, err := s.Move(ctx, inbox.ID, []uint32{2, 1}, arch.ID)
	if err != nil || uv != arch.UIDValidity || len(pairs) != 2 || pairs[0] != (UIDPair{1, 1}) || pairs[1] != (UIDPair{2, 2}) {
		t.Fatalf("move: %v %v %v", uv, pairs, err)
	}
	uids, _ := s.UIDs(ctx, inbox.ID)
	if len(uids) != 0 {
		t.Fatalf("INBOX after move: %v", uids)
	}
	moved, _ := s.MessageByUID(ctx, arch.ID, 1)
	if moved.Flags != FlagSeen|FlagFlagged {
		t.Fatalf("move lost flags: %v", moved.Flags.Names())
	}
	u, _ := s.UserByID(ctx, a.ID)
	if u.UsedBytes != moved.Size+func() int64 { m, _ := s.MessageByUID(ctx, arch.ID, 2); return m.Size }() {
		t.Fatalf("quota usage after move: %d", u.UsedBytes)
	}
}

func TestQuota(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	a := addUser(t, s, "alice@example.test")
	// Delivered while alice has no quota (which the writer then caches).
	if _, err := s.Deliver(ctx, bytes.NewReader(testMessage(1, 3000)), []Recipient{{UserID: a.ID}}, DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQuota(ctx, a.Address, 5000); err != nil {
		t.Fatal(err)
	}
	_, err := s.Deliver(ctx, bytes.NewReader(testMessage(2, 3000)), []Recipient{{UserID: a.ID}}, DeliverOptions{})
	if !errors.Is(err, ErrOverQuota) {
		t.Fatalf("over quota: err = %v", err)
	}
	n, _, _ := s.BlobCount(ctx)
	if n != 1 {
		t.Fatalf("a refused delivery left a blob: %d", n)
	}
	// The refused delivery took no UID.
	if err := s.SetQuota(ctx, a.Address, 0); err != nil {
		t.Fatal(err)
	}
	d, err := s.Deliver(ctx, bytes.NewReader(testMessage(3, 3000)), []Recipient{{UserID: a.ID}}, DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d[0].UID != 2 {
		t.Fatalf("UID after a refused delivery = %d, want 2", d[0].UID)
	}
}

func TestMailboxHierarchy(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	a := addUser(t, s, "alice@example.test")
	if err := s.CreateMailbox(ctx, a.ID, "Work/Projects/Ünïcode", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameMailbox(ctx, a.ID, "Work", "Job"); err != nil {
		t.Fatal(err)
	}
	mbs, _ := s.Mailboxes(ctx, a.ID)
	var names []string
	for _, m := range mbs {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); got != "INBOX,Archive,Drafts,Job,Job/Projects,Job/Projects/Ünïcode,Junk,Sent,Trash" {
		t.Fatalf("after rename: %s", got)
	}
	for _, bad := range []string{"", "a//b", "/a", "a/", "a\x00b", "a*b"} {
		if err := s.CreateMailbox(ctx, a.ID, bad, ""); !errors.Is(err, ErrMailboxName) {
			t.Errorf("CreateMailbox(%q): %v", bad, err)
		}
	}
	if err := s.DeleteMailbox(ctx, a.ID, "inbox"); !errors.Is(err, ErrInboxImmutable) {
		t.Fatalf("delete INBOX: %v", err)
	}
	if err := s.CreateMailbox(ctx, a.ID, "Job", ""); !errors.Is(err, ErrExists) {
		t.Fatalf("create existing: %v", err)
	}
}

func TestBlobReaderSeek(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	a := addUser(t, s, "alice@example.test")
	raw := testMessage(7, 3*ChunkSize+123)
	ds, err := s.Deliver(ctx, bytes.NewReader(raw), []Recipient{{UserID: a.ID}}, DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.OpenMessage(ctx, ds[0].MessageID)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, ChunkSize - 3, 2*ChunkSize + 1, int64(len(raw)) - 10} {
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, raw[off:off+10]) {
			t.Fatalf("at %d: %q, want %q", off, buf, raw[off:off+10])
		}
	}
}

// A failing write in a batch must not take the others down with it.
func TestGroupCommitIsolation(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	a := addUser(t, s, "alice@example.test")
	var wg sync.WaitGroup
	var okN, badN int
	var mu sync.Mutex
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, err = s.Deliver(ctx, bytes.NewReader(testMessage(i, 300)), []Recipient{{UserID: a.ID}}, DeliverOptions{})
			} else {
				_, err = s.Deliver(ctx, bytes.NewReader(testMessage(i, 300)), []Recipient{{UserID: a.ID}, {MailboxID: 999999}}, DeliverOptions{})
			}
			mu.Lock()
			if err == nil {
				okN++
			} else {
				badN++
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	inbox, _ := s.MailboxByName(ctx, a.ID, "INBOX")
	if okN != 20 || badN != 20 || inbox.Messages != 20 {
		t.Fatalf("ok %d bad %d, INBOX holds %d", okN, badN, inbox.Messages)
	}
	n, _, _ := s.BlobCount(ctx)
	if n != 20 {
		t.Fatalf("%d blobs; failed deliveries must leave none", n)
	}
}

// IMAP APPEND of an empty literal must store an empty message, not fail.
func TestDeliverEmptyMessage(t *testing.T) {
	s, _ := openTest(t)
	a := addUser(t, s, "alice@example.test")
	ds, err := s.Deliver(context.Background(), bytes.NewReader(nil), []Recipient{{UserID: a.ID}}, DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, ds[0].MessageID); len(got) != 0 {
		t.Fatalf("empty message read back as %q", got)
	}
	m, _ := s.MessageByUID(context.Background(), ds[0].MailboxID, ds[0].UID)
	if m.Size != 0 {
		t.Fatalf("size %d", m.Size)
	}
}

// TestResolveCache: Resolve reuses its answers, yet a change made through
// the same Store shows at once, and one made by another process (the CLI)
// within resolveTTL.
func TestResolveCache(t *testing.T) {
	s, dir := openTest(t)
	ctx := context.Background()
	a := addUser(t, s, "alice@example.test")
	b := addUser(t, s, "bob@example.test")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	resolve := func(addr string) string {
		t.Helper()
		ts, err := s.Resolve(ctx, addr)
		if err != nil {
			return "err:" + err.Error()
		}
		var out []string
		for _, tg := range ts {
			out = append(out, fmt.Sprintf("%d:%s", tg.UserID, tg.Address))
		}
		return strings.Join(out, ",")
	}
	must(s.AddAlias(ctx, "team@example.test", []string{"alice@example.test", "bob@example.test"}))
	wantTeam := fmt.Sprintf("%d:alice@example.test,%d:bob@example.test", a.ID, b.ID)
	for range 2 { // the second answer comes from the cache
		if got := resolve("team@example.test"); got != wantTeam {
			t.Fatalf("team = %s, want %s", got, wantTeam)
		}
	}
	// The caller may change what it got without changing the cache.
	ts, _ := s.Resolve(ctx, "team@example.test")
	ts[0].Address = "mallory@example.test"
	if got := resolve("team@example.test"); got != wantTeam {
		t.Fatalf("team after the caller wrote to its copy = %s", got)
	}

	must(s.DeleteAlias(ctx, "team@example.test"))
	if got := resolve("team@example.test"); got != "err:team@example.test: not found" {
		t.Fatalf("team just after DeleteAlias = %s", got)
	}
	must(s.AddAlias(ctx, "team@example.test", []string{"bob@example.test"}))
	if got, want := resolve("team@example.test"), fmt.Sprintf("%d:bob@example.test", b.ID); got != want {
		t.Fatalf("team just after AddAlias = %s, want %s", got, want)
	}
	resolve("alice@example.test")
	must(s.DeleteUser(ctx, "alice@example.test"))
	if got := resolve("alice@example.test"); got != "err:alice@example.test: not found" {
		t.Fatalf("alice just after DeleteUser = %s", got)
	}

	// Quotas: cached when unlimited, yet a change shows at once.
	for range 2 {
		if q, used, err := s.QuotaUsage(ctx, b.ID); err != nil || q != 0 || used != 0 {
			t.Fatalf("QuotaUsage of an unlimited user = %d, %d, %v", q, used, err)
		}
	}
	must(s.SetQuota(ctx, "bob@example.test", 5000))
	if q, _, err := s.QuotaUsage(ctx, b.ID); err != nil || q != 5000 {
		t.Fatalf("QuotaUsage just after SetQuota = %d, %v", q, err)
	}
	must(s.SetQuota(ctx, "bob@example.test", 0))

	// Another process: a second Store on the same database.
	other, err := Open(dir)
	must(err)
	defer other.Close()
	if got, want := resolve("bob@example.test"), fmt.Sprintf("%d:bob@example.test", b.ID); got != want {
		t.Fatalf("bob = %s, want %s", got, want)
	}
	must(other.DeleteUser(ctx, "bob@example.test"))
	time.Sleep(resolveTTL + 100*time.Millisecond)
	if got := resolve("bob@example.test"); got != "err:bob@example.test: not found" {
		t.Fatalf("bob %v after another process deleted him = %s", resolveTTL, got)
	}
}
