package imap_test

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"pombo/testutil"
)

// BenchmarkFetchEnvelope measures FETCH 1:* (ENVELOPE) on a mailbox of
// 10,000 corpus messages (the 2000-message corpus delivered five times, or
// the mbox named by POMBO_BENCH_MBOX), from a raw connection that only
// scans the response, so that nearly all the work measured is the server's.
// ns/msg is wall time, cpu-ns/msg the process's CPU time (server and the
// light client), allocs/msg the process's allocations.
func BenchmarkFetchEnvelope(b *testing.B) {
	const total = 10000
	var msgs [][]byte
	if p := os.Getenv("POMBO_BENCH_MBOX"); p != "" {
		msgs = readMbox(b, p)
	} else {
		msgs = corpus(b, 2000)
	}
	cfg := testutil.Config(b)
	srv := testutil.StartServer(b, cfg)
	id := testutil.AddUser(b, srv, testUser, testPass)
	var all [][]byte
	for len(all) < total {
		all = append(all, msgs[:min(len(msgs), total-len(all))]...)
	}
	deliverAll(b, srv.Store, id, "INBOX", all)

	send := rawSession(b, srv.Addr("imap.listen"))
	send("S", "SELECT INBOX")
	send("W", "FETCH 1:* (ENVELOPE)") // warm the page cache

	b.Run(strconv.Itoa(total), func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for i := 0; i < b.N; i++ {
			if n := send("F", "FETCH 1:* (ENVELOPE)"); n != total {
				b.Fatalf("%d FETCH responses, want %d", n, total)
			}
		}
		b.StopTimer()
		per := float64(b.N * total)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/msg")
		b.ReportMetric(float64(cpuTime()-cpu0)/per, "cpu-ns/msg")
	})
}

// rawSession logs in on a raw connection to addr and returns a function
// that sends one command, reads its response to the tagged OK (anything else
// fails b) and returns the number of untagged responses counted by
// scanResponse. The connection closes with b.
func rawSession(b *testing.B, addr string) func(tag, cmd string) int {
	b.Helper()
	c, br := rawConn(b, addr)
	send := func(tag, cmd string) int {
		b.Helper()
		if _, err := fmt.Fprintf(c, "%s %s\r\n", tag, cmd); err != nil {
			b.Fatal(err)
		}
		n, status, err := scanResponse(br, tag, nil)
		if err != nil || status != "OK" {
			b.Fatalf("%s: %s %v", cmd, status, err)
		}
		return n
	}
	send("L", fmt.Sprintf("LOGIN %s %q", testUser, testPass))
	return send
}

// cpuTime is the CPU time (user and system) of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
