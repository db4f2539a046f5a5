// Command smtpbench measures pombo's inbound SMTP against a Postfix instance
// of its own, the same way in the same run: smtp-source (shipped with
// Debian's postfix) sends N messages of a given size over S parallel
// sessions, one message per connection, to alice@example.test; we time it
// and read the server's CPU time from /proc.
//
//   - pombo: the real binary (`pombo --config FILE serve`), SQLite with
//     synchronous=FULL, so every message is durable before its 250. CPU is
//     the utime+stime delta of the pombo process.
//   - Postfix: a separate instance (config_directory and queue_directory in
//     the work directory, listening on loopback) delivering into a Maildir
//     through virtual_mailbox_*. Postfix fsyncs its queue file before the
//     250 and delivers afterwards; its figures include that delivery (the
//     run ends when the last message is in the Maildir). CPU is the sum over
//     master and its children, live ones and reaped ones (cutime+cstime).
//
// Each server is measured with an empty INBOX and with one of -fill
// messages. Run it through run.sh, which builds pombo first. Needs root (for
// Postfix's master).
//
// By default the servers and smtp-source share every CPU, so the load
// generator's own work (about 0.3 ms of CPU per message) is taken from the
// server under test, the lighter server losing the larger share. -pin 0:1
// runs the servers on CPU 0 and smtp-source on CPU 1 (taskset; children
// inherit it, Postfix's included): each server's rate on one core of its
// own.
//
// Disk KB/msg is what the block device under the work directory was given
// to write during a run (/proc/diskstats), after a sync at both ends so
// that a server's late writeback is counted in its own run. It counts every
// writer of the device: a figure for a quiet machine.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"pombo/auth"
	"pombo/bench/internal/proc"
	"pombo/storage"
)

var (
	pomboBin   = flag.String("pombo", "", "pombo binary (run.sh builds it)")
	sourceBin  = flag.String("smtp-source", "/usr/sbin/smtp-source", "smtp-source binary")
	postfixBin = flag.String("postfix", "/usr/sbin/postfix", "postfix command")
	sizesFlag  = flag.String("sizes", "4096,65536", "message payload sizes (smtp-source -l)")
	sessFlag   = flag.String("sessions", "1,10,50", "parallel sessions (smtp-source -s)")
	count      = flag.Int("n", 2000, "messages per run of 4 KB")
	count64    = flag.Int("n64", 1000, "messages per run of 64 KB and more")
	fill       = flag.Int("fill", 100000, "messages already in the INBOX for the full runs")
	states     = flag.String("states", "empty,full", "mailbox states to run: empty, full")
	repeat     = flag.Int("repeat", 3, "runs of each measurement (the median is reported)")
	servers    = flag.String("servers", "pombo,postfix", "servers to run")
	workDir    = flag.String("work", "", "work directory (default: a new temp dir, removed at the end)")
	cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of pombo's server (its last run) to this file")
	pomboPort  = flag.Int("pombo-port", 26251, "loopback port for pombo")
	pfPort     = flag.Int("postfix-port", 26252, "loopback port for Postfix")
	pin        = flag.String("pin", "", "SERVER:LOAD, CPU lists for taskset: the servers run on SERVER's CPUs and smtp-source on LOAD's (e.g. 0:1); empty: no pinning")
)

// pinCPUs is -pin split into its sides (serverSide, loadSide); nil when
// not pinning.
var pinCPUs []string

const (
	serverSide = 0
	loadSide   = 1
)

// parsePin checks -pin and sets pinCPUs.
func parsePin() error {
	if *pin == "" {
		return nil
	}
	cpus := strings.SplitN(*pin, ":", 2)
	if len(cpus) != 2 || cpus[0] == "" || cpus[1] == "" {
		return fmt.Errorf("-pin %q: want SERVER:LOAD", *pin)
	}
	pinCPUs = cpus
	return nil
}

// pinned returns the command name and args, run by taskset on the CPUs of
// the given side of -pin when it is set.
func pinned(side int, name string, args ...string) *exec.Cmd {
	if pinCPUs == nil {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", pinCPUs[side], name}, args...)...)
}

type result struct {
	server, state   string
	size, sessions  int
	n               int
	accepted        time.Duration // smtp-source's run
	delivered       time.Duration // until the last message was in the mailbox
	cpu             time.Duration
	disk            int64 // octets written to the work directory's device; -1: unknown
	acceptRate, del float64
	// pairs, on pombo's result, are the rate ratios pombo / Postfix of
	// each repeat, the two runs of which came one after the other.
	pairs []float64
}

func main() {
	log.SetFlags(0)
	flag.Parse()
	if *pomboBin == "" {
		log.Fatal("-pombo is required (use bench/smtp/run.sh)")
	}
	if err := parsePin(); err != nil {
		log.Fatal(err)
	}
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	dir := *workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "smtpbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	// Postfix's daemons run as the postfix user and must reach their
	// directories inside it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	var results []result
	for _, state := range split(*states) {
		rs, err := runState(dir, state)
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}
	printTable(os.Stdout, results)
	return nil
}

// runState measures every size and session count with the INBOX in one
// state. Both servers run side by side and each measurement of one is
// followed by the same measurement of the other, so that both see the same
// machine (other work on it comes and goes).
func runState(dir, state string) ([]result, error) {
	nfill := 0
	if state == "full" {
		nfill = *fill
	}
	var targets []*target
	defer func() { stopAll(targets) }()
	for _, srv := range split(*servers) {
		var tg *target
		var err error
		switch srv {
		case "pombo":
			tg, err = startPombo(filepath.Join(dir, "pombo-"+state), nfill)
		case "postfix":
			tg, err = startPostfix(filepath.Join(dir, "postfix-"+state), nfill)
		default:
			err = fmt.Errorf("unknown server %q", srv)
		}
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", srv, state, err)
		}
		targets = append(targets, tg)
	}
	var results []result
	for _, size := range ints(*sizesFlag) {
		for _, s := range ints(*sessFlag) {
			runs := map[string][]result{}
			for i := 0; i < *repeat; i++ {
				for _, tg := range targets {
					r, err := runLoad(tg, dir, state, size, s, messagesFor(size))
					if err != nil {
						return nil, fmt.Errorf("%s (%s): %w", tg.name, state, err)
					}
					runs[tg.name] = append(runs[tg.name], r)
				}
			}
			var pairs []float64
			if p, q := runs["pombo"], runs["postfix"]; len(p) == len(q) {
				for i := range p {
					pairs = append(pairs, p[i].del/q[i].del)
				}
				sort.Float64s(pairs)
			}
			for _, tg := range targets {
				m := median(runs[tg.name])
				if tg.name == "pombo" {
					m.pairs = pairs
				}
				results = append(results, m)
			}
		}
	}
	return results, nil
}

// target is a running server under test.
type target struct {
	name    string
	port    int
	cpu     func() (time.Duration, error) // CPU time used so far
	inbox   func() (int, error)           // messages in alice's INBOX
	durable bool                          // 250 means stored (no delivery after it)
	stop    func()
}

func stopAll(ts []*target) {
	for _, t := range ts {
		t.stop()
	}
}

// median returns the run with the median delivery rate. It sorts a copy:
// the runs' order pairs each pombo run with the Postfix run after it.
func median(rs []result) result {
	rs = slices.Clone(rs)
	sort.Slice(rs, func(i, j int) bool { return rs[i].del < rs[j].del })
	return rs[len(rs)/2]
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func ints(s string) []int {
	var out []int
	for _, f := range split(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			log.Fatalf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out
}

func messagesFor(size int) int {
	if size > 4096 {
		return *count64
	}
	return *count
}

// ---- the load ----

// runLoad sends n messages of size octets over sessions parallel sessions,
// and returns when smtp-source has finished and the INBOX holds n more
// messages than before. The disk writes counted are those to the device of
// dir, the work directory.
func runLoad(tg *target, dir, state string, size, sessions, n int) (result, error) {
	r := result{server: tg.name, state: state, size: size, sessions: sessions, n: n}
	base, err := tg.inbox()
	if err != nil {
		return r, err
	}
	d0 := diskWritten(dir)
	c0, err := tg.cpu()
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	cmd := pinned(loadSide, *sourceBin, "-s", strconv.Itoa(sessions), "-m", strconv.Itoa(n), "-l", strconv.Itoa(size),
		"-f", "bench@remote.test", "-t", "alice@example.test", "-M", "client.bench.test",
		"127.0.0.1:"+strconv.Itoa(tg.port))
	if out, err := cmd.CombinedOutput(); err != nil {
		return r, fmt.Errorf("smtp-source: %v\n%s", err, out)
	}
	r.accepted = time.Since(t0)
	if ps := cmd.ProcessState; ps != nil {
		log.Printf("smtp-source CPU: user %v sys %v for %d messages in %v", ps.UserTime(), ps.SystemTime(), n, r.accepted)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		got, err := tg.inbox()
		if err != nil {
			return r, err
		}
		if got >= base+n {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("only %d of %d messages arrived", got-base, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.delivered = time.Since(t0)
	if tg.durable {
		// 250 means stored: the check above only verified it (through a
		// CLI run that should not count).
		r.delivered = r.accepted
	}
	c1, err := tg.cpu()
	if err != nil {
		return r, err
	}
	r.cpu = c1 - c0
	r.disk = -1
	if d0 >= 0 {
		if d1 := diskWritten(dir); d1 >= 0 {
			r.disk = d1 - d0
		}
	}
	r.acceptRate = float64(n) / r.accepted.Seconds()
	r.del = float64(n) / r.delivered.Seconds()
	log.Printf("%-7s %-5s %6d B x %5d, %2d sessions: %7.0f msg/s accepted, %7.0f msg/s delivered, %.2f ms CPU/msg, %s KB disk/msg",
		tg.name, state, size, n, sessions, r.acceptRate, r.del, ms(r.cpu)/float64(n), diskPerMsg(&r))
	return r, nil
}

// diskWritten syncs every file system, then returns the octets written so
// far to the device of dir (the work directory, which holds both servers'
// data), or -1 when it has no counter.
func diskWritten(dir string) int64 {
	syscall.Sync()
	n, ok := proc.DiskWritten(dir)
	if !ok {
		return -1
	}
	return n
}

// diskPerMsg formats r's disk writes in KB per message, "-" when unknown.
func diskPerMsg(r *result) string {
	if r == nil || r.disk < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(r.disk)/1024/float64(r.n))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ---- pombo ----

func startPombo(dir string, nfill int) (*target, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	if err := preparePombo(data, nfill); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "config.toml")
	conf := fmt.Sprintf(`hostname = "mx.pombo-bench.test"
data_dir = %q
[smtp]
listen = ["127.0.0.1:%d"]
[submission]
listen = []
tls_listen = []
[imap]
listen = []
tls_listen = []
[pop3]
listen = []
tls_listen = []
[http]
listen = []
[limits]
max_connections = 1000
max_connections_per_ip = 1000
[log]
level = "info"
`, data, *pomboPort)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "pombo.log"))
	if err != nil {
		return nil, err
	}
	args := []string{"--config", cfg, "serve"}
	if *cpuprofile != "" {
		args = append(args, "--cpuprofile", *cpuprofile)
	}
	cmd := pinned(serverSide, *pomboBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		logf.Close()
	}
	if err := waitPort(*pomboPort); err != nil {
		stop()
		return nil, err
	}
	pid := cmd.Process.Pid
	return &target{
		name: "pombo",
		port: *pomboPort,
		cpu: func() (time.Duration, error) {
			st, ok := proc.ReadStat(pid)
			if !ok {
				return 0, fmt.Errorf("pombo (pid %d) is gone", pid)
			}
			return st.CPU, nil
		},
		inbox:   func() (int, error) { return pomboInbox(cfg) },
		durable: true,
		stop:    stop,
	}, nil
}

// preparePombo creates example.test and alice, and fills her INBOX with
// nfill messages of 4 KB, through the storage package (before the server
// starts).
func preparePombo(data string, nfill int) error {
	st, err := storage.Open(data)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.AddDomain(ctx, "example.test"); err != nil && !errors.Is(err, storage.ErrExists) {
		return err
	}
	hash, err := auth.HashPassword("bench-password")
	if err != nil {
		return err
	}
	u, err := st.AddUser(ctx, "alice@example.test", hash, 0)
	if err != nil {
		return err
	}
	if nfill == 0 {
		return nil
	}
	log.Printf("pombo: filling the INBOX with %d messages", nfill)
	var next atomic.Int64
	var wg sync.WaitGroup
	var ferr error
	var once sync.Once
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(nfill); i = next.Add(1) {
				msg := fillMessage(int(i), 4096)
				if _, err := st.Deliver(ctx, bytes.NewReader(msg), []storage.Recipient{{UserID: u.ID}}, storage.DeliverOptions{}); err != nil {
					once.Do(func() { ferr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return ferr
}

// fillMessage is a message like smtp-source's: a few headers, then lines
// of X up to size octets.
func fillMessage(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <fill@remote.test>\r\nTo: <alice@example.test>\r\nDate: Mon, 2 Feb 2026 10:00:00 +0000\r\nMessage-Id: <fill.%d@remote.test>\r\nSubject: fill %d\r\n\r\n", i, i)
	line := strings.Repeat("X", 78) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

func pomboInbox(cfg string) (int, error) {
	out, err := exec.Command(*pomboBin, "--config", cfg, "mailbox", "list", "alice@example.test", "--json").Output()
	if err != nil {
		return 0, fmt.Errorf("pombo mailbox list: %w", err)
	}
	var mbs []struct {
		Name     string `json:"name"`
		Messages int    `json:"messages"`
	}
	if err := json.Unmarshal(out, &mbs); err != nil {
		return 0, fmt.Errorf("pombo mailbox list: %w", err)
	}
	for _, mb := range mbs {
		if mb.Name == "INBOX" {
			return mb.Messages, nil
		}
	}
	return 0, errors.New("no INBOX")
}

// ---- Postfix ----

const postfixMaster = `127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// mailUID owns the Maildir (virtual_uid_maps).
const mailUID = 5000

func startPostfix(dir string, nfill int) (*target, error) {
	etc, queue, data, mail := filepath.Join(dir, "etc"), filepath.Join(dir, "queue"), filepath.Join(dir, "data"), filepath.Join(dir, "mail")
	maildir := filepath.Join(mail, "alice")
	for _, d := range []string{etc, queue, data, filepath.Join(maildir, "new"), filepath.Join(maildir, "cur"), filepath.Join(maildir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.postfix-bench.test
mydomain = postfix-bench.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
virtual_mailbox_domains = example.test
virtual_mailbox_base = %[3]s
virtual_mailbox_maps = texthash:%[4]s/vmailbox
virtual_uid_maps = static:%[5]d
virtual_gid_maps = static:%[5]d
virtual_minimum_uid = 1000
smtpd_recipient_restrictions = reject_unauth_destination
maillog_file = %[6]s/maillog
maillog_file_prefixes = %[6]s
alias_maps =
alias_database =
biff = no
`, queue, data, mail, etc, mailUID, dir)
	if err := os.WriteFile(filepath.Join(etc, "main.cf"), []byte(main), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(etc, "master.cf"), []byte(fmt.Sprintf(postfixMaster, *pfPort)), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(etc, "vmailbox"), []byte("alice@example.test alice/\n"), 0o644); err != nil {
		return nil, err
	}
	if nfill > 0 {
		log.Printf("postfix: filling the Maildir with %d messages", nfill)
		for i := 1; i <= nfill; i++ {
			name := filepath.Join(maildir, "cur", fmt.Sprintf("%d.fill%d.bench:2,S", 1700000000+i, i))
			if err := os.WriteFile(name, fillMessage(i, 4096), 0o600); err != nil {
				return nil, err
			}
		}
	}
	if err := chownR(mail, mailUID, mailUID); err != nil {
		return nil, err
	}
	// master needs its data directory owned by mail_owner.
	if err := chownR(data, postfixUID(), postfixUID()); err != nil {
		return nil, err
	}
	if out, err := pinned(serverSide, *postfixBin, "-c", etc, "start").CombinedOutput(); err != nil {
		logTail, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		return nil, fmt.Errorf("postfix start: %v\n%s\n%s", err, out, logTail)
	}
	stop := func() { exec.Command(*postfixBin, "-c", etc, "stop").Run() }
	if err := waitPort(*pfPort); err != nil {
		stop()
		return nil, err
	}
	pidb, err := os.ReadFile(filepath.Join(queue, "pid", "master.pid"))
	if err != nil {
		stop()
		return nil, err
	}
	master, err := strconv.Atoi(strings.TrimSpace(string(pidb)))
	if err != nil {
		stop()
		return nil, err
	}
	// Postfix's master and every process under it, the reaped ones
	// included.
	cpu := func() (time.Duration, error) {
		if _, ok := proc.ReadStat(master); !ok {
			return 0, fmt.Errorf("postfix master (pid %d) is gone", master)
		}
		return proc.TreeCPU(master), nil
	}
	// virtual(8) delivers into new/; the fill is in cur/ and does not
	// change.
	inbox := func() (int, error) {
		ents, err := os.ReadDir(filepath.Join(maildir, "new"))
		return nfill + len(ents), err
	}
	return &target{name: "postfix", port: *pfPort, cpu: cpu, inbox: inbox, stop: stop}, nil
}

func postfixUID() int {
	out, err := exec.Command("id", "-u", "postfix").Output()
	if err != nil {
		log.Fatalf("no postfix user: %v", err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func chownR(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func waitPort(port int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			// Read the greeting so that the server sees a clean session.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			c.Read(buf)
			io.WriteString(c, "QUIT\r\n")
			c.Read(buf)
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %d not open: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- report ----

func printTable(w io.Writer, rs []result) {
	find := func(server, state string, size, sessions int) *result {
		for i := range rs {
			r := &rs[i]
			if r.server == server && r.state == state && r.size == size && r.sessions == sessions {
				return r
			}
		}
		return nil
	}
	fmt.Fprintln(w, "| INBOX | size | sessions | pombo msg/s | pombo CPU ms/msg | Postfix msg/s accepted | Postfix msg/s delivered | Postfix CPU ms/msg | rate ratio (pombo / Postfix delivered) | paired rate ratios, lowest–highest | CPU ratio (Postfix / pombo) | pombo disk KB/msg | Postfix disk KB/msg |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, state := range split(*states) {
		for _, size := range ints(*sizesFlag) {
			for _, s := range ints(*sessFlag) {
				p, q := find("pombo", state, size, s), find("postfix", state, size, s)
				cell := func(r *result, f func(*result) float64, format string) string {
					if r == nil {
						return "-"
					}
					return fmt.Sprintf(format, f(r))
				}
				rate := func(r *result) float64 { return r.del }
				acc := func(r *result) float64 { return r.acceptRate }
				cpu := func(r *result) float64 { return ms(r.cpu) / float64(r.n) }
				ratio, spread, cratio := "-", "-", "-"
				if p != nil && len(p.pairs) > 0 {
					spread = fmt.Sprintf("%.2f–%.2f", p.pairs[0], p.pairs[len(p.pairs)-1])
				}
				if p != nil && q != nil {
					ratio = fmt.Sprintf("%.2f", p.del/q.del)
					if cpu(p) > 0 {
						cratio = fmt.Sprintf("%.2f", cpu(q)/cpu(p))
					}
				}
				label := "empty"
				if state == "full" {
					label = strconv.Itoa(*fill)
				}
				fmt.Fprintf(w, "| %s | %d KB | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label, size/1024, s,
					cell(p, rate, "%.0f"), cell(p, cpu, "%.2f"), cell(q, acc, "%.0f"), cell(q, rate, "%.0f"), cell(q, cpu, "%.2f"), ratio, spread, cratio,
					diskPerMsg(p), diskPerMsg(q))
			}
		}
	}
}
