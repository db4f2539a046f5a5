package queue_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"pombo/dkim"
	"pombo/queue"
)

func benchMessage() []byte {
	msg, _ := testMessage("benchmark")
	return append(msg, bytes.Repeat([]byte(strings.Repeat("x", 70)+"\r\n"), 4096/72)...)
}

// BenchmarkEnqueue measures Enqueue alone (durable, one commit each when
// sequential; parallel callers share commits), with and without DKIM.
func BenchmarkEnqueue(b *testing.B) {
	for _, signed := range []bool{false, true} {
		name := "unsigned"
		if signed {
			name = "dkim"
		}
		for _, parallel := range []bool{false, true} {
			pname := name
			if parallel {
				pname += "/parallel"
			}
			b.Run(pname, func(b *testing.B) {
				e := newEnv(b, 1)
				if signed {
					k, _ := dkim.GenerateKey()
					if err := e.st.AddDKIMKey(context.Background(), "example.org", "s", k); err != nil {
						b.Fatal(err)
					}
				}
				q := queue.New(e.opts) // not started: nothing is sent
				msg := benchMessage()
				rcpts := []string{"bob@remote.test", "carol@remote.test"}
				b.SetBytes(int64(len(msg)))
				b.ResetTimer()
				enqueue := func() {
					if _, err := q.Enqueue(context.Background(), "alice@example.org", e.aliceID, rcpts, bytes.NewReader(msg), queue.EnqueueOptions{}); err != nil {
						b.Error(err)
					}
				}
				if parallel {
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							enqueue()
						}
					})
				} else {
					for i := 0; i < b.N; i++ {
						enqueue()
					}
				}
			})
		}
	}
}

// BenchmarkDeliver measures the whole path: enqueue, schedule, SMTP to a
// loopback server, mark sent, free the message.
func BenchmarkDeliver(b *testing.B) {
	port, ls := listenSamePort(b, "127.0.0.2")
	r := startRemote(b, ls[0], &remote{}, nil)
	e := newEnv(b, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	msg := benchMessage()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
	}
	waitFor(b, 5*time.Minute, "all deliveries", func() bool { return len(r.messages()) == b.N })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	e.waitEmpty(time.Minute)
}
