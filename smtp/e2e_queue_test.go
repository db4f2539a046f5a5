package smtp_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"pombo/testutil"
)

// listenOrFail binds addr (a port-25 address on a loopback alias): it
// skips the test locally when that is impossible, and fails it under CI.
func listenOrFail(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot bind %s: %v", addr, err)
		}
		t.Skipf("cannot bind %s: %v", addr, err)
	}
	return l
}

// buildPombo builds the real binary into a temp dir.
func buildPombo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pombo")
	out, err := exec.Command("go", "build", "-o", bin, "pombo/cmd/pombo").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// recorder is a go-smtp backend standing for a remote MX. It counts a
// Message-ID only once the message's DATA is complete (the final dot read,
// the 250 about to go out), and it is slow before that dot: in RCPT, when
// the sender has not sent a byte of the message yet. Its gate, once shut,
// holds every new RCPT until it is opened again.
type recorder struct {
	// rcptDelay, when set, is how long each RCPT takes.
	rcptDelay func() time.Duration
	// shutAt: the gate shuts when this many distinct Message-IDs have
	// arrived (0: never).
	shutAt int
	// arrived, when set, is called (under mu) with the number of distinct
	// Message-IDs each time a new one arrives.
	arrived func(distinct int)

	mu       sync.Mutex
	count    map[string]int
	gate     chan struct{} // nil: open; else RCPT waits until it is closed
	atGate   int           // sessions waiting at the gate now
	sessions int           // sessions open now
	gated    int           // sessions that waited at the gate and have ended
	gatedGot int           // ...of which a message nevertheless arrived
	aborted  int           // DATA cut short (the sender died)
}

func newRecorder() *recorder { return &recorder{count: map[string]int{}} }

func (r *recorder) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions++
	return &recSession{r: r}, nil
}

func (r *recorder) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.count))
	for k, v := range r.count {
		m[k] = v
	}
	return m
}

// state reads one of the recorder's counters under its lock.
func (r *recorder) state(f func(r *recorder) int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f(r)
}

// shut closes the gate now.
func (r *recorder) shut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate == nil {
		r.gate = make(chan struct{})
	}
}

// open lets the sessions held at the gate go on; the gate stays open.
func (r *recorder) open() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate != nil {
		close(r.gate)
		r.gate = nil
	}
	r.shutAt = 0
}

type recSession struct {
	r     *recorder
	gated bool // waited at the gate
	got   bool // a message arrived in this session
}

func (s *recSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *recSession) Reset()                                 {}

// Rcpt: RFC 2920 pipelining puts MAIL, RCPT and DATA in one write, but the
// sender waits for 354 before it sends the message, so a session held here
// has not sent a byte of it.
func (s *recSession) Rcpt(string, *gosmtp.RcptOptions) error {
	r := s.r
	r.mu.Lock()
	g := r.gate
	if g != nil {
		s.gated = true
		r.atGate++
	}
	r.mu.Unlock()
	if g != nil {
		<-g
		r.mu.Lock()
		r.atGate--
		r.mu.Unlock()
	}
	if r.rcptDelay != nil {
		time.Sleep(r.rcptDelay())
	}
	return nil
}

func (s *recSession) Logout() error {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions--
	if s.gated {
		r.gated++
		if s.got {
			r.gatedGot++
		}
	}
	return nil
}

var messageIDRe = regexp.MustCompile(`(?im)^Message-ID:\s*(<[^>]+>)`)

func (s *recSession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	r := s.r
	if err != nil {
		// No final dot: the sender has no 250, and this is not a delivery.
		r.mu.Lock()
		r.aborted++
		r.mu.Unlock()
		return err
	}
	m := messageIDRe.FindSubmatch(b)
	if m == nil {
		return &gosmtp.SMTPError{Code: 550, Message: "no Message-ID"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.got = true
	id := string(m[1])
	r.count[id]++
	if r.count[id] > 1 {
		return nil
	}
	if r.shutAt > 0 && len(r.count) >= r.shutAt && r.gate == nil {
		r.gate = make(chan struct{})
	}
	if r.arrived != nil {
		r.arrived(len(r.count))
	}
	return nil
}

// serveRemote runs rec as the MX of c.test on 127.0.0.4:25 and returns a
// DNS server that says so.
func serveRemote(t *testing.T, rec *recorder) *testutil.DNS {
	t.Helper()
	l := listenOrFail(t, "127.0.0.4:25")
	srv := gosmtp.NewServer(rec)
	srv.Domain = "mx.c.test"
	// The kill resets connections: that is the point, not news.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go srv.Serve(l)
	t.Cleanup(func() {
		rec.open() // no session may stay held
		srv.Close()
	})
	d := testutil.StartDNS(t)
	d.AddMX("c.test", 10, "mx.c.test")
	d.AddIP("mx.c.test", "127.0.0.4")
	return d
}

// waitFor polls cond until it holds, and fails the test after 30 s.
func waitFor(t *testing.T, p *pomboProc, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s\n%s", what, p.log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pomboProc runs `pombo serve` as a child process.
type pomboProc struct {
	t       *testing.T
	bin     string
	config  string
	subAddr string
	cmd     *exec.Cmd
	log     *syncBuffer // this run's output
}

func (p *pomboProc) run(stdin string, args ...string) string {
	p.t.Helper()
	cmd := exec.Command(p.bin, append([]string{"--config", p.config}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("pombo %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (p *pomboProc) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, "--config", p.config, "serve")
	p.log = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", p.subAddr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("pombo serve did not listen on %s: %v\n%s", p.subAddr, err, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *pomboProc) kill() {
	if p.cmd != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
}

// startPomboProc writes A's config (a.test, alice, its queue with that
// many workers) and starts it.
func startPomboProc(t *testing.T, dnsAddr string, workers int) *pomboProc {
	t.Helper()
	dir := t.TempDir()
	p := &pomboProc{t: t, bin: buildPombo(t), config: filepath.Join(dir, "a.toml"), subAddr: freeAddr(t)}
	conf := fmt.Sprintf(`hostname = "mx.a.test"
data_dir = %q
[smtp]
listen = []
[submission]
listen = [%q]
tls_listen = []
[imap]
listen = []
tls_listen = []
[pop3]
listen = []
tls_listen = []
[http]
listen = []
[dns]
resolver = %q
[queue]
workers = %d
retry_initial = "1s"
retry_max = "2s"
`, filepath.Join(dir, "data"), p.subAddr, dnsAddr, workers)
	if err := os.WriteFile(p.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p.run("", "domain", "add", "a.test")
	p.run("alice-password\n", "user", "add", "alice@a.test", "--password-stdin")
	t.Cleanup(p.kill)
	p.start()
	return p
}

// queueLen is the number of messages in A's queue, by the CLI.
func (p *pomboProc) queueLen() int {
	p.t.Helper()
	var q []json.RawMessage
	out := p.run("", "queue", "list", "--json")
	if err := json.Unmarshal([]byte(out), &q); err != nil {
		p.t.Fatalf("queue list --json: %v\n%s", err, out)
	}
	return len(q)
}

// submitN submits n messages from alice to x@c.test through A's submission
// port and returns their Message-IDs.
func submitN(t *testing.T, a *pomboProc, tag string, n int) []string {
	t.Helper()
	r := dialRaw(t, a.subAddr)
	r.ehlo()
	r.send("AUTH PLAIN " + plain("", "alice@a.test", "alice-password") + "\r\n")
	r.expect("235 ")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("<%s-%d@a.test>", tag, i)
		r.send("MAIL FROM:<alice@a.test>\r\nRCPT TO:<x@c.test>\r\nDATA\r\n")
		r.expect("250 ")
		r.expect("250 ")
		r.expect("354 ")
		r.send("From: <alice@a.test>\r\nTo: <x@c.test>\r\nSubject: " + fmt.Sprint(i) + "\r\nMessage-ID: " + ids[i] + "\r\n\r\nbody\r\n.\r\n")
		r.expect("250 ")
	}
	r.send("QUIT\r\n")
	r.expect("221 ")
	return ids
}

// drain waits until the remote has n distinct messages and A's queue is
// empty (nothing can be sent again after that), and returns what the
// remote got.
func drain(t *testing.T, a *pomboProc, rec *recorder, n int) map[string]int {
	t.Helper()
	waitFor(t, a, fmt.Sprintf("the remote has all %d messages", n), func() bool { return len(rec.snapshot()) >= n })
	waitFor(t, a, "A's queue is empty", func() bool { return a.queueLen() == 0 })
	return rec.snapshot()
}

// countArrivals reports lost and unknown messages as errors, and returns
// how many copies arrived beyond the first.
func countArrivals(t *testing.T, ids []string, got map[string]int) (dups int) {
	t.Helper()
	for _, id := range ids {
		switch c := got[id]; {
		case c == 0:
			t.Errorf("%s lost", id)
		case c > 1:
			dups += c - 1
			t.Logf("%s arrived %d times", id, c)
		}
	}
	if len(got) != len(ids) {
		t.Errorf("remote got %d distinct Message-IDs, want %d: %v", len(got), len(ids), got)
	}
	return dups
}

func sessionsOpen(r *recorder) int { return r.sessions }

// TestQueueKill9: A is killed with SIGKILL while every one of its queue
// workers is in a transaction with the remote, then restarted: each
// message arrives exactly once. The remote holds those transactions at
// RCPT, before A sends the message, so none of them can have arrived; and
// a message that did arrive was answered 250, which A records (MarkSent,
// committed) before the worker opens another session. Were the record
// missing, the restarted A would send those messages again.
func TestQueueKill9(t *testing.T) {
	const n, workers = 40, 4
	rec := newRecorder()
	rec.rcptDelay = func() time.Duration { return 5 * time.Millisecond }
	rec.shutAt = n / 4
	d := serveRemote(t, rec)
	a := startPomboProc(t, d.Addr, workers)
	ids := submitN(t, a, "kill9", n)

	waitFor(t, a, fmt.Sprintf("all %d queue workers wait at the remote's gate", workers), func() bool {
		return rec.state(func(r *recorder) int { return r.atGate }) == workers
	})
	a.kill()
	atKill := len(rec.snapshot())
	rec.open()
	waitFor(t, a, "the held sessions ended", func() bool { return rec.state(sessionsOpen) == 0 })
	if got := rec.state(func(r *recorder) int { return r.gated }); got != workers {
		t.Errorf("%d sessions waited at the gate, want %d", got, workers)
	}
	if got := rec.state(func(r *recorder) int { return r.gatedGot }); got != 0 {
		t.Errorf("%d held sessions delivered a message after A died", got)
	}
	if atKill < n/4 || atKill > n-workers {
		t.Fatalf("remote had %d of %d messages at the kill", atKill, n)
	}
	// Before the restart: A's queue holds exactly what the remote lacks.
	if q := a.queueLen(); q != n-atKill {
		t.Errorf("after the kill A's queue holds %d messages, the remote lacks %d", q, n-atKill)
	}

	a.start()
	got := drain(t, a, rec, n)
	a.kill()
	if dups := countArrivals(t, ids, got); dups != 0 {
		t.Errorf("%d duplicates, want none", dups)
	}
	t.Logf("%d delivered before the kill, %d held at the gate, %d transactions cut short", atKill, workers,
		rec.state(func(r *recorder) int { return r.aborted }))
}

// TestQueueKill9Anytime: A is killed at an arbitrary instant while its
// queue delivers to a remote that is slow before the final dot, then
// restarted. Nothing is lost. A message arrives twice only when the kill
// fell between its final dot and A's record of the 250 (RFC 5321 §6.1: a
// duplicate rather than a loss): those are exactly the messages the remote
// had but A still held after the kill, at most one per worker.
func TestQueueKill9Anytime(t *testing.T) {
	const n, workers = 40, 4
	// The kill comes jitter after the k-th arrival: around the 250 of
	// one message, while the other workers are somewhere in theirs.
	k := n/8 + rand.IntN(n/2-n/8)
	jitter := time.Duration(rand.IntN(3000)) * time.Microsecond
	t.Logf("kill %v after the %d-th arrival", jitter, k)
	reached := make(chan struct{})
	rec := newRecorder()
	rec.rcptDelay = func() time.Duration { return time.Duration(5+rand.IntN(30)) * time.Millisecond }
	rec.arrived = func(distinct int) {
		if distinct == k {
			close(reached)
		}
	}
	rec.shut() // until all messages are queued
	d := serveRemote(t, rec)
	a := startPomboProc(t, d.Addr, workers)
	ids := submitN(t, a, "anytime", n)
	rec.open()

	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatalf("the remote never got %d messages\n%s", k, a.log.String())
	}
	time.Sleep(jitter)
	a.kill()
	waitFor(t, a, "the remote's sessions ended", func() bool { return rec.state(sessionsOpen) == 0 })
	atKill := len(rec.snapshot())
	if atKill >= n {
		t.Fatalf("all %d messages delivered before the kill: the test proves nothing", n)
	}
	// Arrived at the remote, and not recorded as sent by A.
	unrecorded := a.queueLen() - (n - atKill)
	if unrecorded < 0 {
		t.Errorf("A recorded %d messages as sent that the remote does not have", -unrecorded)
	}

	a.start()
	got := drain(t, a, rec, n)
	a.kill()
	dups := countArrivals(t, ids, got)
	if dups != max(unrecorded, 0) {
		t.Errorf("%d duplicates, but %d delivered messages were still queued after the kill", dups, unrecorded)
	}
	if dups > workers {
		t.Errorf("%d duplicates, more than the %d deliveries that can be in flight", dups, workers)
	}
	t.Logf("%d delivered before the kill, %d duplicates, %d transactions cut short", atKill, dups,
		rec.state(func(r *recorder) int { return r.aborted }))
}

// mxP is where the private Postfix listens: the MX of p.test.
const mxP = "127.0.0.5"

// postfix is a private Postfix instance: its own configuration, queue and
// data directories, an smtpd on 127.0.0.5:25, every mail for p.test
// delivered into one Maildir, and mail for b.test relayed to pombo's MX on
// 127.0.0.3:25.
type postfix struct {
	dir     string
	maildir string
}

func startPostfix(t *testing.T) *postfix {
	t.Helper()
	bin := testutil.RequireTool(t, "postfix")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("Postfix needs root")
		}
		t.Skip("Postfix needs root")
	}
	listenOrFail(t, mxP+":25").Close()
	// Postfix's daemons run as the postfix user: the directories must be
	// reachable by it, which t.TempDir() (0700) is not.
	dir, err := os.MkdirTemp("", "pombo-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	mailBase := filepath.Join(dir, "mail")
	if err := os.Mkdir(mailBase, 0o755); err != nil {
		t.Fatal(err)
	}
	uid, gid := atoi(t, pfUser.Uid), atoi(t, pfUser.Gid)
	if err := os.Chown(mailBase, uid, gid); err != nil {
		t.Fatal(err)
	}
	// postfix start creates the queue's subdirectories, not the queue.
	if err := os.Mkdir(filepath.Join(dir, "queue"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
maillog_file = %[1]s/maillog
myhostname = mx.p.test
mydomain = p.test
myorigin = p.test
mydestination =
inet_interfaces = all
maillog_file_prefixes = %[1]s
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtp_host_lookup = native
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
virtual_mailbox_domains = p.test
virtual_mailbox_base = %[3]s
virtual_mailbox_maps = static:p.test/
virtual_uid_maps = static:%[4]d
virtual_gid_maps = static:%[5]d
transport_maps = inline:{ b.test=smtp:[%[6]s]:25 }
relay_domains = b.test
`, dir, mxP, mailBase, uid, gid, mxB)
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	// master.cf: Debian's, without chroot, without the pipe services,
	// with smtpd on 127.0.0.5:25 only.
	src, err := os.ReadFile("/etc/postfix/master.cf")
	if err != nil {
		t.Fatal(err)
	}
	var master strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		f := strings.Fields(line)
		if line == "" || line[0] == '#' || line[0] == ' ' || line[0] == '\t' || len(f) < 8 || f[7] == "pipe" {
			continue
		}
		f[4] = "n"
		if f[0] == "smtp" && f[1] == "inet" {
			f[0] = mxP + ":25"
		}
		master.WriteString(strings.Join(f, " ") + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(master.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Postfix writes its fatal errors to a terminal only: the log file
	// (maillog_file) is where they can be read.
	if out, err := exec.Command(bin, "-c", dir, "start").CombinedOutput(); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, b)
	}
	p := &postfix{dir: dir, maildir: filepath.Join(mailBase, "p.test")}
	t.Cleanup(func() {
		if out, err := exec.Command(bin, "-c", dir, "stop").CombinedOutput(); err != nil {
			t.Errorf("postfix stop: %v\n%s", err, out)
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "maillog"))
			t.Logf("Postfix log:\n%s", b)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", mxP+":25")
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix does not listen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitMaildir waits (at most 30 s) for a message containing want in the
// new/ directory of the Maildir, and returns it.
func (p *postfix) waitMaildir(t *testing.T, want string) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(p.maildir, "new", "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil && bytes.Contains(b, []byte(want)) {
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message with %q in %s (%d files)", want, p.maildir, len(files))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPostfixInterop: pombo and a real Postfix exchange mail both ways, by
// MX lookup from pombo and by transport map from Postfix.
func TestPostfixInterop(t *testing.T) {
	pf := startPostfix(t)
	ts := startA(t)
	ts.dns.AddMX("p.test", 10, "mx.p.test")
	ts.dns.AddIP("mx.p.test", mxP)
	b, bob := startB(t)

	t.Run("pombo to Postfix", func(t *testing.T) {
		r := dialRaw(t, ts.subA)
		r.ehlo()
		r.send("AUTH PLAIN " + plain("", "alice@a.test", "alice-password") + "\r\n")
		r.expect("235 ")
		r.send("MAIL FROM:<alice@a.test>\r\nRCPT TO:<someone@p.test>\r\nDATA\r\n")
		r.expect("250 ")
		r.expect("250 ")
		r.expect("354 ")
		r.send("From: <alice@a.test>\r\nTo: <someone@p.test>\r\nSubject: to postfix\r\n\r\nHello Postfix,\r\n..a dot-stuffed line\r\n.\r\n")
		r.expect("250 ")
		r.send("QUIT\r\n")
		got := pf.waitMaildir(t, "Subject: to postfix")
		for _, want := range []string{"\nHello Postfix,\n.a dot-stuffed line\n", "DKIM-Signature: ", "by mx.a.test (pombo) with ESMTPA id ", "by mx.p.test (Postfix) with ESMTP id "} {
			if !bytes.Contains(got, []byte(want)) {
				t.Errorf("Postfix's copy lacks %q:\n%s", want, got)
			}
		}
		ts.verifyDKIM(t, bytes.ReplaceAll(got, []byte("\n"), []byte("\r\n")))
	})

	t.Run("Postfix to pombo", func(t *testing.T) {
		r := dialRaw(t, mxP+":25")
		r.send("EHLO client.p.test\r\n")
		r.expect("250")
		r.send("MAIL FROM:<carol@p.test>\r\nRCPT TO:<bob@b.test>\r\nDATA\r\n")
		r.expect("250 ")
		r.expect("250 ")
		r.expect("354 ")
		r.send("From: <carol@p.test>\r\nTo: <bob@b.test>\r\nSubject: from postfix\r\n\r\nHello Bob,\r\nrelayed by Postfix.\r\n.\r\n")
		r.expect("250 ")
		r.send("QUIT\r\n")
		got := waitInbox(t, b, bob, 1)
		if len(got) != 1 {
			t.Fatalf("bob has %d messages", len(got))
		}
		data := got[0].data
		for _, want := range []string{"Subject: from postfix\r\n", "\r\n\r\nHello Bob,\r\nrelayed by Postfix.\r\n", "by mx.p.test (Postfix) with ESMTP id ", "by mx.b.test (pombo) with ESMTP id "} {
			if !bytes.Contains(data, []byte(want)) {
				t.Errorf("bob's copy lacks %q:\n%s", want, data)
			}
		}
	})
}
