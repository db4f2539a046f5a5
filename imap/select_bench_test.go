package imap_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"

	"pombo/server"
	"pombo/storage"
	"pombo/testutil"
)

// BenchmarkSelect100k is SELECT INBOX of 100,000 messages, again and again
// on one connection, all but the newest 50 \Seen: after the first, the
// mailbox's view comes from the shared cache. The client runs in the same
// process, so the time and allocations per op include its side.
func BenchmarkSelect100k(b *testing.B) {
	const n = 100000
	srv := box100k(b, n)
	c, err := imapclient.DialInsecure(srv.Addr("imap.listen"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		d, err := c.Select("INBOX", nil).Wait()
		if err != nil || d.NumMessages != n {
			b.Fatalf("select: %v, %+v", err, d)
		}
	}
}

// BenchmarkFetchFlags100k is UID FETCH 1:* (UID FLAGS) on 100,000 messages,
// the flag resync of a client, from a raw connection that only scans the
// response. cpu-ns/cmd is the process's CPU time (server and the light
// client).
func BenchmarkFetchFlags100k(b *testing.B) {
	const n = 100000
	srv := box100k(b, n)
	send := rawSession(b, srv.Addr("imap.listen"))
	send("S", "SELECT INBOX")
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if got := send("F", "UID FETCH 1:* (UID FLAGS)"); got != n {
			b.Fatalf("%d FETCH responses, want %d", got, n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/cmd")
}

// box100k starts a server whose test user has n messages in INBOX, all but
// the newest 50 \Seen.
func box100k(b *testing.B, n int) *server.Server {
	b.Helper()
	srv := testutil.StartServer(b, testutil.Config(b))
	userID := testutil.AddUser(b, srv, testUser, testPass)
	st := srv.Store
	ctx := context.Background()
	mb, err := st.MailboxByName(ctx, userID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	// 1,000 deliveries, then copies of the mailbox into itself.
	var wg sync.WaitGroup
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				msg := simpleMsg(fmt.Sprintf("m %d %d", w, i), strings.Repeat("body text ", 200))
				if _, err := st.Deliver(ctx, strings.NewReader(msg), []storage.Recipient{{MailboxID: mb.ID}}, storage.DeliverOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for {
		uids, err := st.UIDs(ctx, mb.ID)
		if err != nil {
			b.Fatal(err)
		}
		if len(uids) >= n {
			break
		}
		if _, _, err := st.Copy(ctx, mb.ID, uids[:min(len(uids), n-len(uids))], mb.ID); err != nil {
			b.Fatal(err)
		}
	}
	uids, _ := st.UIDs(ctx, mb.ID)
	if _, err := st.SetFlags(ctx, mb.ID, uids[:n-50], storage.FlagsAdd, storage.FlagSeen, nil); err != nil {
		b.Fatal(err)
	}
	return srv
}
