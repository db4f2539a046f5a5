// Command imapbench measures pombo's IMAP server on a large INBOX: SELECT,
// UID FETCH 1:* (UID FLAGS), FETCH 1:* (ENVELOPE), UID SEARCH on a header
// and on body text. The server runs in a child process so that its CPU time
// (utime+stime from /proc) and RSS are its own.
//
//	go run ./bench/imap -n 100000 -corpus /tmp/c2000.mbox
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"pombo/auth"
	"pombo/imap"
	"pombo/storage"
)

const (
	user = "bench@example.test"
	pass = "bench password 1"
)

func main() {
	n := flag.Int("n", 100000, "messages in INBOX")
	corpus := flag.String("corpus", "", "mbox from make_corpus.py (required to fill)")
	dir := flag.String("dir", "", "data directory (kept; reused when already filled)")
	serve := flag.Bool("serve", false, "internal: run the server in this process")
	rounds := flag.Int("rounds", 3, "times each command runs")
	flag.Parse()
	if *serve {
		runServer(*dir)
		return
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "imapbench")
		if err != nil {
			log.Fatal(err)
		}
		*dir = d
	}
	fill(*dir, *n, *corpus)
	addr, child := startChild(*dir)
	defer child.Process.Kill()
	pid := child.Process.Pid

	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pombo, %d messages, server RSS after login %s\n", *n, rss(pid))
	type cmd struct {
		name string
		run  func() error
	}
	drain := func(fc *imapclient.FetchCommand) error {
		for m := fc.Next(); m != nil; m = fc.Next() {
			m.Collect()
		}
		return fc.Close()
	}
	cmds := []cmd{
		{"SELECT INBOX", func() error { _, err := c.Select("INBOX", nil).Wait(); return err }},
		{"UID FETCH 1:* (UID FLAGS)", func() error {
			return drain(c.Fetch(goimap.UIDSet{goimap.UIDRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{UID: true, Flags: true}))
		}},
		{"FETCH 1:* (ENVELOPE)", func() error {
			return drain(c.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{Envelope: true}))
		}},
		{"UID SEARCH HEADER Message-ID", func() error {
			_, err := c.UIDSearch(&goimap.SearchCriteria{Header: []goimap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "bench-77777"}}}, nil).Wait()
			return err
		}},
		{"UID SEARCH BODY", func() error {
			_, err := c.UIDSearch(&goimap.SearchCriteria{Body: []string{"quarterly zebra"}}, nil).Wait()
			return err
		}},
	}
	fmt.Printf("%-32s %12s %14s %10s\n", "command", "wall ms", "server CPU ms", "RSS")
	for _, cm := range cmds {
		var wall, cpu time.Duration
		for r := 0; r < *rounds; r++ {
			c0 := cpuTime(pid)
			t0 := time.Now()
			if err := cm.run(); err != nil {
				log.Fatalf("%s: %v", cm.name, err)
			}
			wall += time.Since(t0)
			cpu += cpuTime(pid) - c0
		}
		fmt.Printf("%-32s %12.1f %14.1f %10s\n", cm.name, ms(wall)/float64(*rounds), ms(cpu)/float64(*rounds), rss(pid))
	}
	c.Logout().Wait()
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func fill(dir string, n int, corpus string) {
	st, err := storage.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	u, err := st.UserByAddress(ctx, user)
	if err == nil {
		mb, _ := st.MailboxByName(ctx, u.ID, "INBOX")
		if mb.Messages >= int64(n) {
			return
		}
	} else {
		st.AddDomain(ctx, "example.test")
		h, _ := auth.HashPassword(pass)
		if u, err = st.AddUser(ctx, user, h, 0); err != nil {
			log.Fatal(err)
		}
	}
	if corpus == "" {
		log.Fatal("-corpus is needed to fill the mailbox")
	}
	data, err := os.ReadFile(corpus)
	if err != nil {
		log.Fatal(err)
	}
	var msgs [][]byte
	for _, m := range bytes.Split(data, []byte("From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n")) {
		if len(bytes.TrimSpace(m)) > 0 {
			msgs = append(msgs, m)
		}
	}
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				hdr := fmt.Sprintf("Message-ID: <bench-%d@example.test>\r\n", i)
				if i == 4242 {
					hdr += "X-Note: quarterly zebra\r\n"
				}
				body := msgs[i%int64(len(msgs))]
				body = bytes.Replace(body, []byte("\nMessage-ID:"), []byte("\nX-Orig-Message-ID:"), 1)
				if bytes.HasPrefix(body, []byte("Message-ID:")) {
					body = append([]byte("X-Orig-"), body...)
				}
				r := io.MultiReader(strings.NewReader(hdr), bytes.NewReader(body))
				if i == 99999 {
					r = io.MultiReader(strings.NewReader(hdr), bytes.NewReader(body), strings.NewReader("\nthe quarterly zebra report\n"))
				}
				if _, err := st.Deliver(ctx, r, []storage.Recipient{{UserID: u.ID}}, storage.DeliverOptions{}); err != nil {
					log.Fatal(err)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("filled %d messages in %v\n", n, time.Since(t0).Round(time.Second))
}

func startChild(dir string) (string, *exec.Cmd) {
	self, _ := os.Executable()
	cmd := exec.Command(self, "-serve", "-dir", dir)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	return strings.TrimSpace(line), cmd
}

func runServer(dir string) {
	st, err := storage.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := imap.New(imap.Options{Store: st, Auth: &auth.Authenticator{Users: st, Log: lg}, Log: lg, AllowPlaintextFromLoopback: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Addr().String())
	srv.Serve(l)
}

// cpuTime is utime+stime of a process (clock ticks of 10 ms on Linux).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stt) * 10 * time.Millisecond
}

func rss(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "?"
}
