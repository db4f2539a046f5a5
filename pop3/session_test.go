package pop3_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pombo/config"
	"pombo/storage"
)

// Messages as SMTP would hand them to storage, with the traps of POP3: lines
// that start with dots, a lone "." line, LF-only line ends (storage turns
// them into CRLF), no final line end, no body at all.
var (
	msgDots   = "From: x@example.net\r\nTo: alice@example.test\r\nSubject: dots\r\n\r\nline 1\r\n.dot line\r\n..two dots\r\n.\r\n\r\nline 6\r\n"
	msgLF     = "From: y@example.net\nSubject: lf\n\nhello\n.world\n"
	msgNoEOL  = "Subject: no eol\r\n\r\nlast line without CRLF"
	msgNoBody = "Subject: header only\r\nX-Other: yes\r\n"
)

// bigMessage is larger than one storage chunk, with dot lines placed exactly
// where the copy buffer (64 KiB) and storage chunks (256 KiB) split it.
func bigMessage() string {
	var b strings.Builder
	b.WriteString("Subject: big\r\n\r\n")
	for _, at := range []int{65536, 131072, 262144, 300000} {
		for b.Len() < at-100 {
			b.WriteString(strings.Repeat("x", 78) + "\r\n")
		}
		pad := at - b.Len() - 2
		b.WriteString(strings.Repeat("y", pad) + "\r\n")
		b.WriteString(".line at " + strconv.Itoa(at) + "\r\n")
	}
	b.WriteString("end\r\n")
	return b.String()
}

// TestRetrIsWhatStorageHolds: LIST and STAT report the stored size, and RETR
// delivers exactly the stored octets once the client undoes dot-stuffing.
func TestRetrIsWhatStorageHolds(t *testing.T) {
	e := start(t, nil)
	msgs := []string{msgDots, msgLF, bigMessage(), msgNoBody, msgNoEOL}
	var ids []int64
	var total int64
	for _, m := range msgs {
		d := e.deliver(e.aliceID, m)
		ids = append(ids, d.MessageID)
		total += int64(len(e.stored(d.MessageID)))
	}
	c := dial(t, e.plainAddr())
	if got, want := c.login(alice, alicePW), fmt.Sprintf("+OK maildrop has 5 messages (%d octets)", total); got != want {
		t.Fatalf("PASS: %q, want %q", got, want)
	}
	if got, want := c.ok("STAT"), fmt.Sprintf("+OK 5 %d", total); got != want {
		t.Fatalf("STAT: %q, want %q", got, want)
	}
	c.ok("LIST")
	list := c.lines()
	if len(list) != 5 {
		t.Fatalf("LIST: %q", list)
	}
	for i, id := range ids {
		want := e.stored(id)
		if list[i] != fmt.Sprintf("%d %d", i+1, len(want)) {
			t.Errorf("LIST line %d: %q, want size %d", i+1, list[i], len(want))
		}
		if got := c.ok("LIST %d", i+1); got != fmt.Sprintf("+OK %d %d", i+1, len(want)) {
			t.Errorf("LIST %d: %q", i+1, got)
		}
		if got := c.ok("RETR %d", i+1); got != fmt.Sprintf("+OK %d octets", len(want)) {
			t.Errorf("RETR %d: %q", i+1, got)
		}
		data, raw := c.body()
		if i == 4 {
			// No final CRLF in storage: the response needs one before ".".
			want = append(want, "\r\n"...)
		}
		if !bytes.Equal(data, want) {
			t.Errorf("RETR %d: got %d octets, want %d; first difference at %d", i+1, len(data), len(want), firstDiff(data, want))
		}
		// On the wire every line that starts with "." was stuffed.
		for _, l := range strings.SplitAfter(string(raw), "\r\n") {
			if strings.HasPrefix(l, ".") && !strings.HasPrefix(l, "..") && l != ".\r\n" {
				t.Errorf("RETR %d: unstuffed line %q", i+1, l)
			}
		}
	}
	// The LF message reached storage (and the client) with CRLF.
	if got := e.stored(ids[1]); !bytes.Contains(got, []byte("hello\r\n.world\r\n")) {
		t.Errorf("stored LF message: %q", got)
	}
	c.ok("QUIT")
	c.closed()
	if len(e.uids()) != 5 {
		t.Error("messages lost without DELE")
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestTop: the header, the blank line and n lines of the body; the whole
// message when n is larger; the header alone for a message without body.
func TestTop(t *testing.T) {
	e := start(t, nil)
	e.deliver(e.aliceID, msgDots)
	e.deliver(e.aliceID, msgNoBody)
	e.deliver(e.aliceID, bigMessage())
	c := dial(t, e.plainAddr())
	c.login(alice, alicePW)
	head := "From: x@example.net\r\nTo: alice@example.test\r\nSubject: dots\r\n\r\n"
	for n, want := range map[int]string{
		0:    head,
		1:    head + "line 1\r\n",
		3:    head + "line 1\r\n.dot line\r\n..two dots\r\n",
		4:    head + "line 1\r\n.dot line\r\n..two dots\r\n.\r\n",
		1000: msgDots,
	} {
		c.ok("TOP 1 %d", n)
		if data, _ := c.body(); string(data) != want {
			t.Errorf("TOP 1 %d: %q, want %q", n, data, want)
		}
	}
	c.ok("TOP 2 5")
	if data, _ := c.body(); string(data) != msgNoBody {
		t.Errorf("TOP of a message without body: %q", data)
	}
	// TOP of a big message stops early; the session goes on in step.
	c.ok("TOP 3 1")
	if data, _ := c.body(); string(data) != "Subject: big\r\n\r\n"+strings.Repeat("x", 78)+"\r\n" {
		t.Errorf("TOP 3 1: %q", data)
	}
	c.ok("NOOP")
	// Hostile: missing, extra and non-numeric arguments.
	c.fail("-ERR", "TOP 1")
	c.fail("-ERR", "TOP 1 x")
	c.fail("-ERR", "TOP 1 -1")
	c.fail("-ERR", "TOP 1 1 1")
	c.fail("-ERR", "TOP 9 1")
	c.ok("QUIT")
}

// TestUIDL: "<uidvalidity>.<uid>", unique, the same in every session and
// after other messages are deleted, never given to another message.
func TestUIDL(t *testing.T) {
	e := start(t, nil)
	var ds []storage.Delivery
	for i := range 4 {
		ds = append(ds, e.deliver(e.aliceID, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
	}
	mb, err := e.srv.Store.MailboxByName(context.Background(), e.aliceID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	uidl := func(d storage.Delivery) string { return fmt.Sprintf("%d.%d", mb.UIDValidity, d.UID) }
	c := dial(t, e.plainAddr())
	c.login(alice, alicePW)
	c.ok("UIDL")
	first := c.lines()
	valid := regexp.MustCompile(`^[0-9]+ [\x21-\x7e]{1,70}$`)
	for i, l := range first {
		if !valid.MatchString(l) || l != fmt.Sprintf("%d %s", i+1, uidl(ds[i])) {
			t.Errorf("UIDL line %q", l)
		}
	}
	if got := c.ok("UIDL 2"); got != "+OK 2 "+uidl(ds[1]) {
		t.Errorf("UIDL 2: %q", got)
	}
	c.ok("DELE 2")
	c.fail("-ERR", "UIDL 2")
	c.ok("UIDL")
	if got := c.lines(); len(got) != 3 || slices.Contains(got, first[1]) {
		t.Errorf("UIDL after DELE 2: %q", got)
	}
	c.ok("QUIT")
	c.closed()

	// The remaining messages keep their UIDLs; a new one gets a new UIDL.
	nd := e.deliver(e.aliceID, "Subject: new\r\n\r\nbody\r\n")
	c = dial(t, e.plainAddr())
	c.login(alice, alicePW)
	c.ok("UIDL")
	got := c.lines()
	want := []string{"1 " + uidl(ds[0]), "2 " + uidl(ds[2]), "3 " + uidl(ds[3]), "4 " + uidl(nd)}
	if !slices.Equal(got, want) {
		t.Errorf("UIDL in a new session: %q, want %q", got, want)
	}
	if uidl(nd) == uidl(ds[1]) {
		t.Error("UIDL of a deleted message reused")
	}
	c.ok("QUIT")
}

// TestDeleRsetQuit: DELE marks, RSET unmarks, QUIT removes (and IMAP, which
// reads storage, sees it at once).
func TestDeleRsetQuit(t *testing.T) {
	e := start(t, nil)
	var ds []storage.Delivery
	for i := range 4 {
		ds = append(ds, e.deliver(e.aliceID, fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)))
	}
	c := dial(t, e.plainAddr())
	c.login(alice, alicePW)
	c.ok("DELE 2")
	c.fail("-ERR", "DELE 2")
	c.fail("-ERR", "RETR 2")
	c.fail("-ERR", "LIST 2")
	c.fail("-ERR", "TOP 2 0")
	c.ok("LIST")
	if got := c.lines(); len(got) != 3 || got[1] != "3 "+strconv.Itoa(len(e.stored(ds[2].MessageID))) {
		t.Errorf("LIST after DELE: %q", got)
	}
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 3 ") {
		t.Errorf("STAT after DELE: %q", got)
	}
	c.ok("RSET")
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 4 ") {
		t.Errorf("STAT after RSET: %q", got)
	}
	c.ok("DELE 1")
	c.ok("DELE 3")
	if len(e.uids()) != 4 {
		t.Fatal("DELE removed a message before QUIT")
	}
	if got := c.ok("QUIT"); !strings.Contains(got, "(2 messages left)") {
		t.Errorf("QUIT: %q", got)
	}
	c.closed()
	if got, want := e.uids(), []uint32{ds[1].UID, ds[3].UID}; !slices.Equal(got, want) {
		t.Errorf("after QUIT storage has %v, want %v", got, want)
	}
	// Renumbered in the next session.
	c = dial(t, e.plainAddr())
	c.login(alice, alicePW)
	c.ok("RETR 1")
	if data, _ := c.body(); !bytes.Equal(data, e.stored(ds[1].MessageID)) {
		t.Errorf("RETR 1 in the next session: %q", data)
	}
	c.fail("-ERR", "RETR 3")
	c.ok("QUIT")
}

// TestDroppedConnectionDeletesNothing: neither a close nor a half-close
// after DELE removes anything, and the maildrop is free again at once.
func TestDroppedConnectionDeletesNothing(t *testing.T) {
	e := start(t, nil)
	for i := range 3 {
		e.deliver(e.aliceID, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
	}
	// Half-close: the client sends DELE then shuts its side down.
	c := dial(t, e.plainAddr())
	c.login(alice, alicePW)
	c.ok("DELE 1")
	c.ok("DELE 2")
	if err := c.nc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.closed()
	if n := len(e.uids()); n != 3 {
		t.Fatalf("half-closed session removed messages: %d left", n)
	}
	// Abrupt close, with a QUIT that never made it whole.
	c = dial(t, e.plainAddr())
	c.login(alice, alicePW)
	c.ok("DELE 3")
	c.tp.W.WriteString("QU")
	c.tp.W.Flush()
	c.nc.Close()
	// The lock is released once the server has seen the close; then a
	// new session sees all three messages.
	c = dial(t, e.plainAddr())
	c.ok("USER %s", alice)
	for {
		l := c.cmd("PASS %s", alicePW)
		if strings.HasPrefix(l, "+OK") {
			if l != "+OK maildrop has 3 messages ("+strings.Split(l, "(")[1] {
				t.Fatalf("after a dropped session: %q", l)
			}
			break
		}
		if !strings.HasPrefix(l, "-ERR [IN-USE]") {
			t.Fatalf("PASS: %q", l)
		}
		c.ok("USER %s", alice)
	}
	if n := len(e.uids()); n != 3 {
		t.Fatalf("dropped session removed messages: %d left", n)
	}
	c.ok("QUIT")
}

// TestExpungeByIMAPDuringSession: the POP3 session keeps its snapshot; RETR
// of the message expunged meanwhile gets a clean -ERR and the session goes
// on; DELE of it and QUIT still succeed.
func TestExpungeByIMAPDuringSession(t *testing.T) {
	e := start(t, nil)
	var ds []storage.Delivery
	for i := range 4 {
		ds = append(ds, e.deliver(e.aliceID, fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)))
	}
	ds = append(ds, e.deliver(e.aliceID, bigMessage()))
	c := dial(t, e.plainAddr())
	before := c.login(alice, alicePW)
	ctx := context.Background()
	// What an IMAP session does: STORE \Deleted + EXPUNGE, and UID EXPUNGE.
	if _, err := e.srv.Store.SetFlags(ctx, e.inbox, []uint32{ds[1].UID}, storage.FlagsAdd, storage.FlagDeleted, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := e.srv.Store.Expunge(ctx, e.inbox, nil); err != nil || len(got) != 1 {
		t.Fatalf("expunge: %v %v", got, err)
	}
	if _, err := e.srv.Store.Remove(ctx, e.inbox, []uint32{ds[4].UID}); err != nil {
		t.Fatal(err)
	}
	if got := c.ok("STAT"); "+OK maildrop has "+strings.TrimPrefix(got, "+OK ") == before {
		t.Log(got)
	}
	if got := c.ok("STAT"); !strings.HasPrefix(got, "+OK 5 ") {
		t.Errorf("STAT after an IMAP expunge: %q (the snapshot must not change)", got)
	}
	c.ok("LIST 2")
	for _, n := range []int{2, 5} {
		if got := c.cmd("RETR %d", n); got != fmt.Sprintf("-ERR message %d was removed by another session", n) {
			t.Errorf("RETR of an expunged message: %q", got)
		}
		if got := c.cmd("TOP %d 0", n); !strings.HasPrefix(got, "-ERR ") {
			t.Errorf("TOP of an expunged message: %q", got)
		}
	}
	c.ok("RETR 3")
	if data, _ := c.body(); !bytes.Equal(data, e.stored(ds[2].MessageID)) {
		t.Errorf("RETR 3: %q", data)
	}
	c.ok("DELE 2")
	c.ok("DELE 3")
	c.ok("QUIT")
	c.closed()
	if got, want := e.uids(), []uint32{ds[0].UID, ds[3].UID}; !slices.Equal(got, want) {
		t.Errorf("storage after QUIT: %v, want %v", got, want)
	}
}

// TestInUse: one POP3 session per maildrop, across both listeners; the
// second stays in AUTHORIZATION and may retry. Other users are not locked.
func TestInUse(t *testing.T) {
	e := start(t, nil)
	e.deliver(e.aliceID, msgDots)
	a := dial(t, e.plainAddr())
	a.login(alice, alicePW)
	b := dialTLS(t, e.tlsAddr())
	b.ok("USER %s", alice)
	b.fail("-ERR [IN-USE] ", "PASS %s", alicePW)
	if got := b.cmd("AUTH PLAIN %s", plainResp("", alice, alicePW)); !strings.HasPrefix(got, "-ERR [IN-USE]") {
		t.Errorf("AUTH while in use: %q", got)
	}
	b.fail("-ERR", "STAT") // still AUTHORIZATION
	o := dial(t, e.plainAddr())
	o.login(bob, bobPW)
	o.ok("QUIT")
	a.ok("QUIT")
	a.closed()
	b.login(alice, alicePW)
	b.ok("RETR 1")
	b.body()
	b.ok("QUIT")
}

// TestCapa: what CAPA lists in each state and on each listener.
func TestCapa(t *testing.T) {
	e := start(t, nil)
	base := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER"}
	c := dial(t, e.plainAddr())
	c.ok("CAPA")
	want := append(slices.Clone(base), "USER", "SASL PLAIN LOGIN", "STLS", "IMPLEMENTATION pombo")
	if got := c.lines(); !slices.Equal(got, want) {
		t.Errorf("CAPA before login: %q, want %q", got, want)
	}
	c.fail("-ERR", "CAPA X")
	c.login(alice, alicePW)
	c.ok("CAPA")
	want = append(slices.Clone(base), "IMPLEMENTATION pombo")
	if got := c.lines(); !slices.Equal(got, want) {
		t.Errorf("CAPA after login: %q, want %q", got, want)
	}
	c.ok("QUIT")

	c = dialTLS(t, e.tlsAddr())
	c.ok("CAPA")
	want = append(slices.Clone(base), "USER", "SASL PLAIN LOGIN", "IMPLEMENTATION pombo")
	if got := c.lines(); !slices.Equal(got, want) {
		t.Errorf("CAPA on port 995: %q, want %q", got, want)
	}
	c.fail("-ERR", "STLS")
	c.ok("QUIT")
}

// TestPipelining sends a whole session in one write (RFC 2449 §6.6) and
// checks every reply comes back, in order.
func TestPipelining(t *testing.T) {
	e := start(t, nil)
	e.deliver(e.aliceID, msgDots)
	d2 := e.deliver(e.aliceID, msgLF)
	c := dial(t, e.plainAddr())
	batch := "CAPA\r\nUSER " + alice + "\r\nPASS " + alicePW + "\r\nSTAT\r\nLIST\r\nRETR 2\r\nTOP 1 0\r\nUIDL 1\r\nBOGUS\r\nDELE 1\r\nRSET\r\nNOOP\r\nQUIT\r\n"
	if _, err := c.nc.Write([]byte(batch)); err != nil {
		t.Fatal(err)
	}
	expect := func(prefix string) {
		t.Helper()
		if l := c.line(); !strings.HasPrefix(l, prefix) {
			t.Fatalf("got %q, want %q...", l, prefix)
		}
	}
	expect("+OK")
	c.lines()
	expect("+OK")
	expect("+OK maildrop has 2 messages")
	expect("+OK 2 ")
	expect("+OK")
	if got := c.lines(); len(got) != 2 {
		t.Fatalf("LIST: %q", got)
	}
	expect("+OK")
	if data, _ := c.body(); !bytes.Equal(data, e.stored(d2.MessageID)) {
		t.Fatalf("pipelined RETR: %q", data)
	}
	expect("+OK")
	c.body()
	expect("+OK 1 ")
	expect("-ERR unknown command")
	expect("+OK message 1 deleted")
	expect("+OK maildrop has 2 messages")
	expect("+OK")
	expect("+OK")
	c.closed()
	if len(e.uids()) != 2 {
		t.Error("RSET did not undo the pipelined DELE")
	}
}

// TestPlaintextLoginRefused: with allow_plaintext_from_loopback off, no
// credentials without TLS; STLS then opens the way.
func TestPlaintextLoginRefused(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Auth.AllowPlaintextFromLoopback = false })
	e.deliver(e.aliceID, msgDots)
	c := dial(t, e.plainAddr())
	c.ok("CAPA")
	capa := c.lines()
	for _, l := range capa {
		if l == "USER" || strings.HasPrefix(l, "SASL") {
			t.Errorf("CAPA without TLS lists %q", l)
		}
	}
	if !slices.Contains(capa, "STLS") {
		t.Errorf("CAPA lacks STLS: %q", capa)
	}
	c.fail("-ERR [AUTH] ", "USER %s", alice)
	c.fail("-ERR [AUTH] ", "PASS %s", alicePW)
	c.fail("-ERR [AUTH] ", "AUTH PLAIN %s", plainResp("", alice, alicePW))
	c.fail("-ERR [AUTH] ", "AUTH")
	c.fail("-ERR", "STAT")
	c.startTLS()
	c.ok("CAPA")
	if got := c.lines(); !slices.Contains(got, "USER") || !slices.Contains(got, "SASL PLAIN LOGIN") || slices.Contains(got, "STLS") {
		t.Errorf("CAPA after STLS: %q", got)
	}
	c.login(alice, alicePW)
	c.ok("QUIT")

	// Port 995 is TLS from the start.
	c = dialTLS(t, e.tlsAddr())
	c.ok("AUTH PLAIN %s", plainResp("", alice, alicePW))
	c.ok("QUIT")
}
