package imap_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"pombo/storage"
	"pombo/testutil"
)

// smallBox starts a server with ten accounts of the default mailboxes, as in
// the mixed IMAP benchmark, and returns a raw session of one of them with
// INBOX (a few messages) selected: every command then pays what a command
// pays in a client that has a mailbox open.
func smallBox(b *testing.B) func(tag, cmd string) int {
	b.Helper()
	cfg := testutil.Config(b)
	srv := testutil.StartServer(b, cfg)
	var id int64
	for a := 0; a < 10; a++ {
		u := fmt.Sprintf("u%d@example.test", a)
		if a == 3 {
			u = testUser
		}
		n := testutil.AddUser(b, srv, u, testPass)
		if u == testUser {
			id = n
		}
	}
	for i := 0; i < 20; i++ {
		m := simpleMsg(fmt.Sprintf("message %d", i), "body")
		if _, err := srv.Store.Deliver(context.Background(), bytes.NewReader([]byte(m)),
			[]storage.Recipient{{UserID: id, Mailbox: "INBOX"}}, storage.DeliverOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	send := rawSession(b, srv.Addr("imap.listen"))
	send("S", "SELECT INBOX")
	return send
}

// benchCmd runs cmd again and again and reports ns/cmd (wall) and
// cpu-ns/cmd (the process's CPU time: the server and the light client).
func benchCmd(b *testing.B, cmd string, want int) {
	send := smallBox(b)
	send("W", cmd)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if n := send("C", cmd); n != want {
			b.Fatalf("%s: %d untagged responses, want %d", cmd, n, want)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/cmd")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/cmd")
}

// BenchmarkList is the mixed benchmark's LIST "" "*" of the default
// mailboxes.
func BenchmarkList(b *testing.B) { benchCmd(b, `LIST "" "*"`, len(storage.DefaultMailboxes)) }

// BenchmarkStatus is the mixed benchmark's STATUS of a folder.
func BenchmarkStatus(b *testing.B) {
	benchCmd(b, `STATUS "Sent" (UIDNEXT MESSAGES UNSEEN RECENT)`, 1)
}

// BenchmarkNoop is the floor every command pays.
func BenchmarkNoop(b *testing.B) { benchCmd(b, "NOOP", 0) }
