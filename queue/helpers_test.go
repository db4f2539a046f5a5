package queue_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"pombo/queue"
	"pombo/storage"
	"pombo/testutil"
)

// received is one message a remote server accepted.
type received struct {
	from  string
	rcpts []string
	data  []byte
	helo  string
	tls   bool
	user  string
	mail  smtp.MailOptions
}

// remote is an SMTP server standing for another MTA. Its hooks decide the
// replies; by default it takes everything.
type remote struct {
	t    testing.TB
	srv  *smtp.Server
	addr string

	mu       sync.Mutex
	got      []received
	sessions int
	rcptLog  [][]string // RCPT TO addresses seen, per session

	onMail func(from string) error
	onRcpt func(to string) error
	onData func(c *smtp.Conn, data []byte) error
	// dropMidData is the number of sessions whose connection is closed
	// after a few octets of DATA.
	dropMidData int
	// user and pass enable AUTH PLAIN.
	user, pass string
}

func (r *remote) NewSession(c *smtp.Conn) (smtp.Session, error) {
	r.mu.Lock()
	r.sessions++
	r.rcptLog = append(r.rcptLog, nil)
	idx := len(r.rcptLog) - 1
	r.mu.Unlock()
	return &remoteSession{r: r, c: c, idx: idx}, nil
}

type remoteSession struct {
	r     *remote
	c     *smtp.Conn
	idx   int
	from  string
	mail  smtp.MailOptions
	rcpts []string
	user  string
}

func (s *remoteSession) AuthMechanisms() []string {
	if s.r.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *remoteSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.r.user || password != s.r.pass {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *remoteSession) Mail(from string, opts *smtp.MailOptions) error {
	if s.r.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	if s.r.onMail != nil {
		if err := s.r.onMail(from); err != nil {
			return err
		}
	}
	s.from = from
	if opts != nil {
		s.mail = *opts
	}
	return nil
}

func (s *remoteSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	s.r.rcptLog[s.idx] = append(s.r.rcptLog[s.idx], to)
	s.r.mu.Unlock()
	if s.r.onRcpt != nil {
		if err := s.r.onRcpt(to); err != nil {
			return err
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *remoteSession) Data(r io.Reader) error {
	s.r.mu.Lock()
	drop := s.r.dropMidData > 0
	if drop {
		s.r.dropMidData--
	}
	s.r.mu.Unlock()
	if drop {
		io.ReadFull(r, make([]byte, 100))
		s.c.Conn().Close()
		return errors.New("dropped")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.r.onData != nil {
		if err := s.r.onData(s.c, data); err != nil {
			return err
		}
	}
	_, isTLS := s.c.TLSConnectionState()
	s.r.mu.Lock()
	s.r.got = append(s.r.got, received{from: s.from, rcpts: s.rcpts, data: data, helo: s.c.Hostname(), tls: isTLS, user: s.user, mail: s.mail})
	s.r.mu.Unlock()
	return nil
}

func (s *remoteSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *remoteSession) Logout() error { return nil }

func (r *remote) messages() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *remote) sessionCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions
}

// countByMessageID counts accepted copies per Message-ID and recipient.
func (r *remote) countByMessageID(t testing.TB) map[string]int {
	n := map[string]int{}
	for _, m := range r.messages() {
		h, err := textproto.ReadHeader(bufioReader(m.data))
		if err != nil {
			t.Fatalf("remote got an unparsable message: %v", err)
		}
		for _, rc := range m.rcpts {
			n[h.Get("Message-Id")+" "+rc]++
		}
	}
	return n
}

// startRemote serves r on l until the test ends.
func startRemote(t testing.TB, l net.Listener, r *remote, tlsConf *tls.Config) *remote {
	t.Helper()
	r.t = t
	s := smtp.NewServer(r)
	s.Domain = "remote.test"
	s.AllowInsecureAuth = true
	s.TLSConfig = tlsConf
	s.MaxMessageBytes = 10 << 20
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.ErrorLog = nopLogger{}
	r.srv = s
	r.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return r
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// listenSamePort listens on one port on every given loopback address, so
// that "hosts" of a test differ by address and share the port the queue
// dials (Options.Port).
func listenSamePort(t testing.TB, ips ...string) (int, []net.Listener) {
	t.Helper()
	for try := 0; try < 50; try++ {
		first, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{first}
		ok := true
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
			if err != nil {
				if !errors.Is(err, syscall.EADDRINUSE) {
					t.Fatal(err)
				}
				ok = false
				break
			}
			ls = append(ls, l)
		}
		if ok {
			t.Cleanup(func() {
				for _, l := range ls {
					l.Close()
				}
			})
			return port, ls
		}
		for _, l := range ls {
			l.Close()
		}
	}
	t.Fatal("no common free port")
	return 0, nil
}

// env is a queue under test: real storage in a temp dir, a DNS server, a
// local user alice@example.org who sends.
type env struct {
	t       testing.TB
	dir     string
	st      *storage.Store
	dns     *testutil.DNS
	q       *queue.Queue
	opts    queue.Options
	aliceID int64
}

func newEnv(t testing.TB, port int) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), dns: testutil.StartDNS(t)}
	st, err := storage.Open(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	t.Cleanup(func() { e.st.Close() })
	ctx := context.Background()
	if err := st.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	u, err := st.AddUser(ctx, "alice@example.org", "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	e.aliceID = u.ID
	e.opts = queue.Options{
		Store:          st,
		Log:            testutil.Logger(),
		Hostname:       "mx.example.org",
		Workers:        4,
		RetryInitial:   time.Second,
		RetryMax:       2 * time.Second,
		GiveUpAfter:    time.Hour,
		Resolver:       e.dns.Addr,
		Port:           port,
		PollInterval:   time.Second,
		DialTimeout:    5 * time.Second,
		CommandTimeout: 10 * time.Second,
		DataTimeout:    10 * time.Second,
		StopGrace:      2 * time.Second,
	}
	return e
}

// start makes and starts the queue with e.opts.
func (e *env) start() *queue.Queue {
	e.t.Helper()
	e.q = queue.New(e.opts)
	if err := e.q.Start(); err != nil {
		e.t.Fatal(err)
	}
	q := e.q
	e.t.Cleanup(func() { q.Close() })
	return q
}

// reopen closes the queue and the store and opens them again, as a restart.
func (e *env) reopen() {
	e.t.Helper()
	if e.q != nil {
		if err := e.q.Close(); err != nil {
			e.t.Fatal(err)
		}
	}
	e.st.Close()
	st, err := storage.Open(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	e.opts.Store = st
}

var msgSeq struct {
	sync.Mutex
	n int
}

// testMessage returns a small message with a unique Message-ID.
func testMessage(subject string) ([]byte, string) {
	msgSeq.Lock()
	msgSeq.n++
	n := msgSeq.n
	msgSeq.Unlock()
	id := fmt.Sprintf("<m%d.%d@example.org>", n, time.Now().UnixNano())
	return []byte("From: Alice <alice@example.org>\r\n" +
		"To: Bob <bob@remote.test>\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"Message-ID: " + id + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Hello Bob,\r\n.leading dot must survive\r\n\r\nbye\r\n"), id
}

func (e *env) enqueue(from string, rcpts []string, msg []byte) int64 {
	e.t.Helper()
	id, err := e.q.Enqueue(context.Background(), from, e.aliceID, rcpts, bytes.NewReader(msg), queue.EnqueueOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) queueLen() int {
	l, err := e.st.QueueList(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return len(l)
}

func (e *env) waitEmpty(d time.Duration) {
	e.t.Helper()
	waitFor(e.t, d, "an empty queue", func() bool { return e.queueLen() == 0 })
}

// inbox returns the raw messages in alice's INBOX.
func (e *env) inbox() [][]byte {
	e.t.Helper()
	ctx := context.Background()
	mb, err := e.st.MailboxByName(ctx, e.aliceID, "INBOX")
	if err != nil {
		e.t.Fatal(err)
	}
	var out [][]byte
	err = e.st.Messages(ctx, mb.ID, nil, func(m *storage.Message) error {
		r, err := e.st.OpenMessage(ctx, m.ID)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(r)
		out = append(out, b)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// dsn is a parsed delivery status notification.
type dsn struct {
	header     message.Header
	text       string
	perMessage textproto.Header
	perRcpt    []textproto.Header
	statusType string
	original   textproto.Header
	origType   string
}

// parseDSN checks the RFC 3464 structure of a report and returns its parts.
func parseDSN(t testing.TB, raw []byte) *dsn {
	t.Helper()
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("DSN does not parse: %v\n%s", err, raw)
	}
	mt, params, _ := ent.Header.ContentType()
	if mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN Content-Type %s %v", mt, params)
	}
	d := &dsn{header: ent.Header}
	mr := ent.MultipartReader()
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			if i != 3 {
				t.Fatalf("DSN has %d parts, want 3", i)
			}
			return d
		} else if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := p.Header.ContentType()
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			if pt != "text/plain" {
				t.Fatalf("DSN part 1 is %s", pt)
			}
			d.text = string(body)
		case 1:
			d.statusType = pt
			br := bufioReader(body)
			if d.perMessage, err = textproto.ReadHeader(br); err != nil {
				t.Fatalf("per-message fields: %v\n%s", err, body)
			}
			for {
				h, err := textproto.ReadHeader(br)
				if err != nil || h.Len() == 0 {
					break
				}
				d.perRcpt = append(d.perRcpt, h)
			}
		case 2:
			d.origType = pt
			d.original, err = textproto.ReadHeader(bufioReader(append(body, "\r\n"...)))
			if err != nil {
				t.Fatalf("original header: %v\n%s", err, body)
			}
		}
	}
}

// waitDSN waits for n messages in alice's INBOX and parses the last.
func (e *env) waitDSN(n int) *dsn {
	e.t.Helper()
	var box [][]byte
	waitFor(e.t, 20*time.Second, "a DSN in the INBOX", func() bool { box = e.inbox(); return len(box) >= n })
	if len(box) != n {
		e.t.Fatalf("INBOX has %d messages, want %d", len(box), n)
	}
	return parseDSN(e.t, box[n-1])
}

func (d *dsn) rcpt(t testing.TB, addr string) *textproto.Header {
	t.Helper()
	for i := range d.perRcpt {
		if strings.EqualFold(d.perRcpt[i].Get("Final-Recipient"), "rfc822; "+addr) {
			return &d.perRcpt[i]
		}
	}
	t.Fatalf("DSN has no Final-Recipient %s", addr)
	return nil
}

// selfSigned returns a TLS certificate for the names and IPs given, and a
// pool that trusts it.
func selfSigned(t testing.TB, names []string, ips []net.IP) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              names,
		IPAddresses:           ips,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
