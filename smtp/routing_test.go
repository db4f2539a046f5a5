package smtp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"pombo/config"
	"pombo/smtp"
	"pombo/storage"
	"pombo/testutil"
	"pombo/tlsconf"
)

// direct is an inbound server built by hand (not through package server),
// for what the wiring does not expose: the Enqueuer and the log.
type direct struct {
	st    *storage.Store
	addr  string
	alice int64
	log   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDirect(t testing.TB, enq smtp.Enqueuer) *direct {
	t.Helper()
	st, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	u, err := st.AddUser(ctx, "alice@example.test", "hash", 0)
	if err != nil {
		t.Fatal(err)
	}
	tc, _, err := tlsconf.Load("", "", t.TempDir(), "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	d := &direct{st: st, alice: u.ID, log: &syncBuffer{}}
	srv := smtp.NewInbound(smtp.Options{
		Hostname: "mx.example.test",
		Store:    st,
		TLS:      tc,
		Log:      slog.New(slog.NewTextHandler(d.log, nil)),
		Limits: smtp.Limits{
			MaxMessageSize: 1 << 20, MaxRecipients: 10, MaxErrors: 10, MaxLineLength: 1000,
			CommandTimeout: time.Minute, DataTimeout: time.Minute,
		},
		Enqueuer: enq,
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() {
		l.Close()
		srv.Close()
		st.Close()
	})
	return d
}

// fakeQueue records what it is handed, and stores the local copies of
// DeliverAndEnqueue in st when it does not fail.
type fakeQueue struct {
	st        *storage.Store
	mu        sync.Mutex
	calls     []queued
	fail      error // returned after reading the whole message
	failEarly error // returned before reading anything
	panics    bool
}

type queued struct {
	from   string
	to     []string
	prefix string
	data   string
}

func (q *fakeQueue) Enqueue(_ context.Context, from string, to []string, prefix []byte, r io.Reader) error {
	if q.failEarly != nil {
		return q.failEarly
	}
	if q.panics {
		panic("queue bug")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if q.fail != nil {
		return q.fail
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, queued{from, to, string(prefix), string(b)})
	return nil
}

func (q *fakeQueue) DeliverAndEnqueue(ctx context.Context, r io.Reader, local []storage.Recipient, from string, to []string, prefix []byte) error {
	var b bytes.Buffer
	if err := q.Enqueue(ctx, from, to, prefix, io.TeeReader(r, &b)); err != nil {
		return err
	}
	_, err := q.st.Deliver(ctx, &b, local, storage.DeliverOptions{})
	return err
}

func (q *fakeQueue) queued() []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]queued(nil), q.calls...)
}

// deliver sends one message with a raw session; it returns the reply to the
// end of data, or the first refusal.
func deliver(t *testing.T, addr, from string, to []string, body string) string {
	t.Helper()
	r := dialRaw(t, addr)
	r.ehlo()
	r.send("MAIL FROM:<" + from + ">\r\n")
	if got := r.reply(); !strings.HasPrefix(got, "250") {
		return got
	}
	for _, rc := range to {
		r.send("RCPT TO:<" + rc + ">\r\n")
		if got := r.reply(); !strings.HasPrefix(got, "250") {
			return got
		}
	}
	r.send("DATA\r\n")
	r.expect("354 ")
	r.send(body + ".\r\n")
	got := r.reply()
	r.send("QUIT\r\n")
	r.expect("221 ")
	return got
}

const shortBody = "Subject: hello\r\n\r\nhi\r\n"

func TestPlusAddressingAliasesCatchAll(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	st := e.srv.Store
	bob := addUser(t, e, "bob@example.test")
	if err := st.CreateMailbox(ctx, e.alice, "Lists", ""); err != nil {
		t.Fatal(err)
	}
	if err := st.AddAlias(ctx, "team@example.test", []string{"alice@example.test", "bob@example.test"}); err != nil {
		t.Fatal(err)
	}

	// user+tag@ with an existing folder (any case) goes there.
	if got := deliver(t, e.addr, "x@remote.test", []string{"alice+lists@example.test"}, shortBody); !strings.HasPrefix(got, "250") {
		t.Fatal(got)
	}
	lists := e.mailbox(e.alice, "Lists")
	if len(lists) != 1 {
		t.Fatalf("Lists has %d messages", len(lists))
	}
	p, _ := splitTrace(lists[0].data)
	if !strings.Contains(string(p), "Delivered-To: alice@example.test\r\n") || !strings.Contains(string(p), "\tfor <alice+lists@example.test>;") {
		t.Errorf("trace of a plus-address:\n%s", p)
	}
	// user+tag@ without such a folder goes to INBOX.
	if got := deliver(t, e.addr, "x@remote.test", []string{"alice+nosuch@example.test"}, shortBody); !strings.HasPrefix(got, "250") {
		t.Fatal(got)
	}
	if n := len(e.mailbox(e.alice, "INBOX")); n != 1 {
		t.Fatalf("INBOX has %d messages", n)
	}

	// An alias reaches every target, with one blob and one prefix each.
	blobs := e.blobs()
	if got := deliver(t, e.addr, "x@remote.test", []string{"team@example.test"}, "Subject: team\r\n\r\nhi\r\n"); !strings.HasPrefix(got, "250") {
		t.Fatal(got)
	}
	if n := e.blobs() - blobs; n != 1 {
		t.Errorf("%d blobs for one message to two users", n)
	}
	for user, addr := range map[int64]string{e.alice: "alice@example.test", bob: "bob@example.test"} {
		msgs := e.mailbox(user, "INBOX")
		p, body := splitTrace(msgs[len(msgs)-1].data)
		if string(body) != "Subject: team\r\n\r\nhi\r\n" {
			t.Errorf("%s body %q", addr, body)
		}
		if !strings.Contains(string(p), "Delivered-To: "+addr+"\r\n") || !strings.Contains(string(p), "for <team@example.test>") {
			t.Errorf("%s trace:\n%s", addr, p)
		}
	}

	// Without a catch-all an unknown address is refused; with one it lands.
	if got := deliver(t, e.addr, "x@remote.test", []string{"whoever@example.test"}, shortBody); !strings.HasPrefix(got, "550 5.1.1") {
		t.Fatalf("unknown address: %q", got)
	}
	if err := st.AddAlias(ctx, "@example.test", []string{"bob@example.test"}); err != nil {
		t.Fatal(err)
	}
	before := len(e.mailbox(bob, "INBOX"))
	if got := deliver(t, e.addr, "x@remote.test", []string{"whoever@example.test"}, shortBody); !strings.HasPrefix(got, "250") {
		t.Fatalf("catch-all: %q", got)
	}
	if n := len(e.mailbox(bob, "INBOX")); n != before+1 {
		t.Fatalf("catch-all did not deliver to bob")
	}
	// A plain user still wins over the catch-all.
	if got := deliver(t, e.addr, "x@remote.test", []string{"alice@example.test"}, shortBody); !strings.HasPrefix(got, "250") {
		t.Fatal(got)
	}
	if n := len(e.mailbox(bob, "INBOX")); n != before+1 {
		t.Fatalf("catch-all took mail of an existing user")
	}
}

func TestQuota(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	st := e.srv.Store
	if err := st.SetQuota(ctx, "alice@example.test", 3000); err != nil {
		t.Fatal(err)
	}
	// Declared too big for the room left: refused at RCPT.
	r := dialRaw(t, e.addr)
	r.ehlo()
	r.send("MAIL FROM:<x@remote.test> SIZE=5000\r\n")
	r.expect("250 ")
	r.send("RCPT TO:<alice@example.test>\r\n")
	r.expect("552 5.2.2 ")
	// Undeclared and too big: refused at the end of DATA by storage.
	line := strings.Repeat("z", 78) + "\r\n"
	big := "Subject: big\r\n\r\n" + strings.Repeat(line, 50)
	if got := deliver(t, e.addr, "x@remote.test", []string{"alice@example.test"}, big); !strings.HasPrefix(got, "552 5.2.2") {
		t.Fatalf("over quota at DATA: %q", got)
	}
	if n := e.blobs(); n != 0 {
		t.Fatalf("%d blobs stored", n)
	}
	// Fits: stored. Then full: refused at RCPT.
	if got := deliver(t, e.addr, "x@remote.test", []string{"alice@example.test"}, "Subject: fits\r\n\r\n"+strings.Repeat(line, 24)); !strings.HasPrefix(got, "250") {
		t.Fatalf("fitting message: %q", got)
	}
	if err := st.SetQuota(ctx, "alice@example.test", 1000); err != nil {
		t.Fatal(err)
	}
	if got := deliver(t, e.addr, "x@remote.test", []string{"alice@example.test"}, shortBody); !strings.HasPrefix(got, "552 5.2.2") {
		t.Fatalf("full mailbox: %q", got)
	}
}

func TestForwardingWithoutQueueIsRefused(t *testing.T) {
	d := startDirect(t, nil)
	ctx := context.Background()
	if err := d.st.AddAlias(ctx, "fwd@example.test", []string{"alice@example.test", "friend@elsewhere.test"}); err != nil {
		t.Fatal(err)
	}
	got := deliver(t, d.addr, "x@remote.test", []string{"fwd@example.test"}, shortBody)
	if !strings.HasPrefix(got, "451 4.3.0 ") {
		t.Fatalf("want 451 4.3.0, got %q", got)
	}
	if n, _, _ := d.st.BlobCount(ctx); n != 0 {
		t.Fatalf("%d blobs stored", n)
	}
	if !regexp.MustCompile(`level=WARN msg="smtp recipient refused: forwarding needs the outbound queue".* rcpt=fwd@example.test remote=\[friend@elsewhere.test\]`).MatchString(d.log.String()) {
		t.Fatalf("no log line for the refused forwarding:\n%s", d.log)
	}
}

func TestForwardingWithQueue(t *testing.T) {
	q := &fakeQueue{}
	d := startDirect(t, q)
	q.st = d.st
	ctx := context.Background()
	if err := d.st.AddAlias(ctx, "fwd@example.test", []string{"alice@example.test", "friend@elsewhere.test"}); err != nil {
		t.Fatal(err)
	}
	if err := d.st.AddAlias(ctx, "away@example.test", []string{"other@elsewhere.test"}); err != nil {
		t.Fatal(err)
	}
	body := "Subject: fwd\r\n\r\n" + strings.Repeat("forwarded line\r\n", 20000) // bigger than a pipe buffer
	if got := deliver(t, d.addr, "x@remote.test", []string{"fwd@example.test", "away@example.test"}, body); !strings.HasPrefix(got, "250") {
		t.Fatal(got)
	}
	msgs := mailboxOf(t, d.st, d.alice, "INBOX")
	if len(msgs) != 1 {
		t.Fatalf("alice has %d messages", len(msgs))
	}
	if _, b := splitTrace(msgs[0].data); string(b) != body {
		t.Fatal("local copy differs")
	}
	calls := q.queued()
	if len(calls) != 1 {
		t.Fatalf("%d enqueues", len(calls))
	}
	c := calls[0]
	if c.from != "x@remote.test" || strings.Join(c.to, ",") != "friend@elsewhere.test,other@elsewhere.test" || c.data != body {
		t.Fatalf("enqueued from %q to %v, %d octets", c.from, c.to, len(c.data))
	}
	if !strings.HasPrefix(c.prefix, "Received: from client.example ([127.0.0.1])\r\n") || strings.Contains(c.prefix, "Delivered-To") {
		t.Fatalf("remote prefix:\n%s", c.prefix)
	}

	// Relay attempts reach neither storage nor the queue.
	if got := deliver(t, d.addr, "x@remote.test", []string{"someone@elsewhere.test"}, shortBody); !strings.HasPrefix(got, "554 5.7.1") {
		t.Fatalf("relay: %q", got)
	}
	if n := len(q.queued()); n != 1 {
		t.Fatalf("relay attempt queued")
	}

	// When the queue fails before the end, nothing is stored locally either.
	q.failEarly = io.ErrShortWrite
	before, _, _ := d.st.BlobCount(ctx)
	if got := deliver(t, d.addr, "x@remote.test", []string{"fwd@example.test"}, body); !strings.HasPrefix(got, "451 4.3.0") {
		t.Fatalf("failing queue: %q", got)
	}
	if n, _, _ := d.st.BlobCount(ctx); n != before {
		t.Fatalf("local copy stored although the queue failed")
	}
	// A panic in the queue is that message's failure, not the server's.
	q.failEarly, q.panics = nil, true
	if got := deliver(t, d.addr, "x@remote.test", []string{"fwd@example.test"}, body); !strings.HasPrefix(got, "451 4.3.0") {
		t.Fatalf("panicking queue: %q", got)
	}
	if n, _, _ := d.st.BlobCount(ctx); n != before {
		t.Fatalf("local copy stored although the queue panicked")
	}
	q.panics = false
	// When it fails at the very end, the client is told to retry, and
	// nothing was stored locally on the side: the retry makes no second copy.
	q.failEarly, q.fail = nil, io.ErrShortWrite
	if got := deliver(t, d.addr, "x@remote.test", []string{"fwd@example.test"}, shortBody); !strings.HasPrefix(got, "451 4.3.0") {
		t.Fatalf("failing queue: %q", got)
	}
	if n, _, _ := d.st.BlobCount(ctx); n != before {
		t.Fatalf("local copy stored although the queue failed")
	}
}

func TestSessionLogLine(t *testing.T) {
	d := startDirect(t, nil)
	r := dialRaw(t, d.addr)
	r.ehlo()
	r.startTLS()
	r.ehlo()
	r.openData()
	r.send(shortBody + ".\r\n")
	r.expect("250 ")
	r.send("MAIL FROM:<y@remote.test>\r\nRCPT TO:<nobody@example.test>\r\n")
	r.expect("250 ")
	r.expect("550 ")
	r.send("QUIT\r\n")
	r.expect("221 ")
	r.expectClosed()
	re := regexp.MustCompile(`level=INFO msg="smtp session" svc=smtp id=\w+ ip=127.0.0.1 helo=client.example tls="TLS 1.3" from=bob@remote.test rcpts=alice@example.test size=\d+ result="250 stored" msgs=1 errors=1 last_refusal="550 5.1.1" dur=\S+\n`)
	var line string
	for i := 0; i < 100 && line == ""; i++ { // logged when the server side closes
		line = re.FindString(d.log.String())
		time.Sleep(10 * time.Millisecond)
	}
	if line == "" {
		t.Fatalf("no session line:\n%s", d.log)
	}
	if n := strings.Count(d.log.String(), `msg="smtp session"`); n != 1 {
		t.Fatalf("%d session lines", n)
	}
}

var _ = testutil.Config

// TestImplicitTLSListener: behind a TLS listener (as submission's port 465
// will be) the session knows it is encrypted.
func TestImplicitTLSListener(t *testing.T) {
	st, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	st.AddDomain(ctx, "example.test")
	u, err := st.AddUser(ctx, "alice@example.test", "hash", 0)
	if err != nil {
		t.Fatal(err)
	}
	tc, _, err := tlsconf.Load("", "", t.TempDir(), "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewInbound(smtp.Options{Hostname: "mx.example.test", Store: st, TLS: tc,
		Limits: smtp.Limits{MaxMessageSize: 1 << 20, MaxLineLength: 1000}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(tls.NewListener(l, tc))
	defer srv.Close()

	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := &raw{t: t, c: c, br: newReader(c)}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	rc.expect("220 ")
	if caps := rc.ehlo(); strings.Contains(caps, "STARTTLS") {
		t.Fatalf("STARTTLS offered under implicit TLS:\n%s", caps)
	}
	rc.openData()
	rc.send(shortBody + ".\r\n")
	rc.expect("250 ")
	msgs := mailboxOf(t, st, u.ID, "INBOX")
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].data), " with ESMTPS id ") {
		t.Fatalf("stored %d messages: %+v", len(msgs), msgs)
	}
}

// TestForwardingThroughTheQueue: with the real wiring, a forwarding alias
// stores the local copy and queues the remote one, trace prefix in front.
func TestForwardingThroughTheQueue(t *testing.T) {
	e := start(t, func(c *config.Config) {
		c.DNS.Resolver = "127.0.0.1:1" // nothing there: delivery attempts defer, no traffic leaves
	})
	ctx := context.Background()
	if err := e.srv.Store.AddAlias(ctx, "fwd@example.test", []string{"alice@example.test", "friend@elsewhere.test"}); err != nil {
		t.Fatal(err)
	}
	if got := deliver(t, e.addr, "x@remote.test", []string{"fwd@example.test"}, "Subject: fwd\r\n\r\nhi\r\n"); !strings.HasPrefix(got, "250") {
		t.Fatal(got)
	}
	if n := len(e.mailbox(e.alice, "INBOX")); n != 1 {
		t.Fatalf("alice has %d messages", n)
	}
	q, err := e.srv.Store.QueueList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Sender != "x@remote.test" || len(q[0].Recipients) != 1 || q[0].Recipients[0].Address != "friend@elsewhere.test" || q[0].Subject != "fwd" {
		t.Fatalf("queue: %+v", q)
	}
	// One transaction stored both, with one blob: the queued copy is its
	// own Received: line and the message, without alice's trace lines.
	if n, _, err := e.srv.Store.BlobCount(ctx); err != nil || n != 1 {
		t.Fatalf("%d blobs (%v), want one shared by both copies", n, err)
	}
	r, err := e.srv.Store.OpenQueued(ctx, q[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	trace, body := splitTrace(sent)
	if string(body) != "Subject: fwd\r\n\r\nhi\r\n" || !bytes.HasPrefix(trace, []byte("Received: from client.example")) || bytes.Contains(trace, []byte("Delivered-To")) {
		t.Fatalf("queued copy:\n%s", sent)
	}
}
