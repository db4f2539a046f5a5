// Command pop3bench measures POP3 RETR of a whole maildrop (2,000 messages
// of the shared corpus by default) on pombo and on Dovecot, in the same run,
// on the same machine, with the same client, and prints the ratio.
//
//	go run ./bench/pop3 -n 2000 -runs 5
//
// pombo runs as a child process (this program re-executed with -serve:
// server.New and Start, only [pop3] listen), its maildrop filled with
// storage.Deliver. Dovecot (Debian dovecot-pop3d) runs as a private instance
// with its own base_dir and configuration on a loopback port, a passwd-file
// user and a Maildir holding the same messages (LF line ends and S=/W= sizes
// in the file names, as Dovecot's own LDA writes them). Dovecot is told not
// to record \Seen for POP3 (pop3_no_flag_updates), since pombo does not;
// otherwise it would rename 2,000 files at QUIT.
//
// For each run the client logs in, sends RETR 1..n one at a time (each
// waiting for the previous message, as fetchmail and getmail do), checks
// every message's SHA-256 against the corpus and QUITs. Wall time is the
// client's, from connect to the end of QUIT; server CPU is user+system time
// from /proc/PID/stat: pombo's one process, and for Dovecot the master with
// every process under it (live ones, and the reaped ones through the
// master's cutime/cstime). One warm-up run per server comes first (Dovecot
// builds its index then). Medians are reported.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"pombo/auth"
	"pombo/bench/internal/dovecot"
	"pombo/bench/internal/proc"
	"pombo/config"
	"pombo/server"
	"pombo/storage"
)

const (
	account  = "alice@example.test"
	password = "bench password"
)

func main() {
	n := flag.Int("n", 2000, "messages in the maildrop")
	mbox := flag.String("mbox", "", "corpus mbox (default: generate with -corpus-script)")
	script := flag.String("corpus-script", "/work/shared/corpus/make_corpus.py", "corpus generator")
	runs := flag.Int("runs", 5, "timed runs per server")
	dovecotBin := flag.String("dovecot", "/usr/sbin/dovecot", "dovecot binary; empty to skip")
	keep := flag.Bool("keep", false, "keep the work directory")
	serve := flag.String("serve", "", "internal: run pombo on this data directory")
	flag.Parse()
	if *serve != "" {
		servePombo(*serve)
		return
	}
	msgs, err := loadCorpus(*mbox, *script, *n)
	if err != nil {
		log.Fatal(err)
	}
	work, err := os.MkdirTemp("", "pop3bench-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Println("work directory:", work)
	}

	// Each message as a client must receive it: CRLF line ends.
	want := make([][32]byte, len(msgs))
	var total int64
	for i, m := range msgs {
		crlf := toCRLF(m)
		want[i] = sha256.Sum256(crlf)
		total += int64(len(crlf))
	}
	fmt.Printf("maildrop: %d messages, %.1f MB as sent\n", len(msgs), float64(total)/1e6)

	type target struct {
		name string
		addr string
		cpu  func() time.Duration
		stop func()
	}
	var targets []target
	pAddr, pPID, pStop, err := startPombo(filepath.Join(work, "pombo"), msgs)
	if err != nil {
		log.Fatal(err)
	}
	defer pStop()
	targets = append(targets, target{"pombo", pAddr, func() time.Duration { return proc.TickCPU([]int{pPID}) }, pStop})
	if *dovecotBin != "" {
		d, err := startDovecot(*dovecotBin, filepath.Join(work, "dovecot"), msgs)
		if err != nil {
			log.Fatal(err)
		}
		defer d.Stop()
		targets = append(targets, target{"dovecot", d.Addr, func() time.Duration { return proc.TreeCPU(d.PID()) }, d.Stop})
	}

	type result struct{ wall, cpu []time.Duration }
	results := make([]result, len(targets))
	for r := -1; r < *runs; r++ {
		for k := range targets {
			// Alternate who goes first, so that neither always runs on
			// caches the other warmed.
			i := k
			if r%2 != 0 {
				i = len(targets) - 1 - k
			}
			t := targets[i]
			cpu0 := t.cpu()
			wall, err := retrieveAll(t.addr, want)
			if err != nil {
				log.Fatalf("%s: %v", t.name, err)
			}
			time.Sleep(300 * time.Millisecond) // let Dovecot reap its pop3 process
			cpu := t.cpu() - cpu0
			if r < 0 {
				fmt.Printf("warm-up %-8s wall %7.3fs cpu %7.3fs\n", t.name, wall.Seconds(), cpu.Seconds())
				continue
			}
			results[i].wall = append(results[i].wall, wall)
			results[i].cpu = append(results[i].cpu, cpu)
		}
	}
	fmt.Printf("\nRETR of %d messages (%.1f MB), %d runs, median:\n\n", len(msgs), float64(total)/1e6, *runs)
	fmt.Println("| server | wall s (min–max) | server CPU s (min–max) | MB/s (wall) |")
	fmt.Println("|---|---|---|---|")
	var med [][2]time.Duration
	for i, t := range targets {
		w, c := median(results[i].wall), median(results[i].cpu)
		med = append(med, [2]time.Duration{w, c})
		fmt.Printf("| %s | %.3f (%.3f–%.3f) | %.3f (%.3f–%.3f) | %.1f |\n", t.name,
			w.Seconds(), slices.Min(results[i].wall).Seconds(), slices.Max(results[i].wall).Seconds(),
			c.Seconds(), slices.Min(results[i].cpu).Seconds(), slices.Max(results[i].cpu).Seconds(),
			float64(total)/1e6/w.Seconds())
	}
	if len(med) == 2 {
		fmt.Printf("| pombo / dovecot | %.2f | %.2f | |\n", med[0][0].Seconds()/med[1][0].Seconds(), med[0][1].Seconds()/med[1][1].Seconds())
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("\nload average at the end: %s", b)
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// retrieveAll logs in, RETRs every message in turn, checks each against
// its digest, and QUITs.
func retrieveAll(addr string, want [][32]byte) (time.Duration, error) {
	t0 := time.Now()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Minute))
	r := bufio.NewReaderSize(nc, 64<<10)
	w := bufio.NewWriter(nc)
	status := func() (string, error) {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(l, "+OK") {
			return "", fmt.Errorf("server said %q", strings.TrimSpace(l))
		}
		return l, nil
	}
	cmd := func(s string) (string, error) {
		w.WriteString(s + "\r\n")
		if err := w.Flush(); err != nil {
			return "", err
		}
		return status()
	}
	if _, err := status(); err != nil {
		return 0, err
	}
	if _, err := cmd("USER " + account); err != nil {
		return 0, err
	}
	if _, err := cmd("PASS " + password); err != nil {
		return 0, err
	}
	st, err := cmd("STAT")
	if err != nil {
		return 0, err
	}
	if f := strings.Fields(st); len(f) < 2 || f[1] != strconv.Itoa(len(want)) {
		return 0, fmt.Errorf("STAT: %q", st)
	}
	h := sha256.New()
	for i := range want {
		if _, err := cmd("RETR " + strconv.Itoa(i+1)); err != nil {
			return 0, err
		}
		h.Reset()
		for {
			l, err := r.ReadSlice('\n')
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return 0, err
			}
			if string(l) == ".\r\n" {
				break
			}
			if l[0] == '.' {
				l = l[1:]
			}
			h.Write(l)
			for errors.Is(err, bufio.ErrBufferFull) {
				l, err = r.ReadSlice('\n')
				if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
					return 0, err
				}
				h.Write(l)
			}
		}
		if got := h.Sum(nil); !bytes.Equal(got, want[i][:]) {
			return 0, fmt.Errorf("message %d differs from the corpus", i+1)
		}
	}
	if _, err := cmd("QUIT"); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// toCRLF gives a corpus message (LF) the CRLF line ends storage keeps.
func toCRLF(m []byte) []byte {
	m = bytes.ReplaceAll(m, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(m, []byte("\n"), []byte("\r\n"))
}

// toLF gives a message the LF line ends of a Maildir file.
func toLF(m []byte) []byte { return bytes.ReplaceAll(toCRLF(m), []byte("\r\n"), []byte("\n")) }

func loadCorpus(mbox, script string, n int) ([][]byte, error) {
	if mbox == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		src, err := os.ReadFile(script)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(append(src, strconv.Itoa(n)...))
		mbox = filepath.Join(dir, "pombo-test", "corpus-"+hex.EncodeToString(sum[:8])+".mbox")
		if _, err := os.Stat(mbox); err != nil {
			os.MkdirAll(filepath.Dir(mbox), 0o700)
			tmp := mbox + ".tmp" + strconv.Itoa(os.Getpid())
			fmt.Println("generating corpus with", script)
			cmd := exec.Command("python3", script, "--count", strconv.Itoa(n), "--out", tmp)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				return nil, err
			}
			if err := os.Rename(tmp, mbox); err != nil {
				return nil, err
			}
		}
	}
	data, err := os.ReadFile(mbox)
	if err != nil {
		return nil, err
	}
	var msgs [][]byte
	sep := []byte("\n\nFrom ")
	for len(data) > 0 && len(msgs) < n {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			break
		}
		data = data[nl+1:]
		end := bytes.Index(data, sep)
		if end < 0 {
			msgs = append(msgs, bytes.TrimSuffix(data, []byte("\n")))
			break
		}
		msgs = append(msgs, data[:end+1])
		data = data[end+2:]
	}
	if len(msgs) < n {
		return nil, fmt.Errorf("%s holds %d messages, want %d", mbox, len(msgs), n)
	}
	return msgs, nil
}

// startPombo fills a data directory and runs pombo on it in a child process.
func startPombo(dir string, msgs [][]byte) (addr string, pid int, stop func(), err error) {
	st, err := storage.Open(dir)
	if err != nil {
		return "", 0, nil, err
	}
	ctx := context.Background()
	hash, err := auth.HashPassword(password)
	if err != nil {
		return "", 0, nil, err
	}
	if err := st.AddDomain(ctx, "example.test"); err != nil {
		return "", 0, nil, err
	}
	u, err := st.AddUser(ctx, account, hash, 0)
	if err != nil {
		return "", 0, nil, err
	}
	// In corpus order: message n of the maildrop is msgs[n-1].
	for i, m := range msgs {
		if _, err := st.Deliver(ctx, bytes.NewReader(m), []storage.Recipient{{UserID: u.ID}}, storage.DeliverOptions{}); err != nil {
			return "", 0, nil, fmt.Errorf("deliver %d: %w", i+1, err)
		}
	}
	if err := st.Close(); err != nil {
		return "", 0, nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(self, "-serve", dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return "", 0, nil, fmt.Errorf("pombo did not start: %w", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		})
	}
	return strings.TrimSpace(line), cmd.Process.Pid, stop, nil
}

// servePombo is the child: the real server with only a POP3 listener.
func servePombo(dir string) {
	cfg := config.Default()
	cfg.Hostname = "pombo.bench"
	cfg.DataDir = dir
	cfg.SMTP.Listen = nil
	cfg.Submission.Listen, cfg.Submission.TLSListen = nil, nil
	cfg.IMAP.Listen, cfg.IMAP.TLSListen = nil, nil
	cfg.HTTP.Listen = nil
	cfg.POP3.Listen, cfg.POP3.TLSListen = []string{"127.0.0.1:0"}, nil
	cfg.Log.Level = "warn"
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	if p := os.Getenv("POP3BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	fmt.Println(srv.Addr("pop3.listen"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	srv.Close()
}

// startDovecot writes the maildrop as a Maildir under dir and starts a
// private Dovecot on it, for POP3.
func startDovecot(bin, dir string, msgs [][]byte) (*dovecot.Server, error) {
	uid, gid, err := dovecot.LookupUser("nobody")
	if err != nil {
		return nil, err
	}
	maildir := filepath.Join(dir, "mail", "alice")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(maildir, d), 0o755); err != nil {
			return nil, err
		}
	}
	home := filepath.Join(dir, "home", "alice")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	base := time.Now().Unix() - int64(len(msgs))
	for i, m := range msgs {
		lf := toLF(m)
		vsize := len(toCRLF(m))
		// Maildir order is by delivery time: keep the corpus order.
		name := fmt.Sprintf("%d.M%dP%d.bench,S=%d,W=%d:2,", base+int64(i), i, os.Getpid(), len(lf), vsize)
		if err := os.WriteFile(filepath.Join(maildir, "cur", name), lf, 0o600); err != nil {
			return nil, err
		}
	}
	if err := dovecot.ChownTree(filepath.Join(dir, "mail"), uid, gid); err != nil {
		return nil, err
	}
	if err := os.Chown(home, uid, gid); err != nil {
		return nil, err
	}
	// The same argon2id hash (and parameters) pombo checks: logins cost
	// both servers the same.
	hash, err := auth.HashPassword(password)
	if err != nil {
		return nil, err
	}
	return dovecot.Start(dovecot.Options{
		Bin: bin, Dir: dir, Protocol: "pop3", UID: uid, GID: gid,
		Users: []dovecot.User{{Name: account, Password: "{ARGON2ID}" + hash, Home: home}},
		Mail:  "mail_location = maildir:" + dir + "/mail/%n\npop3_no_flag_updates = yes\n",
	})
}
