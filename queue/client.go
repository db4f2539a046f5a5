package queue

// A small SMTP client (RFC 5321) for outbound delivery. It is written here
// rather than taken from go-smtp because delivery needs what that client
// does not offer: EHLO with our host name before STARTTLS (go-smtp's
// NewClientStartTLS says "EHLO localhost" first), PIPELINING (RFC 2920),
// per-recipient replies kept as data, and bounded reply parsing against a
// hostile server.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

const (
	maxReplyLine  = 2048 // octets of one reply line; RFC 5321 §4.5.3.1.5 says 512
	maxReplyLines = 128  // lines of one multi-line reply
	maxReplyText  = 1000 // octets of a reply kept for logs and DSNs
)

// reply is one SMTP reply.
type reply struct {
	code int
	enh  string // enhanced status code (RFC 2034/3463), "" if none
	text string // the text of all lines joined by spaces, enhanced code removed
}

func (r *reply) String() string {
	s := strconv.Itoa(r.code)
	if r.enh != "" {
		s += " " + r.enh
	}
	if r.text != "" {
		s += " " + r.text
	}
	return s
}

// status returns the RFC 3463 code of the reply: its own when it has one
// of the right class, else a generic one of its class.
func (r *reply) status() string {
	if r.enh != "" {
		return r.enh
	}
	return fmt.Sprintf("%d.0.0", r.code/100)
}

// replyError is a 4xx or 5xx reply (or a 2xx/3xx where another was due).
type replyError struct {
	r   *reply
	cmd string // the command it answered, for the log
}

func (e *replyError) Error() string { return e.cmd + ": " + e.r.String() }

// errProtocol marks replies that are not SMTP.
var errProtocol = errors.New("SMTP protocol error")

type client struct {
	conn        net.Conn
	br          *bufio.Reader
	bw          *bufio.Writer
	host        string            // name of the server, for logs and DSNs
	ext         map[string]string // EHLO keywords (upper case) → parameters
	tls         bool
	cmdTimeout  time.Duration
	dataTimeout time.Duration
	stop        func() bool
}

// newClient wraps a connection; ctx ending closes it, which fails whatever
// the client is doing.
func newClient(ctx context.Context, conn net.Conn, host string, cmdTimeout, dataTimeout time.Duration) *client {
	c := &client{host: host, cmdTimeout: cmdTimeout, dataTimeout: dataTimeout}
	c.setConn(conn)
	c.stop = context.AfterFunc(ctx, func() { conn.Close() })
	return c
}

func (c *client) setConn(conn net.Conn) {
	c.conn = conn
	c.br = bufio.NewReaderSize(conn, maxReplyLine)
	c.bw = bufio.NewWriterSize(conn, 32<<10)
}

func (c *client) close() {
	c.stop()
	c.conn.Close()
}

// readReply reads one (possibly multi-line) reply.
func (c *client) readReply() (*reply, error) {
	var r reply
	var text []string
	for i := 0; ; i++ {
		if i == maxReplyLines {
			return nil, fmt.Errorf("%w: reply of more than %d lines", errProtocol, maxReplyLines)
		}
		line, err := c.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: reply line longer than %d octets", errProtocol, maxReplyLine)
		} else if err != nil {
			return nil, err
		}
		s := strings.TrimRight(string(line), "\r\n")
		if len(s) < 3 || (len(s) > 3 && s[3] != ' ' && s[3] != '-') {
			return nil, fmt.Errorf("%w: malformed reply %q", errProtocol, truncate(s, 64))
		}
		code, err := strconv.Atoi(s[:3])
		if err != nil || code < 200 || code > 599 {
			return nil, fmt.Errorf("%w: malformed reply %q", errProtocol, truncate(s, 64))
		}
		if i == 0 {
			r.code = code
		} else if code != r.code {
			return nil, fmt.Errorf("%w: reply codes %d and %d in one reply", errProtocol, r.code, code)
		}
		if len(s) > 4 {
			text = append(text, s[4:])
		}
		if len(s) == 3 || s[3] == ' ' {
			break
		}
	}
	if len(text) > 0 {
		if enh, rest, ok := strings.Cut(text[0], " "); ok && isEnhanced(enh, r.code) {
			r.enh, text[0] = enh, rest
		} else if isEnhanced(text[0], r.code) {
			r.enh, text[0] = text[0], ""
		}
		// RFC 2034: later lines repeat the code; keep it once.
		for i := 1; i < len(text); i++ {
			if r.enh != "" {
				text[i] = strings.TrimPrefix(text[i], r.enh+" ")
			}
		}
	}
	r.text = truncate(printable(strings.Join(text, " ")), maxReplyText)
	return &r, nil
}

// isEnhanced says whether s is an RFC 3463 code whose class matches the
// reply code.
func isEnhanced(s string, code int) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(s) > 11 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return parts[0] == strconv.Itoa(code/100) && code/100 != 3
}

// printable keeps a reply safe for logs and for the ASCII fields of a DSN.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// send writes a command without waiting for its reply (PIPELINING).
func (c *client) send(format string, args ...any) error {
	c.conn.SetDeadline(time.Now().Add(c.cmdTimeout))
	if _, err := fmt.Fprintf(c.bw, format+"\r\n", args...); err != nil {
		return err
	}
	return nil
}

func (c *client) flush() error {
	return c.bw.Flush()
}

// expect reads a reply and checks its class: 2 for 2xx, 3 for 3xx.
func (c *client) expect(cmd string, class int) (*reply, error) {
	c.conn.SetDeadline(time.Now().Add(c.cmdTimeout))
	r, err := c.readReply()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if r.code/100 != class {
		return r, &replyError{r: r, cmd: cmd}
	}
	return r, nil
}

// cmd sends one command and reads its reply.
func (c *client) cmd(name string, class int, format string, args ...any) (*reply, error) {
	if err := c.send(format, args...); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := c.flush(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c.expect(name, class)
}

// greet reads the server's greeting.
func (c *client) greet() error {
	_, err := c.expect("greeting", 2)
	return err
}

// hello sends EHLO, falling back to HELO when the server does not know it.
func (c *client) hello(name string) error {
	c.conn.SetDeadline(time.Now().Add(c.cmdTimeout))
	if _, err := fmt.Fprintf(c.bw, "EHLO %s\r\n", name); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	lines, code, err := c.readEHLO()
	if err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if code/100 == 2 {
		c.ext = map[string]string{}
		for _, l := range lines[1:] {
			kw, param, _ := strings.Cut(l, " ")
			c.ext[strings.ToUpper(kw)] = param
		}
		return nil
	}
	if code == 500 || code == 502 || code == 504 || code == 550 {
		c.ext = map[string]string{}
		_, err := c.cmd("HELO", 2, "HELO %s", name)
		return err
	}
	return &replyError{r: &reply{code: code, text: truncate(printable(strings.Join(lines, " ")), maxReplyText)}, cmd: "EHLO"}
}

// readEHLO reads an EHLO reply keeping its lines apart.
func (c *client) readEHLO() ([]string, int, error) {
	c.conn.SetDeadline(time.Now().Add(c.cmdTimeout))
	var lines []string
	code := 0
	for i := 0; ; i++ {
		if i == maxReplyLines {
			return nil, 0, fmt.Errorf("%w: reply of more than %d lines", errProtocol, maxReplyLines)
		}
		line, err := c.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, 0, fmt.Errorf("%w: reply line longer than %d octets", errProtocol, maxReplyLine)
		} else if err != nil {
			return nil, 0, err
		}
		s := strings.TrimRight(string(line), "\r\n")
		if len(s) < 3 || (len(s) > 3 && s[3] != ' ' && s[3] != '-') {
			return nil, 0, fmt.Errorf("%w: malformed reply %q", errProtocol, truncate(s, 64))
		}
		n, err := strconv.Atoi(s[:3])
		if err != nil || n < 200 || n > 599 || (code != 0 && n != code) {
			return nil, 0, fmt.Errorf("%w: malformed reply %q", errProtocol, truncate(s, 64))
		}
		code = n
		if len(s) > 4 {
			lines = append(lines, s[4:])
		} else {
			lines = append(lines, "")
		}
		if len(s) == 3 || s[3] == ' ' {
			return lines, code, nil
		}
	}
}

func (c *client) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// maxSize is the SIZE the server announced (RFC 1870), 0 if none.
func (c *client) maxSize() int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(c.ext["SIZE"]), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// startTLS upgrades the connection (RFC 3207). Buffered input is discarded
// first: anything the server sent before the handshake is not to be trusted
// (the client-side twin of the STARTTLS command injection).
func (c *client) startTLS(cfg *tls.Config) error {
	if _, err := c.cmd("STARTTLS", 2, "STARTTLS"); err != nil {
		return err
	}
	if c.br.Buffered() > 0 {
		return fmt.Errorf("STARTTLS: %w: data after the 220 reply", errProtocol)
	}
	tc := tls.Client(c.conn, cfg)
	c.conn.SetDeadline(time.Now().Add(c.cmdTimeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.setConn(tc)
	c.tls = true
	c.ext = nil
	return nil
}

// authPlain logs in with SASL PLAIN (RFC 4616) as one command with its
// initial response (RFC 4954 §4).
func (c *client) authPlain(user, pass string) error {
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	_, err := c.cmd("AUTH PLAIN", 2, "AUTH PLAIN %s", resp)
	return err
}

// quit ends the session politely; its errors do not matter any more.
func (c *client) quit() {
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if c.send("QUIT") == nil && c.flush() == nil {
		c.readReply()
	}
}

// deadlineWriter pushes the write deadline forward before each write, so
// that a slow but steady transfer lives while a stalled one dies.
type deadlineWriter struct {
	conn    net.Conn
	w       io.Writer
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.w.Write(p)
}

// writeData sends the message after a 354 and reads the final reply. The
// body is dot-stuffed; storage keeps messages with CRLF line ends.
func (c *client) writeData(body io.Reader) (*reply, error) {
	// RFC 5321 §4.5.3.2.5: 3 minutes per data block.
	dw := textproto.NewWriter(bufio.NewWriterSize(&deadlineWriter{conn: c.conn, w: c.conn, timeout: 3 * time.Minute}, 32<<10)).DotWriter()
	if _, err := io.Copy(dw, body); err != nil {
		return nil, fmt.Errorf("DATA: %w", err)
	}
	if err := dw.Close(); err != nil {
		return nil, fmt.Errorf("DATA: %w", err)
	}
	// RFC 5321 §4.5.3.2.6: 10 minutes for the reply to the final dot.
	c.conn.SetDeadline(time.Now().Add(c.dataTimeout))
	r, err := c.readReply()
	if err != nil {
		return nil, fmt.Errorf("end of DATA: %w", err)
	}
	if r.code/100 != 2 {
		return r, &replyError{r: r, cmd: "end of DATA"}
	}
	return r, nil
}
