package main

// The mixed workload (-mixed): several Thunderbird-like users at once, each
// on an account of its own with a realistic mailbox, and the server CPU that
// the commands cost, overall and per kind of command, pombo beside Dovecot.
//
//	python3 /work/shared/corpus/make_corpus.py --count 2000 --out /tmp/c2000.mbox
//	flock /tmp/pombo-bench.lock go run ./bench/imap -mixed -corpus /tmp/c2000.mbox -dir /tmp/imapbench-mixed
//
// Every client first syncs its folders as Thunderbird does on first use
// (headers of every message; this also builds Dovecot's index and cache),
// which is not measured. Then the same fixed, seeded command sequence runs
// twice on each server:
//
//   - concurrent: all clients at once, each on its own connection: total
//     server CPU / commands, wall time, memory;
//   - serial: the clients' commands round-robin, one command in flight at a
//     time, so that the server CPU between two replies belongs to one command:
//     server CPU per kind of command.
//
// Server CPU is the on-CPU time of every thread of the server processes
// (/proc/PID/task/TID/schedstat, in ns): pombo's one process; Dovecot's
// master and all its descendants (imap, imap-login, auth, config, log, anvil,
// stats...). The \Seen flags the loop sets are reset (unmeasured) after each
// run, so a data directory can be reused: it is kept (about 8 GB with the
// defaults; the end of the run says how much and how to delete it) unless
// -keep=false. -cpuprofile profiles pombo's server from its start to its
// stop, the unmeasured first sync included.

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"pombo/bench/internal/proc"
)

var (
	mixedClients = flag.Int("mixed-clients", 10, "-mixed: clients, each on its own account")
	mixedInbox   = flag.Int("mixed-inbox", 10000, "-mixed: messages in each INBOX (other folders in proportion)")
	mixedIters   = flag.Int("mixed-iters", 100, "-mixed: iterations of the loop per client")
	mixedWarm    = flag.Int("mixed-warm", 5, "-mixed: unmeasured iterations per client before measuring")
	mixedSeed    = flag.Uint64("mixed-seed", 1, "-mixed: seed of the command sequence")
	mixedFsync   = flag.String("mixed-fsync", "optimized", "-mixed: Dovecot's mail_fsync (optimized, always, never)")
	// How often the rarer commands come, in iterations (0: never).
	mixedHdrEvery  = flag.Int("mixed-header-search-every", 10, "-mixed: a header search every this many iterations (0: none)")
	mixedBodyEvery = flag.Int("mixed-body-search-every", 20, "-mixed: a body search every this many iterations (0: none)")
	mixedSyncEvery = flag.Int("mixed-flag-sync-every", 25, "-mixed: a UID FETCH 1:* (FLAGS) every this many iterations (0: none)")
)

const (
	kindNoop       = "NOOP"
	kindStatus     = "STATUS (UIDNEXT MESSAGES UNSEEN RECENT)"
	kindSelect     = "SELECT INBOX"
	kindHeaders    = "UID FETCH newest 50 (FLAGS SIZE DATE HEADER.FIELDS)"
	kindBody       = "UID FETCH 1 (BODY.PEEK[])"
	kindStore      = `UID STORE 1 +FLAGS (\Seen)`
	kindUnseen     = "UID SEARCH UNSEEN"
	kindSearchHdr  = "UID SEARCH FROM|SUBJECT word"
	kindSearchBody = "UID SEARCH BODY word"
	kindFlagSync   = "UID FETCH 1:* (FLAGS)"
	kindList       = `LIST "" "*"`
)

var mixedKinds = []string{kindNoop, kindStatus, kindSelect, kindHeaders, kindBody, kindStore, kindUnseen, kindSearchHdr, kindSearchBody, kindFlagSync, kindList}

// Thunderbird's header fetch for the message list.
const tbHeaders = "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])"

type step struct{ kind, cmd string }

var (
	fromWords    = []string{"Alice", "Bob", "Carol", "Dave", "Grace", "Olivia", "Victor", "Walter"}
	subjectWords = []string{"report", "meeting", "invoice", "release", "budget", "review", "deploy", "backup"}
	bodyWords    = []string{"deadline", "schedule", "benchmark", "throughput", "invitation", "quarterly"}
)

// mixedSteps is the command sequence of client a: the same for both servers.
// Per iteration: NOOP, STATUS of three folders, SELECT INBOX, the newest 50
// headers, one of them in full, marked \Seen, the unseen; by default every
// 10th a header search, every 20th a body search, every 25th a flag resync
// of INBOX (the -mixed-*-every flags); LIST.
func mixedSteps(a, iters, inbox int, seed uint64) []step {
	rng := rand.New(rand.NewPCG(seed, uint64(a)))
	first := inbox - mixedRecent + 1
	var s []step
	add := func(kind, cmd string) { s = append(s, step{kind, cmd}) }
	for it := 0; it < iters; it++ {
		add(kindNoop, "NOOP")
		for _, f := range []string{"Drafts", "Sent", "Archive"} {
			add(kindStatus, "STATUS "+quote(f)+" (UIDNEXT MESSAGES UNSEEN RECENT)")
		}
		add(kindSelect, `SELECT "INBOX"`)
		add(kindHeaders, fmt.Sprintf("UID FETCH %d:* %s", first, tbHeaders))
		uid := first + rng.IntN(mixedRecent)
		add(kindBody, fmt.Sprintf("UID FETCH %d (UID RFC822.SIZE FLAGS BODY.PEEK[])", uid))
		add(kindStore, fmt.Sprintf(`UID STORE %d +FLAGS (\Seen)`, uid))
		add(kindUnseen, "UID SEARCH UNSEEN")
		if every(*mixedHdrEvery, it+a, 0) {
			if rng.IntN(2) == 0 {
				add(kindSearchHdr, "UID SEARCH FROM "+quote(fromWords[rng.IntN(len(fromWords))]))
			} else {
				add(kindSearchHdr, "UID SEARCH SUBJECT "+quote(subjectWords[rng.IntN(len(subjectWords))]))
			}
		}
		if every(*mixedBodyEvery, it+a, 5) {
			add(kindSearchBody, "UID SEARCH BODY "+quote(bodyWords[rng.IntN(len(bodyWords))]))
		}
		if every(*mixedSyncEvery, it+a, 12) {
			add(kindFlagSync, "UID FETCH 1:* (FLAGS)")
		}
		add(kindList, `LIST "" "*"`)
	}
	return s
}

// every says whether iteration it is one of every n (at offset off).
func every(n, it, off int) bool { return n > 0 && it%n == off%n }

// kindStat sums one kind of command.
type kindStat struct {
	n         int
	cpu, wall time.Duration
}

type mixedResult struct {
	server string
	// concurrent run
	cWall, cCPU, cImapCPU, cTicks time.Duration
	cCmds                         int
	cLat                          map[string]*kindStat
	rssKB, pssKB                  int64
	// serial run
	sWall, sCPU, sTicks time.Duration
	sKinds              map[string]*kindStat
	// digests of the replies, [client][step], for the comparison
	digest [][]int64
}

func runMixed(dir, corpusPath, only, cpuprofile string) {
	accounts, inbox := *mixedClients, *mixedInbox
	if inbox < mixedRecent {
		log.Fatalf("-mixed-inbox must be at least %d", mixedRecent)
	}
	var c corpus
	msgs := func() corpus {
		if c == nil {
			c = readCorpus(corpusPath)
		}
		return c
	}
	withPombo := only == "" || only == "pombo"
	withDovecot := only == "" || only == "dovecot"
	if withPombo {
		fillPomboMixed(filepath.Join(dir, "pombo"), accounts, inbox, msgs)
	}
	if withDovecot {
		fillMaildirsMixed(filepath.Join(dir, "dovecot"), accounts, inbox, msgs)
	}
	c = nil
	steps := make([][]step, accounts)
	warm := make([][]step, accounts)
	for a := range steps {
		steps[a] = mixedSteps(a, *mixedIters, inbox, *mixedSeed)
		warm[a] = mixedSteps(a, *mixedWarm, inbox, *mixedSeed+1000)
	}
	var results []*mixedResult
	if withPombo {
		addr, child := startPombo(filepath.Join(dir, "pombo"), cpuprofile)
		pid := child.Process.Pid
		results = append(results, mixedMeasure("pombo", addr, inbox, steps, warm, func() []int { return []int{pid} }, nil))
		child.Process.Signal(syscall.SIGTERM)
		child.Wait()
	}
	if withDovecot {
		d, err := startDovecotMixed(filepath.Join(dir, "dovecot"), accounts, *mixedFsync)
		if err != nil {
			log.Fatal(err)
		}
		master := d.PID()
		all := func() []int { return proc.Descendants(master) }
		imapOnly := func() []int {
			var out []int
			for _, p := range all() {
				if st, ok := proc.ReadStat(p); ok && st.Comm == "imap" {
					out = append(out, p)
				}
			}
			return out
		}
		results = append(results, mixedMeasure("dovecot", d.Addr, inbox, steps, warm, all, imapOnly))
		d.Stop()
	}
	printMixed(accounts, inbox, steps, results)
}

// mixedMeasure logs every client in, warms up, then runs the concurrent and
// the serial measurement. pids are the server's processes; imapPids, when
// not nil, the subset that serves sessions.
func mixedMeasure(server, addr string, inbox int, steps, warm [][]step, pids, imapPids func() []int) *mixedResult {
	clients := make([]*rawClient, len(steps))
	t0 := time.Now()
	parallel(len(clients), len(clients), func(a int) {
		c, err := dialRaw(addr)
		if err != nil {
			fatalf("%s: client %d: %v", server, a, err)
		}
		clients[a] = c
		must := func(cmd string) *reply {
			rep, err := c.do(cmd)
			if err != nil {
				fatalf("%s: client %d: %v", server, a, err)
			}
			return rep
		}
		must("LOGIN " + quote(mixedUser(a)) + " " + quote(pass))
		// Thunderbird's first sync of each folder.
		for _, f := range mixedFolders {
			must("SELECT " + quote(f.name))
			if rep := must("UID FETCH 1:* " + tbHeaders); rep.count(kindHeaders) != int64(f.size(inbox)) {
				fatalf("%s: client %d: %s holds %d messages, want %d", server, a, f.name, rep.count(kindHeaders), f.size(inbox))
			}
		}
		if rep := must(`SELECT "INBOX"`); rep.uidNext() != uint32(inbox+1) {
			fatalf("%s: client %d: UIDNEXT %d, want %d", server, a, rep.uidNext(), inbox+1)
		}
		for _, s := range warm[a] {
			must(s.cmd)
		}
		restoreSeen(server, a, c, inbox)
	})
	fmt.Fprintf(os.Stderr, "%s: logins and first sync of %d clients in %v\n", server, len(clients), time.Since(t0).Round(time.Millisecond))
	defer func() {
		for _, c := range clients {
			c.do("LOGOUT")
			c.close()
		}
	}()
	res := &mixedResult{server: server, cLat: map[string]*kindStat{}, sKinds: map[string]*kindStat{}}
	res.digest = make([][]int64, len(steps))
	for a := range steps {
		res.digest[a] = make([]int64, len(steps[a]))
		res.cCmds += len(steps[a])
	}

	// Concurrent.
	ps := pids()
	var imapPs []int
	if imapPids != nil {
		imapPs = imapPids()
	}
	fmt.Fprintf(os.Stderr, "%s: server processes: %s\n", server, comms(ps))
	cpu0, imap0, ticks0 := proc.SchedCPU(ps), proc.SchedCPU(imapPs), proc.TickCPU(ps)
	t0 = time.Now()
	lat := make([]map[string]*kindStat, len(steps))
	parallel(len(clients), len(clients), func(a int) {
		lat[a] = map[string]*kindStat{}
		for i, s := range steps[a] {
			t := time.Now()
			rep, err := clients[a].do(s.cmd)
			if err != nil {
				fatalf("%s: client %d: %v", server, a, err)
			}
			addStat(lat[a], s.kind, 0, time.Since(t))
			res.digest[a][i] = rep.count(s.kind)
		}
	})
	res.cWall = time.Since(t0)
	res.cCPU, res.cImapCPU, res.cTicks = proc.SchedCPU(ps)-cpu0, proc.SchedCPU(imapPs)-imap0, proc.TickCPU(ps)-ticks0
	for _, l := range lat {
		for k, st := range l {
			if res.cLat[k] == nil {
				res.cLat[k] = &kindStat{}
			}
			res.cLat[k].n += st.n
			res.cLat[k].wall += st.wall
		}
	}
	for _, p := range pids() {
		res.rssKB += proc.RSSKB(p)
		res.pssKB += proc.PSSKB(p)
	}
	fmt.Fprintf(os.Stderr, "%s: concurrent: %d commands in %v, server CPU %v\n", server, res.cCmds, res.cWall.Round(time.Millisecond), res.cCPU.Round(time.Millisecond))
	parallel(len(clients), len(clients), func(a int) { restoreSeen(server, a, clients[a], inbox) })

	// Serial: round-robin over the clients, one command at a time.
	ps = pids()
	ticks0 = proc.TickCPU(ps)
	prev := proc.SchedCPU(ps)
	t0 = time.Now()
	for i := 0; ; i++ {
		more := false
		for a, c := range clients {
			if i >= len(steps[a]) {
				continue
			}
			more = true
			s := steps[a][i]
			t := time.Now()
			rep, err := c.do(s.cmd)
			if err != nil {
				fatalf("%s: client %d: %v", server, a, err)
			}
			wall := time.Since(t)
			now := proc.SchedCPU(ps)
			addStat(res.sKinds, s.kind, now-prev, wall)
			prev = now
			if d := rep.count(s.kind); d != res.digest[a][i] {
				fmt.Fprintf(os.Stderr, "%s: client %d step %d (%s): %d in the serial run, %d in the concurrent one\n", server, a, i, s.cmd, d, res.digest[a][i])
			}
		}
		if !more {
			break
		}
	}
	res.sWall = time.Since(t0)
	res.sTicks = proc.TickCPU(ps) - ticks0
	for _, st := range res.sKinds {
		res.sCPU += st.cpu
	}
	fmt.Fprintf(os.Stderr, "%s: serial: %d commands in %v, server CPU %v\n", server, res.cCmds, res.sWall.Round(time.Millisecond), res.sCPU.Round(time.Millisecond))
	parallel(len(clients), len(clients), func(a int) { restoreSeen(server, a, clients[a], inbox) })
	return res
}

// restoreSeen puts back the flags of the fill on the messages the loop
// touches: the newest of INBOX unseen and unflagged.
func restoreSeen(server string, a int, c *rawClient, inbox int) {
	for _, cmd := range []string{`SELECT "INBOX"`, fmt.Sprintf("UID STORE %d:%d FLAGS.SILENT ()", inbox-mixedRecent+1, inbox)} {
		if _, err := c.do(cmd); err != nil {
			fatalf("%s: client %d: %v", server, a, err)
		}
	}
}

func addStat(m map[string]*kindStat, kind string, cpu, wall time.Duration) {
	st := m[kind]
	if st == nil {
		st = &kindStat{}
		m[kind] = st
	}
	st.n++
	st.cpu += cpu
	st.wall += wall
}

// comms counts the processes by name: "imap×10 log×1 ...".
func comms(pids []int) string {
	n := map[string]int{}
	for _, p := range pids {
		st, _ := proc.ReadStat(p)
		n[st.Comm]++
	}
	var out []string
	for c, k := range n {
		out = append(out, fmt.Sprintf("%s×%d", c, k))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func perCmd(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return ms(d) / float64(n)
}

func fratio(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func printMixed(accounts, inbox int, steps [][]step, results []*mixedResult) {
	fmt.Printf("\nmixed workload: %d clients, each on its own account (INBOX %d, Sent/Archive %d, Trash %d, Junk %d, Drafts 5); %d iterations per client; Dovecot mail_fsync=%s\n",
		accounts, inbox, inbox/20, inbox/100, inbox/200, *mixedIters, *mixedFsync)
	fmt.Printf("every %d iterations a header search, every %d a body search, every %d a flag resync (0: never)\n", *mixedHdrEvery, *mixedBodyEvery, *mixedSyncEvery)
	fmt.Println("server CPU = on-CPU time of all server threads (schedstat, ns); ticks = utime+stime from /proc/PID/stat as a check")
	fmt.Printf("\nconcurrent (%d clients at once)\n", accounts)
	fmt.Printf("%-8s | %8s | %8s | %9s | %11s | %9s | %18s | %7s | %7s\n", "server", "commands", "wall s", "cmds/s", "CPU ms/cmd", "ticks s", "session procs only", "RSS MB", "PSS MB")
	for _, r := range results {
		only := "-"
		if r.server == "dovecot" {
			only = fmt.Sprintf("%.3f ms/cmd", perCmd(r.cImapCPU, r.cCmds))
		}
		fmt.Printf("%-8s | %8d | %8.1f | %9.0f | %11.3f | %9.2f | %18s | %7d | %7d\n", r.server, r.cCmds, r.cWall.Seconds(),
			float64(r.cCmds)/r.cWall.Seconds(), perCmd(r.cCPU, r.cCmds), r.cTicks.Seconds(), only, r.rssKB/1024, r.pssKB/1024)
	}
	if len(results) == 2 {
		a, b := results[0], results[1]
		fmt.Printf("ratio %s/%s: CPU per command %s, wall %s\n", a.server, b.server,
			fratio(perCmd(a.cCPU, a.cCmds), perCmd(b.cCPU, b.cCmds)), fratio(a.cWall.Seconds(), b.cWall.Seconds()))
	}

	fmt.Printf("\nserial (one command in flight): server CPU and client wall per command, ms\n")
	fmt.Printf("%-52s | %6s", "command", "n")
	for _, r := range results {
		fmt.Printf(" | %-7s CPU | %-7s wall", r.server, r.server)
	}
	if len(results) == 2 {
		fmt.Printf(" | CPU ratio | concurrent wall %s, %s", results[0].server, results[1].server)
	}
	fmt.Println()
	row := func(name string, n int, get func(r *mixedResult) (cpu, wall, cwall float64)) {
		fmt.Printf("%-52s | %6d", name, n)
		var cpus, cwalls []float64
		for _, r := range results {
			cpu, wall, cwall := get(r)
			cpus, cwalls = append(cpus, cpu), append(cwalls, cwall)
			fmt.Printf(" | %11.3f | %12.3f", cpu, wall)
		}
		if len(results) == 2 {
			fmt.Printf(" | %9s | %.2f, %.2f", fratio(cpus[0], cpus[1]), cwalls[0], cwalls[1])
		}
		fmt.Println()
	}
	total := 0
	for _, k := range mixedKinds {
		st := results[0].sKinds[k]
		if st == nil {
			continue
		}
		total += st.n
		row(k, st.n, func(r *mixedResult) (float64, float64, float64) {
			s, l := r.sKinds[k], r.cLat[k]
			return perCmd(s.cpu, s.n), perCmd(s.wall, s.n), perCmd(l.wall, l.n)
		})
	}
	// The overall mean, and the mean without the body search, whose cost
	// without a full-text index grows with the mailbox.
	for _, skip := range []string{"", kindSearchBody} {
		name, n := "all commands", total
		if skip != "" {
			if results[0].sKinds[skip] == nil {
				continue
			}
			name, n = "all but "+skip, total-results[0].sKinds[skip].n
		}
		row(name, n, func(r *mixedResult) (float64, float64, float64) {
			var cpu, w, cw time.Duration
			for k, s := range r.sKinds {
				if k != skip {
					cpu, w, cw = cpu+s.cpu, w+s.wall, cw+r.cLat[k].wall
				}
			}
			return perCmd(cpu, n), perCmd(w, n), perCmd(cw, n)
		})
	}
	for _, r := range results {
		fmt.Printf("%s serial: wall %.1f s, server CPU %.2f s (ticks %.2f s)\n", r.server, r.sWall.Seconds(), r.sCPU.Seconds(), r.sTicks.Seconds())
	}

	if len(results) == 2 {
		mism := map[string]int{}
		for a := range steps {
			for i, s := range steps[a] {
				// After +FLAGS on a message already \Seen, Dovecot sends no
				// FETCH and pombo does: not a difference of results.
				if s.kind != kindStore && results[0].digest[a][i] != results[1].digest[a][i] {
					mism[s.kind]++
				}
			}
		}
		var ks []string
		for k := range mism {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		fmt.Printf("\nreplies that differ between the servers (SEARCH hits, FETCH lines, BODY[] bytes):")
		if len(ks) == 0 {
			fmt.Print(" none")
		}
		fmt.Println()
		for _, k := range ks {
			fmt.Printf("  %s: %d of %d\n", k, mism[k], results[0].sKinds[k].n)
		}
	}
}
