package pop3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"pombo/auth"
	"pombo/storage"
	"pombo/tlsconf"
)

// cheapHash is an argon2id PHC string with the smallest parameters auth
// accepts, so that fuzzing spends its time in pop3, not in argon2.
func cheapHash(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, 1, 8, 1, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=8,t=1,p=1$%s$%s", argon2.Version, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// cheapUsers answers every user name with a cheap hash, so that unknown
// users cost as little as known ones.
type cheapUsers struct {
	st    *storage.Store
	other string
}

func (u cheapUsers) PasswordHash(ctx context.Context, address string) (string, bool, error) {
	h, found, err := u.st.PasswordHash(ctx, address)
	if err != nil || found {
		return h, found, err
	}
	return u.other, true, nil
}

type testServer struct {
	srv    *Server
	st     *storage.Store
	userID int64
	inbox  int64
}

// newTestServer is a Server over a real store, with the user
// alice@example.test (password "pw"), for tests inside the package.
func newTestServer(t testing.TB) *testServer {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	u, err := st.AddUser(ctx, "alice@example.test", cheapHash("pw"), 0)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	tc, _, err := tlsconf.Load("", "", dir, "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("POMBO_TEST_LOG") == "1" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: levelTrace}))
	}
	srv := New(Options{
		Store:                      st,
		Auth:                       &auth.Authenticator{Users: cheapUsers{st, cheapHash("other")}, Log: log},
		TLS:                        tc,
		Log:                        log,
		Hostname:                   "mx.example.test",
		IdleTimeout:                2 * time.Second,
		MaxErrors:                  20,
		AllowPlaintextFromLoopback: true,
	})
	t.Cleanup(func() { srv.Close() })
	ts := &testServer{srv: srv, st: st, userID: u.ID, inbox: mb.ID}
	ts.fill(t)
	return ts
}

var fuzzMessages = []string{
	"Subject: one\r\n\r\n.dot\r\n..dots\r\n.\r\nend\r\n",
	"Subject: two\r\n\r\nno eol",
	"Subject: three\r\n",
}

// fill puts the fuzz messages back when sessions have removed them.
func (ts *testServer) fill(t testing.TB) {
	uids, err := ts.st.UIDs(context.Background(), ts.inbox)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(uids); i < len(fuzzMessages); i++ {
		if _, err := ts.st.Deliver(context.Background(), strings.NewReader(fuzzMessages[i]),
			[]storage.Recipient{{UserID: ts.userID}}, storage.DeliverOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// pipeConn is the server end of a net.Pipe, seen as a loopback TCP client
// that can half-close: once the client is done writing, reads end in EOF.
type pipeConn struct {
	net.Conn
	eof atomic.Bool
}

func (p *pipeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

func (p *pipeConn) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	if err != nil && p.eof.Load() {
		return n, io.EOF
	}
	return n, err
}

func (p *pipeConn) SetReadDeadline(t time.Time) error {
	if p.eof.Load() {
		return nil
	}
	return p.Conn.SetReadDeadline(t)
}

func (p *pipeConn) SetDeadline(t time.Time) error {
	p.SetReadDeadline(t)
	return p.Conn.SetWriteDeadline(t)
}

// closeWrite is the client's shutdown(SHUT_WR).
func (p *pipeConn) closeWrite() {
	p.eof.Store(true)
	p.Conn.SetReadDeadline(time.Unix(1, 0))
}

// session runs one whole session over net.Pipe: the client writes input,
// then half-closes; it returns what the server wrote.
func (ts *testServer) session(t testing.TB, input []byte) []byte {
	t.Helper()
	cli, end := net.Pipe()
	pc := &pipeConn{Conn: end}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.srv.serveConn(pc)
	}()
	out := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(cli)
		out <- b
	}()
	cli.Write(input) // fails once the server has closed
	pc.closeWrite()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("session did not end; input %q", input)
	}
	cli.Close()
	return <-out
}

// TestPanicRecovered: a panic inside a command ends that session only, with
// a reply, and releases the maildrop.
func TestPanicRecovered(t *testing.T) {
	ts := newTestServer(t)
	ts.srv.commands["BOOM"] = handler{stateTransaction, func(*conn, *command) error { panic("boom") }}
	var panics int
	ts.srv.onPanic = func(any) { panics++ }
	out := ts.session(t, []byte("USER alice@example.test\r\nPASS pw\r\nDELE 1\r\nBOOM\r\nQUIT\r\n"))
	if !bytes.HasSuffix(out, []byte("+OK message 1 deleted\r\n-ERR [SYS/TEMP] internal server error\r\n")) {
		t.Fatalf("reply to a panic: %q", out)
	}
	if panics != 1 {
		t.Fatalf("%d panics seen", panics)
	}
	// Nothing removed, lock released: the next session sees all messages.
	out = ts.session(t, []byte("USER alice@example.test\r\nPASS pw\r\nSTAT\r\nQUIT\r\n"))
	if !bytes.Contains(out, []byte("+OK 3 ")) {
		t.Fatalf("after the panic: %q", out)
	}
}

// FuzzSession feeds whole client transcripts to a session over net.Pipe
// against a real store: no panic, every reply line is CRLF-terminated and
// starts as POP3 says, and the session always ends.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"USER alice@example.test\r\nPASS pw\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 0\r\nDELE 2\r\nRSET\r\nQUIT\r\n",
		"CAPA\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABwdw==\r\nRETR 2\r\nTOP 3 5\r\nDELE 1\r\nQUIT\r\n",
		"AUTH LOGIN\r\nYWxpY2VAZXhhbXBsZS50ZXN0\r\ncHc=\r\nLIST 1\r\nNOOP\r\nQUIT\r\n",
		"AUTH PLAIN\r\n*\r\nAUTH\r\nAUTH PLAIN =\r\nQUIT\r\n",
		"PASS pw\r\nUSER\r\nUSER alice@example.test\r\nPASS wrong\r\nSTAT\r\n",
		"STLS\r\nUSER alice@example.test\r\n",
		"USER alice@example.test\r\nPASS pw\r\nRETR 0\r\nRETR 99\r\nDELE 1\r\nDELE 1\r\nLIST 1\r\nQUIT 1\r\n",
		"USER alice@example.test\r\nPASS pw\r\nDELE 1\r\n",
		strings.Repeat("A", 300) + "\r\nCAPA\r\n",
		"\x00\xff\r\n\n\r\nQUIT",
	} {
		f.Add([]byte(s))
	}
	ts := newTestServer(f)
	ts.srv.onPanic = func(r any) { panic(r) }
	f.Fuzz(func(t *testing.T, input []byte) {
		before, err := ts.st.UIDs(context.Background(), ts.inbox)
		if err != nil {
			t.Fatal(err)
		}
		out := ts.session(t, input)
		if bytes.Count(out, []byte("\n")) != bytes.Count(out, []byte("\r\n")) {
			t.Fatalf("bare LF in output: %q", out)
		}
		// Only QUIT removes anything.
		after, err := ts.st.UIDs(context.Background(), ts.inbox)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) && !bytes.Contains(bytes.ToUpper(input), []byte("QUIT")) {
			t.Fatalf("messages removed without QUIT: %q", input)
		}
		if !bytes.HasPrefix(out, []byte("+OK mx.example.test POP3 server ready\r\n")) {
			t.Fatalf("greeting: %q", out)
		}
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("output does not end in CRLF: %q", out)
		}
		ts.fill(t)
	})
}

// removingStore removes each message right after opening it, as an IMAP
// expunge landing in the middle of a RETR would.
type removingStore struct {
	*storage.Store
	inbox int64
}

func (s removingStore) OpenMessageLoaded(ctx context.Context, id int64) (*storage.BlobReader, error) {
	r, err := s.Store.OpenMessageLoaded(ctx, id)
	if err != nil {
		return nil, err
	}
	var uid uint32
	s.Store.Messages(ctx, s.inbox, nil, func(m *storage.Message) error {
		if m.ID == id {
			uid = m.UID
		}
		return nil
	})
	if _, err := s.Store.Remove(ctx, s.inbox, []uint32{uid}); err != nil {
		return nil, err
	}
	return r, nil
}

// TestRetrOfMessageRemovedWhileSent: a message larger than a storage chunk
// that disappears after its +OK cannot get an -ERR (it would read as a line
// of the message): the session ends without the terminating dot, and
// removes nothing else.
func TestRetrOfMessageRemovedWhileSent(t *testing.T) {
	ts := newTestServer(t)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 98)+"\r\n", 3*storage.ChunkSize/100)
	if _, err := ts.st.Deliver(context.Background(), strings.NewReader(big),
		[]storage.Recipient{{UserID: ts.userID}}, storage.DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	ts.srv.opts.Store = removingStore{ts.st, ts.inbox}
	out := ts.session(t, []byte("USER alice@example.test\r\nPASS pw\r\nDELE 1\r\nRETR 4\r\nQUIT\r\n"))
	i := bytes.Index(out, []byte("+OK "+strconv.Itoa(len(big))+" octets\r\n"))
	if i < 0 {
		t.Fatalf("no +OK for RETR: %q", out[:min(len(out), 300)])
	}
	rest := out[i:]
	if bytes.Contains(rest, []byte("-ERR")) || bytes.HasSuffix(rest, []byte("\r\n.\r\n")) || bytes.Contains(rest, []byte("signing off")) {
		t.Fatalf("aborted RETR ended as %q", rest[max(0, len(rest)-200):])
	}
	if len(rest) >= len(big) {
		t.Fatalf("sent %d octets of a message removed after %d", len(rest), storage.ChunkSize)
	}
	uids, _ := ts.st.UIDs(context.Background(), ts.inbox)
	if len(uids) != 3 { // the 3 fuzz messages: DELE 1 not applied
		t.Fatalf("%d messages left, want 3", len(uids))
	}
}
