package storage

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// writtenBytes is what this process has had written to disk so far
// (/proc/self/io write_bytes; 0 where there is no such file).
func writtenBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parallel calls f n times in all from w goroutines. A goroutine whose call
// fails stops; the first error is returned once every goroutine has.
func parallel(n, w int, f func() error) error {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := f(); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

// fill puts n messages in the user's INBOX, 64 at a time in parallel.
func fill(b *testing.B, s *Store, userID int64, n int) {
	b.Helper()
	msg := testMessage(0, 4096)
	err := parallel(n, 64, func() error {
		_, err := s.Deliver(context.Background(), bytes.NewReader(msg), []Recipient{{UserID: userID}}, DeliverOptions{})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDeliver measures Deliver of 4 KB messages with 1 and 16
// concurrent callers, into an empty INBOX and into one of 100,000 messages.
// It reports messages/s, CPU per message and commits (= WAL fsyncs with
// synchronous=FULL) per message, and the octets written to disk per
// message (WAL frames and checkpoints: the cost of every commit rewriting
// whole pages).
func BenchmarkDeliver(b *testing.B) {
	for _, existing := range []int{0, 100000} {
		for _, callers := range []int{1, 16} {
			name := map[int]string{0: "empty", 100000: "100k"}[existing]
			b.Run(name+"/callers="+strconv.Itoa(callers), func(b *testing.B) {
				s, _ := openTest(b)
				u := addUser(b, s, "alice@example.test")
				if existing > 0 {
					fill(b, s, u.ID, existing)
				}
				msg := testMessage(1, 4096)
				st0 := s.Stats()
				b.SetBytes(int64(len(msg)))
				b.ResetTimer()
				cpu0, t0, w0 := cpuTime(), time.Now(), writtenBytes()
				err := parallel(b.N, callers, func() error {
					_, err := s.Deliver(context.Background(), bytes.NewReader(msg), []Recipient{{UserID: u.ID}}, DeliverOptions{})
					return err
				})
				if err != nil {
					b.Error(err)
				}
				el, cpu, w := time.Since(t0), cpuTime()-cpu0, writtenBytes()-w0
				b.StopTimer()
				st := s.Stats()
				b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
				b.ReportMetric(float64(st.Commits-st0.Commits)/float64(b.N), "fsyncs/msg")
				b.ReportMetric(float64(w)/1024/float64(b.N), "disk-KB/msg")
			})
		}
	}
}
