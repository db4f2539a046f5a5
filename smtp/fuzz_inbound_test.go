package smtp_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pombo/smtp"
	"pombo/storage"
	"pombo/tlsconf"
)

// pipeConn is the server end of an in-memory connection that, unlike
// net.Pipe, can be half-closed: the client closes its writer and the server
// reads EOF, while the server's replies still flow.
type pipeConn struct {
	r      *io.PipeReader
	w      *io.PipeWriter
	closed atomic.Bool
}

func newPipe() (server *pipeConn, toServer *io.PipeWriter, fromServer *io.PipeReader) {
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	return &pipeConn{r: sr, w: sw}, cw, cr
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeConn) Close() error {
	p.closed.Store(true)
	p.r.Close()
	return p.w.Close()
}
func (p *pipeConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25}
}
func (p *pipeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

// Deadlines are not implemented (the client never stalls), but like a
// net.Conn's they fail once the connection is closed.
func (p *pipeConn) SetDeadline(time.Time) error      { return p.deadline() }
func (p *pipeConn) SetReadDeadline(time.Time) error  { return p.deadline() }
func (p *pipeConn) SetWriteDeadline(time.Time) error { return p.deadline() }

func (p *pipeConn) deadline() error {
	if p.closed.Load() {
		return net.ErrClosed
	}
	return nil
}

// oneConn is a listener that hands out one connection, then waits to be
// closed.
type oneConn struct {
	c    chan net.Conn
	done chan struct{}
	once sync.Once
}

func newOneConn(c net.Conn) *oneConn {
	l := &oneConn{c: make(chan net.Conn, 1), done: make(chan struct{})}
	l.c <- c
	return l
}

func (l *oneConn) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *oneConn) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *oneConn) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }

// errorLines collects log records at Error level.
type errorLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (e *errorLines) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.Write(p)
}

func (e *errorLines) take() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.buf.String()
	e.buf.Reset()
	return s
}

const fuzzMaxLine = 200

// fuzzRig is a store with alice@example.test (and her "Lists" folder, and
// the alias sales@ -> alice) shared by the executions of one fuzz worker.
type fuzzRig struct {
	st     *storage.Store
	opts   smtp.Options
	alice  int64
	lastID int64
	errs   *errorLines

	lastBlobs int64
}

func newFuzzRig(t testing.TB) *fuzzRig {
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
	u, err := st.AddUser(ctx, "alice@example.test", "not-a-real-hash", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateMailbox(ctx, u.ID, "Lists", ""); err != nil {
		t.Fatal(err)
	}
	if err := st.AddAlias(ctx, "sales@example.test", []string{"alice@example.test"}); err != nil {
		t.Fatal(err)
	}
	tc, _, err := tlsconf.Load("", "", dir, "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	errs := &errorLines{}
	return &fuzzRig{
		st:    st,
		alice: u.ID,
		errs:  errs,
		opts: smtp.Options{
			Hostname: "mx.example.test",
			Store:    st,
			Log:      slog.New(slog.NewTextHandler(errs, &slog.HandlerOptions{Level: slog.LevelError})),
			TLS:      tc,
			Limits: smtp.Limits{
				MaxMessageSize: 64 << 10,
				MaxRecipients:  5,
				MaxErrors:      5,
				MaxLineLength:  fuzzMaxLine,
				CommandTimeout: 5 * time.Second,
				DataTimeout:    5 * time.Second,
			},
		},
	}
}

// session runs one connection with transcript as everything the client
// sends, and returns everything the server replied.
func (r *fuzzRig) session(t *testing.T, transcript []byte) string {
	srv := smtp.NewInbound(r.opts)
	sc, toServer, fromServer := newPipe()
	l := newOneConn(sc)
	served := make(chan struct{})
	go func() {
		srv.Serve(l)
		close(served)
	}()
	go func() {
		toServer.Write(transcript)
		toServer.Close() // the server reads EOF after the transcript
	}()
	replies := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(fromServer)
		replies <- b
	}()
	var out []byte
	select {
	case out = <-replies:
	case <-time.After(20 * time.Second):
		t.Fatalf("session did not end; transcript %q", transcript)
	}
	l.Close()
	srv.Close() // waits for deliveries in progress
	<-served
	return string(out)
}

func (r *fuzzRig) blobs(t *testing.T) int64 {
	n, _, err := r.st.BlobCount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newMessages returns alice's messages stored since the last call.
func (r *fuzzRig) newMessages(t *testing.T) [][]byte {
	ctx := context.Background()
	mbs, err := r.st.Mailboxes(ctx, r.alice)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	max := r.lastID
	for _, mb := range mbs {
		for _, m := range mailboxOf(t, r.st, r.alice, mb.Name) {
			if m.msg.ID > r.lastID {
				out = append(out, m.data)
				if m.msg.ID > max {
					max = m.msg.ID
				}
			}
		}
	}
	r.lastID = max
	return out
}

var fuzzSeeds = []string{
	"EHLO a\r\nMAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n",
	"EHLO a\r\nMAIL FROM:<> BODY=8BITMIME\r\nRCPT TO:<alice+lists@example.test>\r\nRCPT TO:<sales@example.test>\r\nBDAT 22\r\nSubject: hi\r\n\r\nhello\r\nBDAT 0 LAST\r\nQUIT\r\n",
	"EHLO a\r\nMAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: a\r\n\r\nx\n.\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nsmuggled\r\n.\r\n",
	"EHLO a\r\nMAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: a\r\n\r\nx\r\n.\rMAIL FROM:<evil@remote.test>\r\n.\r\nRSET\r\nMAIL FROM:<c@d.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n..dot\r\n.\r\n",
	"EHLO a\r\nSTARTTLS\r\nRSET\r\n\x16\x03\x01garbage\r\n",
	"HELO a\r\nMAIL FROM:<bob@remote.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<x@elsewhere.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" + strings.Repeat("y", 300) + "\r\n.\r\n",
	"EHLO a\r\nMAIL FROM:<\"john doe\"@remote.test> SMTPUTF8 SIZE=100\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: ol\xc3\xa1\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@c.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 5 LAST\r\nab\rc\r\n",
	"EHLO a\r\nMAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: cut\r\n\r\npart",
}

// FuzzInbound feeds raw SMTP transcripts to a live inbound session. What
// must hold whatever the bytes: the session ends, nothing panics or logs an
// error, a message is stored exactly when a 250 "stored" reply was sent, and
// every stored message has its trace fields and only CRLF line ends within
// the line limit.
func FuzzInbound(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, transcript []byte) {
		out := rig.session(t, transcript)
		if e := rig.errs.take(); e != "" {
			t.Fatalf("error logged: %s\ntranscript %q", e, transcript)
		}
		acked := strings.Count(out, "250 2.0.0 Ok: stored as ")
		blobs := rig.blobs(t)
		msgs := rig.newMessages(t)
		// One blob per accepted message, however many mailboxes it went to.
		if blobs-rig.lastBlobs != int64(acked) || len(msgs) < acked || (acked == 0 && len(msgs) > 0) {
			t.Fatalf("%d messages in %d blobs stored, %d acknowledged\ntranscript %q\nreplies %q",
				len(msgs), blobs-rig.lastBlobs, acked, transcript, out)
		}
		rig.lastBlobs = blobs
		for _, m := range msgs {
			if !bytes.HasPrefix(m, []byte("Return-Path: <")) {
				t.Fatalf("no Return-Path: %q", m)
			}
			_, body := splitTrace(m)
			for n, line := range bytes.SplitAfter(m, []byte("\n")) {
				if len(line) == 0 {
					continue
				}
				if !bytes.HasSuffix(line, []byte("\r\n")) && n != bytes.Count(m, []byte("\n")) {
					t.Fatalf("bare LF in stored message: %q", m)
				}
				if bytes.IndexByte(bytes.TrimSuffix(line, []byte("\r\n")), '\r') >= 0 {
					t.Fatalf("bare CR in stored message: %q", m)
				}
			}
			for _, line := range bytes.SplitAfter(body, []byte("\r\n")) {
				if len(line) > fuzzMaxLine {
					t.Fatalf("line of %d octets stored: %q", len(line), m)
				}
			}
		}
	})
}

// splitTrace separates pombo's trace fields (Return-Path, Delivered-To,
// Received and its continuation lines) from the message as received.
func splitTrace(m []byte) (trace, body []byte) {
	off := 0
	for i, line := range bytes.SplitAfter(m, []byte("\r\n")) {
		if i >= 3 && !bytes.HasPrefix(line, []byte("\t")) {
			break
		}
		off += len(line)
	}
	return m[:off], m[off:]
}
