package imap_test

import (
	"fmt"
	"testing"

	"pombo/testutil"
)

// BenchmarkFetchHeaders measures Thunderbird's message-list fetch, UID FETCH
// of the newest 50 messages with their size, flags, date and the header
// fields of its list, on a mailbox of the 2000 corpus messages, from a raw
// connection that only scans the response. ns/cmd is wall time,
// cpu-ns/cmd the process's CPU time (server and the light client).
func BenchmarkFetchHeaders(b *testing.B) {
	const items = "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])"
	msgs := corpus(b, 2000)
	cfg := testutil.Config(b)
	srv := testutil.StartServer(b, cfg)
	id := testutil.AddUser(b, srv, testUser, testPass)
	deliverAll(b, srv.Store, id, "INBOX", msgs)

	send := rawSession(b, srv.Addr("imap.listen"))
	send("S", "SELECT INBOX")
	cmd := fmt.Sprintf("UID FETCH %d:* %s", len(msgs)-49, items)
	send("W", cmd) // warm the page cache
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if n := send("F", cmd); n != 50 {
			b.Fatalf("%d FETCH responses, want 50", n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/cmd")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/cmd")
}
