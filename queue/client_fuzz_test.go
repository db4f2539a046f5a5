package queue

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// bufConn is a net.Conn that reads a fixed input and discards writes.
type bufConn struct {
	r *bytes.Reader
}

func (c *bufConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bufConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bufConn) Close() error                     { return nil }
func (c *bufConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *bufConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *bufConn) SetDeadline(time.Time) error      { return nil }
func (c *bufConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bufConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReplies feeds arbitrary server output to the reply parsers: they
// must never panic, and what they accept must be a well-formed reply.
func FuzzReplies(f *testing.F) {
	for _, s := range []string{
		"250 ok\r\n",
		"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 SMTPUTF8\r\n",
		"550-5.1.1 no\r\n550-5.1.1 such\r\n550 5.1.1 user\r\n",
		"421\r\n",
		"250 2.0.0\r\n",
		"354 go ahead\r\n",
		"220-hi\r\n554 no\r\n",
		"HTTP/1.1 400 Bad Request\r\n",
		"250 \xff\xfe\x00\r\n",
		"99 x\r\n",
		"250-" + strings.Repeat("x", 3000) + "\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newClient(context.Background(), &bufConn{r: bytes.NewReader(data)}, "fuzz", time.Second, time.Second)
		r, err := c.readReply()
		if err == nil {
			if r.code < 200 || r.code > 599 {
				t.Fatalf("code %d accepted", r.code)
			}
			if r.enh != "" && !isEnhanced(r.enh, r.code) {
				t.Fatalf("enhanced code %q with %d", r.enh, r.code)
			}
			if len(r.text) > maxReplyText+3 || printable(r.text) != r.text {
				t.Fatalf("reply text not bounded or not printable: %q", r.text)
			}
			if s := r.String(); !strings.HasPrefix(s, r.status()[:1]) && r.code/100 != 3 {
				t.Fatalf("String %q, status %q", s, r.status())
			}
		}
		c = newClient(context.Background(), &bufConn{r: bytes.NewReader(data)}, "fuzz", time.Second, time.Second)
		lines, code, err := c.readEHLO()
		if err == nil && (code < 200 || code > 599 || len(lines) == 0 || len(lines) > maxReplyLines) {
			t.Fatalf("EHLO reply %d with %d lines accepted", code, len(lines))
		}
	})
}
