package smtp

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"pombo/auth"
)

// conn is one TCP connection as accepted, under TLS when there is TLS. It
// outlives go-smtp's Sessions (STARTTLS starts a new one) and carries what
// the per-connection log line says.
type conn struct {
	net.Conn
	s     *Server
	id    string
	ip    netip.Addr
	start time.Time

	// closeAfterWrite makes the next write (the reply to the command being
	// handled) the last: the connection is closed right after it. TLS
	// records of a reply are written in one piece, so this works under
	// STARTTLS too.
	closeAfterWrite atomic.Bool
	closeOnce       sync.Once
	// readFailed is set once a read returned an error (EOF included).
	readFailed atomic.Bool

	mu      sync.Mutex // the fields below; BDAT runs Data in its own goroutine
	helo    string
	tls     string
	errors  int
	refusal string // the last refused command's reply code, e.g. "554 5.7.1"
	msgs    int    // messages accepted
	// The last transaction that reached DATA/BDAT, for the log line...
	data *txnLog
	// ...or else the last one that got as far as MAIL.
	mail *txnLog
}

// txnLog is what the log line says of a transaction.
type txnLog struct {
	from   string
	rcpts  []string
	size   int64
	result string
}

func (s *Server) newConn(c net.Conn) *conn {
	return &conn{Conn: c, s: s, id: newID(), ip: ipOf(c.RemoteAddr()), start: time.Now()}
}

// connOf finds the *conn under go-smtp's connection (plain, or TLS over it).
func connOf(gc *gosmtp.Conn) *conn {
	nc := gc.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.readFailed.Store(true)
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		// go-smtp goes on reading after a timeout in the middle of a BDAT
		// chunk; what follows would be taken for commands. A timeout ends
		// the connection after the reply, wherever it happened.
		c.closeAfterWrite.Store(true)
	}
	return n, err
}

// Write writes a reply line (go-smtp writes and flushes each on its own;
// the server's netbuf layer below coalesces them into one write call).
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.closeAfterWrite.Load() {
		c.Close()
	}
	return n, err
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(c.logSession)
	return err
}

// abort closes the connection right after the reply to the current command,
// and makes any read that would come first (go-smtp drains the rest of a
// message before it replies) fail at once.
func (c *conn) abort() {
	c.closeAfterWrite.Store(true)
	c.Conn.SetReadDeadline(time.Now())
}

// countError records one refused command; it reports whether the limit is
// reached and the connection must go.
func (c *conn) countError(e *gosmtp.SMTPError) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors++
	c.refusal = fmt.Sprintf("%d %d.%d.%d", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2])
	max := c.s.opts.Limits.MaxErrors
	return max > 0 && c.errors >= max
}

// logSession writes the one line an operator reads per connection: from,
// rcpts, size and result are those of the last transaction that reached
// DATA (else of the last MAIL, result "no data"); msgs counts the messages
// accepted over the whole connection, errors the refused commands, the last
// of which is last_refusal.
func (c *conn) logSession() {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.data
	switch {
	case t == nil && c.mail != nil:
		t = c.mail
		t.result = "no data"
	case t == nil:
		t = &txnLog{result: "no mail"}
	}
	c.s.log.Info("smtp session",
		"id", c.id, "ip", c.ip.String(), "helo", c.helo, "tls", c.tls,
		"from", t.from, "rcpts", strings.Join(t.rcpts, ","), "size", t.size, "result", t.result,
		"msgs", c.msgs, "errors", c.errors, "last_refusal", c.refusal, "dur", time.Since(c.start).Round(time.Millisecond))
}

// setTLS records the TLS state for the log line.
func (c *conn) setTLS(st tls.ConnectionState, ok bool) {
	if !ok {
		return
	}
	c.mu.Lock()
	c.tls = tls.VersionName(st.Version)
	c.mu.Unlock()
}

func (c *conn) setHelo(h string) {
	c.mu.Lock()
	c.helo = h
	c.mu.Unlock()
}

// logMail records a new transaction (MAIL accepted).
func (c *conn) logMail(from string) {
	c.mu.Lock()
	c.mail = &txnLog{from: from}
	c.mu.Unlock()
}

// logRcpt records an accepted recipient.
func (c *conn) logRcpt(to string) {
	c.mu.Lock()
	if c.mail != nil {
		c.mail.rcpts = append(c.mail.rcpts, to)
	}
	c.mu.Unlock()
}

// logData records the outcome of the current transaction.
func (c *conn) logData(from string, rcpts []string, size int64, result string, accepted bool) {
	c.mu.Lock()
	c.data = &txnLog{from: from, rcpts: rcpts, size: size, result: result}
	c.mail = nil
	if accepted {
		c.msgs++
	}
	c.mu.Unlock()
}

func ipOf(a net.Addr) netip.Addr { return auth.IPFromAddr(a) }

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns a short random identifier for logs and Received ids.
func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// logAttrs are the attributes of a connection for its other log lines.
func (c *conn) logAttrs() []any {
	return []any{"id", c.id, "ip", c.ip.String()}
}
