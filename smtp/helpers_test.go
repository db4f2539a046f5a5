package smtp_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"pombo/config"
	"pombo/server"
	"pombo/storage"
	"pombo/testutil"
)

// env is a real pombo (testutil.StartServer) with alice@example.test.
type env struct {
	t     *testing.T
	srv   *server.Server
	addr  string
	alice int64
}

func start(t *testing.T, mutate func(*config.Config)) *env {
	t.Helper()
	cfg := testutil.Config(t)
	if mutate != nil {
		mutate(cfg)
	}
	srv := testutil.StartServer(t, cfg)
	e := &env{t: t, srv: srv, addr: srv.Addr("smtp.listen")}
	if e.addr == "" {
		t.Fatal("no smtp listener")
	}
	e.alice = testutil.AddUser(t, srv, "alice@example.test", "alice-password")
	return e
}

// stored is one message as a client would read it.
type stored struct {
	msg  storage.Message
	data []byte
}

// mailbox returns the messages of a user's mailbox with their bytes.
func (e *env) mailbox(userID int64, name string) []stored {
	e.t.Helper()
	return mailboxOf(e.t, e.srv.Store, userID, name)
}

func mailboxOf(t testing.TB, st *storage.Store, userID int64, name string) []stored {
	t.Helper()
	ctx := context.Background()
	mb, err := st.MailboxByName(ctx, userID, name)
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	err = st.Messages(ctx, mb.ID, nil, func(m *storage.Message) error {
		r, err := st.OpenMessage(ctx, m.ID)
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		out = append(out, stored{msg: *m, data: b})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// blobs counts stored raw messages: 0 means nothing at all was stored.
func (e *env) blobs() int64 {
	e.t.Helper()
	n, _, err := e.srv.Store.BlobCount(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// raw is a plain socket speaking SMTP by hand.
type raw struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := &raw{t: t, c: c, br: bufio.NewReader(c)}
	r.expect("220 ")
	return r
}

// send writes s as is (the caller puts the CRLFs).
func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// reply reads one whole (possibly multi-line) reply; "" on EOF.
func (r *raw) reply() string {
	r.t.Helper()
	var all strings.Builder
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			if line != "" {
				r.t.Fatalf("partial reply line %q: %v", line, err)
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				r.t.Fatalf("no reply: %v", err)
			}
			return all.String()
		}
		all.WriteString(line)
		if len(line) < 4 || line[3] != '-' {
			return all.String()
		}
	}
}

// expect reads one reply and checks that it starts with prefix.
func (r *raw) expect(prefix string) string {
	r.t.Helper()
	got := r.reply()
	if !strings.HasPrefix(got, prefix) {
		r.t.Fatalf("expected reply %q..., got %q", prefix, got)
	}
	return got
}

// expectClosed checks that the server closed the connection.
func (r *raw) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := r.br.ReadByte()
	if err == nil {
		rest, _ := r.br.ReadString('\n')
		r.t.Fatalf("connection still open, read %q", string(b)+rest)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		r.t.Fatal("connection still open (read timed out)")
	}
}

// ehlo greets and returns the EHLO reply.
func (r *raw) ehlo() string {
	r.send("EHLO client.example\r\n")
	return r.expect("250")
}

// startTLS upgrades the connection.
func (r *raw) startTLS() {
	r.t.Helper()
	r.send("STARTTLS\r\n")
	r.expect("220 ")
	tc := tls.Client(r.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		r.t.Fatal(err)
	}
	r.c = tc
	r.br = bufio.NewReader(tc)
}

// crlf turns LF line ends into CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// splitPrefix separates the trace fields pombo put in front from the
// message as sent, knowing that the sent message starts with firstLine.
func splitPrefix(t *testing.T, data []byte, firstLine string) (prefix, body []byte) {
	t.Helper()
	i := bytes.Index(data, []byte(firstLine))
	if i < 0 {
		t.Fatalf("message does not contain %q:\n%s", firstLine, data)
	}
	return data[:i], data[i:]
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func tlsClient(c net.Conn) *tls.Conn {
	return tls.Client(c, &tls.Config{InsecureSkipVerify: true})
}

// addUser adds another local user.
func addUser(t *testing.T, e *env, address string) int64 {
	t.Helper()
	return testutil.AddUser(t, e.srv, address, "password-of-"+address)
}
