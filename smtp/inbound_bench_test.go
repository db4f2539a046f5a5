package smtp_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sendOne is a minimal client, like smtp-source: one connection per
// message, no pipelining.
func sendOne(addr string, msg []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	expect := func(code string) error {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.HasPrefix(line, code) {
				return fmt.Errorf("want %s, got %q", code, line)
			}
			if len(line) < 4 || line[3] != '-' {
				return nil
			}
		}
	}
	steps := []struct{ send, want string }{
		{"", "220"},
		{"EHLO bench.example\r\n", "250"},
		{"MAIL FROM:<bench@remote.test>\r\n", "250"},
		{"RCPT TO:<alice@example.test>\r\n", "250"},
		{"DATA\r\n", "354"},
	}
	for _, s := range steps {
		if s.send != "" {
			if _, err := io.WriteString(c, s.send); err != nil {
				return err
			}
		}
		if err := expect(s.want); err != nil {
			return err
		}
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.WriteString(c, ".\r\n"); err != nil {
		return err
	}
	if err := expect("250"); err != nil {
		return err
	}
	io.WriteString(c, "QUIT\r\n")
	return expect("221")
}

func benchMessage(size int) []byte {
	var b strings.Builder
	b.WriteString("From: <bench@remote.test>\r\nTo: <alice@example.test>\r\nSubject: bench\r\nMessage-Id: <x@bench>\r\n\r\n")
	line := strings.Repeat("X", 78) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}

// BenchmarkInbound measures whole SMTP transactions (connect, EHLO, MAIL,
// RCPT, DATA, QUIT) against an in-process inbound server, every message
// durable before its 250. CPU per message counts client and server alike
// (one process); bench/smtp/run.sh measures the real binary alone.
func BenchmarkInbound(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		for _, sessions := range []int{1, 10, 50} {
			b.Run("size="+strconv.Itoa(size>>10)+"KB/sessions="+strconv.Itoa(sessions), func(b *testing.B) {
				d := startDirect(b, nil)
				msg := benchMessage(size)
				b.SetBytes(int64(len(msg)))
				b.ResetTimer()
				cpu0, t0 := processCPU(), time.Now()
				var next atomic.Int64
				var wg sync.WaitGroup
				for s := 0; s < sessions; s++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if err := sendOne(d.addr, msg); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				el, cpu := time.Since(t0), processCPU()-cpu0
				b.StopTimer()
				b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
			})
		}
	}
}
