// Command imapbench measures pombo's IMAP server on a large INBOX, beside
// Dovecot (the Debian package) holding the same messages: SELECT,
// UID FETCH 1:* (UID FLAGS), FETCH 1:* (ENVELOPE), UID SEARCH on a header and
// on body text. Both servers run as child processes so that their CPU time
// (utime+stime from /proc) and RSS are their own; the client code is the
// same for both.
//
// The first round of each command is reported as cold (for Dovecot it builds
// its index and cache from the Maildir), the mean of the others as warm.
//
//	python3 /work/shared/corpus/make_corpus.py --count 2000 --out /tmp/c2000.mbox
//	go run ./bench/imap -n 100000 -corpus /tmp/c2000.mbox -dir /tmp/imapbench
//
// The data directory is kept for the next run with the same -dir, which
// skips the fill; -keep=false deletes it at the end.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"pombo/auth"
	"pombo/bench/internal/proc"
	"pombo/imap"
	"pombo/netbuf"
	"pombo/storage"
)

const (
	user = "bench@example.test"
	pass = "bench password 1"
)

func main() {
	n := flag.Int("n", 100000, "messages in INBOX")
	corpusPath := flag.String("corpus", "", "mbox from make_corpus.py (needed to fill)")
	dir := flag.String("dir", "", "data directory (reused when already filled; default: a new temporary one)")
	keep := flag.Bool("keep", true, "keep the data directory at the end, for the next run with the same -dir (false: delete it)")
	serve := flag.Bool("serve", false, "internal: run pombo's server in this process")
	rounds := flag.Int("rounds", 3, "times each command runs (the first is the cold one)")
	dovecot := flag.Bool("dovecot", true, "also measure Dovecot")
	only := flag.String("only", "", "measure only this server (pombo or dovecot)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of pombo's server to this file")
	mixed := flag.Bool("mixed", false, "measure the mixed multi-client workload instead (see mixed.go)")
	flag.Parse()
	if *serve {
		runServer(*dir, *cpuprofile)
		return
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "imapbench")
		if err != nil {
			log.Fatal(err)
		}
		*dir = d
	}
	if *mixed {
		runMixed(*dir, *corpusPath, *only, *cpuprofile)
		tidy(*dir, *keep)
		return
	}
	var c corpus
	msgs := func() corpus {
		if c == nil {
			c = readCorpus(*corpusPath)
		}
		return c
	}
	withPombo := *only == "" || *only == "pombo"
	withDovecot := *dovecot && (*only == "" || *only == "dovecot")
	if withPombo {
		fillPombo(filepath.Join(*dir, "pombo"), *n, msgs)
	}
	if withDovecot {
		fillMaildir(filepath.Join(*dir, "dovecot"), *n, msgs)
	}
	c = nil

	var results []serverResult
	if withPombo {
		addr, child := startPombo(filepath.Join(*dir, "pombo"), *cpuprofile)
		pid := child.Process.Pid
		res := measure("pombo", addr, *n, *rounds, func() []int { return []int{pid} })
		child.Process.Signal(syscall.SIGTERM)
		child.Wait()
		results = append(results, res)
	}
	if withDovecot {
		d, err := startDovecot(filepath.Join(*dir, "dovecot"))
		if err != nil {
			log.Fatal(err)
		}
		// The imap processes serving sessions (there is one: ours).
		sessions := func() []int { return proc.Children(d.PID(), "imap", "indexer-worker") }
		res := measure("dovecot", d.Addr, *n, *rounds, sessions)
		d.Stop()
		results = append(results, res)
	}
	printTable(*n, results)
	tidy(*dir, *keep)
}

// tidy deletes what the run wrote in dir (its pombo and dovecot data, then
// dir itself if that leaves it empty), or when the data is kept says how
// large it is and how to delete it: the mixed workload's is gigabytes.
func tidy(dir string, keep bool) {
	if !keep {
		for _, sub := range []string{"pombo", "dovecot"} {
			if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
				log.Fatal(err)
			}
		}
		os.Remove(dir)
		fmt.Fprintf(os.Stderr, "\ndeleted the data in %s\n", dir)
		return
	}
	fmt.Fprintf(os.Stderr, "\ndata kept for the next run with -dir %s: %.2f GB on disk; delete it with: rm -rf %s (or run with -keep=false)\n", dir, float64(diskUsage(dir))/1e9, dir)
}

// diskUsage is the space the files under dir take, as du counts it.
func diskUsage(dir string) int64 {
	var sum int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := e.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				sum += st.Blocks * 512
			}
		}
		return nil
	})
	return sum
}

type cmdResult struct {
	name              string
	coldWall, coldCPU time.Duration
	warmWall, warmCPU time.Duration // means over the rounds after the first
	rssKB             int64         // after the command's last round
}

type serverResult struct {
	server   string
	loginRSS int64
	cmds     []cmdResult
}

// measure runs every command rounds times on one connection to addr; pids
// returns the processes whose CPU and RSS are the server's.
func measure(server, addr string, n, rounds int, pids func() []int) serverResult {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// A login that hangs (a broken Dovecot setup) must not hang the run.
	stop := time.AfterFunc(30*time.Second, func() { fatalf("%s: login timed out", server) })
	err = c.Login(user, pass).Wait()
	stop.Stop()
	if err != nil {
		fatalf("%s: login: %v", server, err)
	}
	// Dovecot forks the session's process at login: wait until it shows.
	var ps []int
	for t0 := time.Now(); time.Since(t0) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
		if ps = pids(); len(ps) > 0 {
			break
		}
	}
	if len(ps) == 0 {
		fatalf("%s: no server process found", server)
	}
	cpu := func() time.Duration { return proc.TickCPU(pids()) }
	rss := func() int64 {
		var sum int64
		for _, p := range pids() {
			sum += proc.RSSKB(p)
		}
		return sum
	}
	res := serverResult{server: server, loginRSS: rss()}
	drain := func(fc *imapclient.FetchCommand) error {
		for m := fc.Next(); m != nil; m = fc.Next() {
			m.Collect()
		}
		return fc.Close()
	}
	cmds := []struct {
		name string
		run  func() error
	}{
		{"SELECT INBOX", func() error { _, err := c.Select("INBOX", nil).Wait(); return err }},
		{"UID FETCH 1:* (UID FLAGS)", func() error {
			return drain(c.Fetch(goimap.UIDSet{goimap.UIDRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{UID: true, Flags: true}))
		}},
		{"FETCH 1:* (ENVELOPE)", func() error {
			return drain(c.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{Envelope: true}))
		}},
		{"UID SEARCH HEADER Message-ID", func() error {
			d, err := c.UIDSearch(&goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: fmt.Sprintf("bench-%d", headerTarget(n))}}}, nil).Wait()
			if err == nil && len(d.AllUIDs()) != 1 {
				err = fmt.Errorf("found %d messages, want 1", len(d.AllUIDs()))
			}
			return err
		}},
		{"UID SEARCH BODY", func() error {
			d, err := c.UIDSearch(&goimap.SearchCriteria{Body: []string{"quarterly zebra"}}, nil).Wait()
			if err == nil && len(d.AllUIDs()) != 1 {
				err = fmt.Errorf("found %d messages, want 1", len(d.AllUIDs()))
			}
			return err
		}},
	}
	for _, cm := range cmds {
		r := cmdResult{name: cm.name}
		for i := 0; i < rounds; i++ {
			c0 := cpu()
			t0 := time.Now()
			if err := cm.run(); err != nil {
				fatalf("%s: %s: %v", server, cm.name, err)
			}
			wall, used := time.Since(t0), cpu()-c0
			if i == 0 {
				r.coldWall, r.coldCPU = wall, used
			} else {
				r.warmWall += wall / time.Duration(rounds-1)
				r.warmCPU += used / time.Duration(rounds-1)
			}
		}
		if rounds == 1 {
			r.warmWall, r.warmCPU = r.coldWall, r.coldCPU
		}
		r.rssKB = rss()
		res.cmds = append(res.cmds, r)
		fmt.Fprintf(os.Stderr, "%s %s: cold %v/%v warm %v/%v\n", server, cm.name, r.coldWall, r.coldCPU, r.warmWall, r.warmCPU)
	}
	c.Logout().Wait()
	return res
}

// atFatal are run before a fatal exit: no server is left behind.
var atFatal []func()

func fatalf(format string, args ...any) {
	for _, f := range atFatal {
		f()
	}
	log.Fatalf(format, args...)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func printTable(n int, results []serverResult) {
	fmt.Printf("\n%d messages in INBOX; ms = wall / server CPU (utime+stime, 10 ms ticks); cold = first round, warm = mean of the rest\n", n)
	for _, r := range results {
		fmt.Printf("%s: RSS after login %d MB\n", r.server, r.loginRSS/1024)
	}
	fmt.Printf("\n%-30s", "command")
	for _, r := range results {
		fmt.Printf(" | %-8s cold  ms  | %-8s warm  ms  | RSS MB", r.server, r.server)
	}
	if len(results) == 2 {
		fmt.Printf(" | warm ratio %s/%s wall, CPU", results[0].server, results[1].server)
	}
	fmt.Println()
	for i := range results[0].cmds {
		fmt.Printf("%-30s", results[0].cmds[i].name)
		for _, r := range results {
			c := r.cmds[i]
			fmt.Printf(" | %8.0f / %7.0f | %8.0f / %7.0f | %6d", ms(c.coldWall), ms(c.coldCPU), ms(c.warmWall), ms(c.warmCPU), c.rssKB/1024)
		}
		if len(results) == 2 {
			a, b := results[0].cmds[i], results[1].cmds[i]
			fmt.Printf(" | %s, %s", ratio(a.warmWall, b.warmWall), ratio(a.warmCPU, b.warmCPU))
		}
		fmt.Println()
	}
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}

func startPombo(dir, cpuprofile string) (string, *exec.Cmd) {
	self, _ := os.Executable()
	cmd := exec.Command(self, "-serve", "-dir", dir, "-cpuprofile", cpuprofile)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	atFatal = append(atFatal, func() { cmd.Process.Kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	return strings.TrimSpace(line), cmd
}

func runServer(dir, cpuprofile string) {
	st, err := storage.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := imap.New(imap.Options{Store: st, Auth: &auth.Authenticator{Users: st, Log: lg}, Log: lg, AllowPlaintextFromLoopback: true})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	// As server.Start does for IMAP listeners.
	var l net.Listener = netbuf.Listener{Listener: raw}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sig
		if cpuprofile != "" {
			pprof.StopCPUProfile()
		}
		os.Exit(0)
	}()
	fmt.Println(l.Addr().String())
	srv.Serve(l)
}
