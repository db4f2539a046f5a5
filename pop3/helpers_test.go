package pop3_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"pombo/config"
	"pombo/server"
	"pombo/storage"
	"pombo/testutil"
)

const (
	alice   = "alice@example.test"
	alicePW = "correct horse battery staple"
	bob     = "bob@example.test"
	bobPW   = "bob's password"
)

// env is a running pombo with alice (and bob) and some mail for alice.
type env struct {
	t       *testing.T
	srv     *server.Server
	aliceID int64
	bobID   int64
	inbox   int64 // alice's INBOX id
}

// start runs a real pombo on loopback; edit adjusts the configuration.
func start(t *testing.T, edit func(*config.Config)) *env {
	t.Helper()
	cfg := testutil.Config(t)
	if edit != nil {
		edit(cfg)
	}
	srv := testutil.StartServer(t, cfg)
	e := &env{t: t, srv: srv}
	e.aliceID = testutil.AddUser(t, srv, alice, alicePW)
	e.bobID = testutil.AddUser(t, srv, bob, bobPW)
	mb, err := srv.Store.MailboxByName(context.Background(), e.aliceID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	e.inbox = mb.ID
	return e
}

func (e *env) plainAddr() string { return e.srv.Addr("pop3.listen") }
func (e *env) tlsAddr() string   { return e.srv.Addr("pop3.tls_listen") }

// deliver puts msg in the INBOX of userID, as SMTP would.
func (e *env) deliver(userID int64, msg string) storage.Delivery {
	e.t.Helper()
	ds, err := e.srv.Store.Deliver(context.Background(), strings.NewReader(msg),
		[]storage.Recipient{{UserID: userID}}, storage.DeliverOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return ds[0]
}

// stored returns a message exactly as storage holds it.
func (e *env) stored(messageID int64) []byte {
	e.t.Helper()
	r, err := e.srv.Store.OpenMessage(context.Background(), messageID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// uids returns the UIDs in alice's INBOX.
func (e *env) uids() []uint32 {
	e.t.Helper()
	return e.uidsOf(e.t, e.aliceID)
}

// uidsOf returns the UIDs in the INBOX of a user.
func (e *env) uidsOf(t *testing.T, userID int64) []uint32 {
	t.Helper()
	mb, err := e.srv.Store.MailboxByName(context.Background(), userID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.srv.Store.UIDs(context.Background(), mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// client is a POP3 client on net/textproto.
type client struct {
	t  *testing.T
	nc net.Conn
	tp *textproto.Conn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, nc)
}

func dialTLS(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, nc)
}

func newClient(t *testing.T, nc net.Conn) *client {
	t.Helper()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	c := &client{t: t, nc: nc, tp: textproto.NewConn(nc)}
	t.Cleanup(func() { nc.Close() })
	if g := c.line(); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

// line reads one response line.
func (c *client) line() string {
	c.t.Helper()
	l, err := c.tp.ReadLine()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return l
}

// cmd sends a command and returns the status line.
func (c *client) cmd(format string, args ...any) string {
	c.t.Helper()
	if err := c.tp.PrintfLine(format, args...); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return c.line()
}

// ok sends a command that must succeed.
func (c *client) ok(format string, args ...any) string {
	c.t.Helper()
	l := c.cmd(format, args...)
	if !strings.HasPrefix(l, "+OK") {
		c.t.Fatalf("%s: %q", fmt.Sprintf(format, args...), l)
	}
	return l
}

// fail sends a command that must fail, with the given prefix of reply.
func (c *client) fail(want string, format string, args ...any) string {
	c.t.Helper()
	l := c.cmd(format, args...)
	if !strings.HasPrefix(l, want) {
		c.t.Fatalf("%s: got %q, want %q...", fmt.Sprintf(format, args...), l, want)
	}
	return l
}

// body reads a multi-line body and undoes dot-stuffing, keeping the octets
// (CRLF) exactly as sent; raw is the body as on the wire.
func (c *client) body() (data, raw []byte) {
	c.t.Helper()
	for {
		l, err := c.tp.R.ReadSlice('\n')
		if err != nil {
			c.t.Fatalf("read body: %v", err)
		}
		raw = append(raw, l...)
		if !bytes.HasSuffix(l, []byte("\r\n")) {
			c.t.Fatalf("line without CRLF: %q", l)
		}
		if string(l) == ".\r\n" {
			return data, raw
		}
		if l[0] == '.' {
			l = l[1:]
		}
		data = append(data, l...)
	}
}

// lines reads a multi-line response as lines.
func (c *client) lines() []string {
	c.t.Helper()
	d, _ := c.body()
	s := strings.TrimSuffix(string(d), "\r\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\r\n")
}

// login logs in with USER/PASS.
func (c *client) login(user, pw string) string {
	c.t.Helper()
	c.ok("USER %s", user)
	return c.ok("PASS %s", pw)
}

// closed waits for the server to close the connection.
func (c *client) closed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c.tp.R)
	if err != nil {
		c.t.Fatalf("connection not closed by the server: %v (after %q)", err, b)
	}
	if len(b) > 0 {
		c.t.Fatalf("unexpected data before close: %q", b)
	}
}

func plainResp(authz, user, pw string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pw))
}

// rawReader is the client's buffered reader, for tests that pipeline.
func (c *client) raw() *bufio.Reader { return c.tp.R }

func newTP(nc net.Conn) *textproto.Conn {
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return textproto.NewConn(nc)
}

// rawDial connects without reading a greeting.
func rawDial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, tp: newTP(nc)}
}

var requireTool = testutil.RequireTool

func cutHostPort(addr string) (host, port string, err error) { return net.SplitHostPort(addr) }
