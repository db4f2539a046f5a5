package imap_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"pombo/config"
	"pombo/server"
	"pombo/storage"
	"pombo/testutil"
)

const (
	testUser = "alice@example.test"
	testPass = "correct horse battery"
)

type env struct {
	srv     *server.Server
	userID  int64
	addr    string
	tlsAddr string
}

func start(t *testing.T, mod func(*config.Config)) *env {
	t.Helper()
	cfg := testutil.Config(t)
	if mod != nil {
		mod(cfg)
	}
	srv := testutil.StartServer(t, cfg)
	id := testutil.AddUser(t, srv, testUser, testPass)
	return &env{srv: srv, userID: id, addr: srv.Addr("imap.listen"), tlsAddr: srv.Addr("imap.tls_listen")}
}

func (e *env) deliver(t *testing.T, mailbox, msg string) storage.Delivery {
	t.Helper()
	ds, err := e.srv.Store.Deliver(context.Background(), strings.NewReader(msg),
		[]storage.Recipient{{UserID: e.userID, Mailbox: mailbox}}, storage.DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ds[0]
}

// client logs in with go-imap's client; h receives unilateral data.
func (e *env) client(t *testing.T, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(e.addr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// existsClient is a logged-in client whose untagged EXISTS counts arrive on
// the channel (buffered: n of them).
func (e *env) existsClient(t *testing.T, n int) (*imapclient.Client, <-chan uint32) {
	t.Helper()
	exists := make(chan uint32, n)
	c := e.client(t, &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	})
	return c, exists
}

func selectBox(t *testing.T, c *imapclient.Client, name string) *imap.SelectData {
	t.Helper()
	d, err := c.Select(name, nil).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", name, err)
	}
	return d
}

// raw is a line-level connection for hostile input.
type raw struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string, useTLS bool) *raw {
	t.Helper()
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, br: bufio.NewReader(c)}
	r.line() // greeting
	return r
}

func (r *raw) send(s string) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *raw) line() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (got %q)", err, l)
	}
	return l
}

// until reads lines up to the one starting with prefix, returning all.
func (r *raw) until(prefix string) []string {
	r.t.Helper()
	var out []string
	for {
		l := r.line()
		out = append(out, l)
		if strings.HasPrefix(l, prefix) {
			return out
		}
	}
}

func (r *raw) cmd(tag, s string) []string {
	r.t.Helper()
	r.send(tag + " " + s + "\r\n")
	return r.until(tag + " ")
}

func (r *raw) login() {
	r.t.Helper()
	out := r.cmd("L", fmt.Sprintf("LOGIN %s %q", testUser, testPass))
	if !strings.HasPrefix(out[len(out)-1], "L OK") {
		r.t.Fatalf("login: %q", out)
	}
}

const multipartMsg = "From: Bob Example <bob@example.org>\r\n" +
	"To: alice@example.test\r\n" +
	"Subject: =?utf-8?q?Caf=C3=A9?= report\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 -0700\r\n" +
	"Message-ID: <m1@example.org>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--XX\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hello the quarterly numbers are in.\r\n" +
	"--XX\r\n" +
	"Content-Type: application/octet-stream; name=\"a.bin\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"Content-Disposition: attachment; filename=\"a.bin\"\r\n" +
	"\r\n" +
	"AAECAwQ=\r\n" +
	"--XX\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"Subject: inner\r\n" +
	"From: carol@example.net\r\n" +
	"\r\n" +
	"inner body\r\n" +
	"--XX--\r\n"

func simpleMsg(subject, body string) string {
	return "From: bob@example.org\r\nTo: alice@example.test\r\nSubject: " + subject +
		"\r\nDate: Tue, 03 Jan 2006 10:00:00 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "") + "@x>\r\n\r\n" + body + "\r\n"
}
