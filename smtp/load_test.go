package smtp_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"pombo/config"
)

// TestConcurrentDeliveriesAllLand: 50 clients send 20 messages each over
// one connection apiece; every message must be in the INBOX once.
func TestConcurrentDeliveriesAllLand(t *testing.T) {
	const clients, perClient = 50, 20
	e := start(t, func(c *config.Config) { c.Limits.MaxConnectionsPerIP = clients + 10 })
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := gosmtp.Dial(e.addr)
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			if err := cl.Hello("load.example"); err != nil {
				errs <- err
				return
			}
			for m := 0; m < perClient; m++ {
				msg := fmt.Sprintf("Message-ID: <%d.%d@load.example>\r\nSubject: load %d %d\r\n\r\n%s",
					c, m, c, m, strings.Repeat(strings.Repeat("body ", 15)+"\r\n", 12))
				if err := cl.SendMail("load@remote.test", []string{"alice@example.test"}, strings.NewReader(msg)); err != nil {
					errs <- fmt.Errorf("client %d message %d: %w", c, m, err)
					return
				}
			}
			cl.Quit()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ctx := context.Background()
	mb, err := e.srv.Store.MailboxByName(ctx, e.alice, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	n := 0
	for _, m := range e.mailbox(e.alice, "INBOX") {
		n++
		meta, err := e.srv.Store.Meta(ctx, m.msg.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen[meta.Envelope.MessageID]++
	}
	if n != clients*perClient || mb.Messages != clients*perClient {
		t.Fatalf("INBOX has %d messages (counter %d), want %d", n, mb.Messages, clients*perClient)
	}
	for c := 0; c < clients; c++ {
		for m := 0; m < perClient; m++ {
			if id := fmt.Sprintf("%d.%d@load.example", c, m); seen[id] != 1 {
				t.Errorf("message %s stored %d times", id, seen[id])
			}
		}
	}
}

// vmRSS is the resident set size of this process, in bytes.
func vmRSS(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestHugeMessageRefusedWithoutHoldingIt sends 60 MB against the default
// 50 MB limit: it is refused with 552, nothing is stored, and the process
// does not grow by anything near the message size (the server streams it
// into storage's spool file and drains the rest).
func TestHugeMessageRefusedWithoutHoldingIt(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 60 MB")
	}
	const total = 60 << 20
	e := start(t, nil)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap0, rss0 := ms.HeapInuse, vmRSS(t)

	// Sample the heap while the message flows.
	stop := make(chan struct{})
	var peak uint64
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak {
				peak = ms.HeapInuse
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	r := dialRaw(t, e.addr)
	r.c.SetDeadline(time.Now().Add(5 * time.Minute))
	r.ehlo()
	r.openData()
	line := []byte(strings.Repeat("0123456789", 9) + "abcdefgh\r\n") // 100 octets
	buf := make([]byte, 0, 64<<10)
	for len(buf)+len(line) <= cap(buf) {
		buf = append(buf, line...)
	}
	r.send("Subject: huge\r\n\r\n")
	for sent := 0; sent < total; sent += len(buf) {
		if _, err := r.c.Write(buf); err != nil {
			t.Fatalf("after %d octets: %v", sent, err)
		}
	}
	r.send(".\r\n")
	r.expect("552 5.3.4 ")
	close(stop)
	sampler.Wait()
	rss1 := vmRSS(t)

	if n := e.blobs(); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	// The session is still usable.
	r.send("NOOP\r\n")
	r.expect("250 ")
	const bound = 30 << 20
	growth := int64(peak) - int64(heap0)
	t.Logf("heap in use: %d MB before, %d MB at peak; RSS %d MB before, %d MB after",
		heap0>>20, peak>>20, rss0>>20, rss1>>20)
	if growth > bound {
		t.Errorf("heap grew by %d MB while receiving 60 MB", growth>>20)
	}
	if rss1-rss0 > bound {
		t.Errorf("RSS grew by %d MB while receiving 60 MB", (rss1-rss0)>>20)
	}
}
