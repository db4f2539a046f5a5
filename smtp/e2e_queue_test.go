package smtp_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
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

// recorder is a go-smtp backend that counts each Message-ID it accepted,
// slowly, so that the sender's queue has deliveries in flight.
type recorder struct {
	mu    sync.Mutex
	count map[string]int
	delay time.Duration
}

func (r *recorder) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &recSession{r: r}, nil }

func (r *recorder) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.count))
	for k, v := range r.count {
		m[k] = v
	}
	return m
}

type recSession struct{ r *recorder }

func (s *recSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *recSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *recSession) Reset()                                 {}
func (s *recSession) Logout() error                          { return nil }

var messageIDRe = regexp.MustCompile(`(?im)^Message-ID:\s*(<[^>]+>)`)

func (s *recSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	time.Sleep(s.r.delay)
	m := messageIDRe.FindSubmatch(b)
	if m == nil {
		return &gosmtp.SMTPError{Code: 550, Message: "no Message-ID"}
	}
	s.r.mu.Lock()
	s.r.count[string(m[1])]++
	s.r.mu.Unlock()
	return nil
}

// pomboProc runs `pombo serve` as a child process.
type pomboProc struct {
	t       *testing.T
	bin     string
	config  string
	subAddr string
	cmd     *exec.Cmd
	log     bytes.Buffer
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
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
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

// startPomboProc writes A's config (a.test, alice) and starts it.
func startPomboProc(t *testing.T, dnsAddr string) *pomboProc {
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
retry_initial = "1s"
retry_max = "2s"
`, filepath.Join(dir, "data"), p.subAddr, dnsAddr)
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

// TestQueueKill9: A is killed with SIGKILL while its queue delivers to a
// slow remote; once restarted it delivers the rest. No message is lost,
// and only the ones in flight at the kill may arrive twice.
func TestQueueKill9(t *testing.T) {
	const mxC = "127.0.0.4:25"
	l := listenOrFail(t, mxC)
	rec := &recorder{count: map[string]int{}, delay: 100 * time.Millisecond}
	srv := gosmtp.NewServer(rec)
	srv.Domain = "mx.c.test"
	// The kill resets connections: that is the point, not news.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	d := testutil.StartDNS(t)
	d.AddMX("c.test", 10, "mx.c.test")
	d.AddIP("mx.c.test", "127.0.0.4")
	a := startPomboProc(t, d.Addr)

	const n = 40
	r := dialRaw(t, a.subAddr)
	r.ehlo()
	r.send("AUTH PLAIN " + plain("", "alice@a.test", "alice-password") + "\r\n")
	r.expect("235 ")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("<kill9-%d@a.test>", i)
		r.send("MAIL FROM:<alice@a.test>\r\nRCPT TO:<x@c.test>\r\nDATA\r\n")
		r.expect("250 ")
		r.expect("250 ")
		r.expect("354 ")
		r.send("From: <alice@a.test>\r\nTo: <x@c.test>\r\nSubject: " + fmt.Sprint(i) + "\r\nMessage-ID: " + ids[i] + "\r\n\r\nbody\r\n.\r\n")
		r.expect("250 ")
	}
	r.send("QUIT\r\n")

	// Kill A once the remote has a part of the messages.
	deadline := time.Now().Add(20 * time.Second)
	for len(rec.snapshot()) < n/4 {
		if time.Now().After(deadline) {
			t.Fatalf("remote got %d messages before the kill\n%s", len(rec.snapshot()), a.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.kill()
	atKill := len(rec.snapshot())
	if atKill >= n {
		t.Fatalf("all %d messages delivered before the kill: the test proves nothing", n)
	}
	a.log.Reset()
	a.start()

	deadline = time.Now().Add(30 * time.Second)
	for {
		if len(rec.snapshot()) >= n && a.queueLen() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote has %d of %d, queue holds %d\n%s", len(rec.snapshot()), n, a.queueLen(), a.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.kill()
	got := rec.snapshot()
	dups := 0
	for _, id := range ids {
		switch c := got[id]; {
		case c == 0:
			t.Errorf("%s lost", id)
		case c > 1:
			dups += c - 1
			t.Logf("%s arrived %d times (in flight at the kill)", id, c)
		}
	}
	if len(got) != n {
		t.Errorf("remote got %d distinct Message-IDs, want %d: %v", len(got), n, got)
	}
	// Default queue workers: at most that many deliveries were in flight.
	const workers = 4
	if dups > workers {
		t.Errorf("%d duplicates, more than the %d deliveries that can be in flight", dups, workers)
	}
	t.Logf("%d delivered before the kill, %d duplicates", atKill, dups)
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
