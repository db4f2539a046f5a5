package storage

import (
	"context"
	"testing"
)

// BenchmarkFlagToggle measures STORE +FLAGS (\Seen) and -FLAGS (\Seen) on
// one message of a 10,000-message INBOX, alternately: the write cost of a
// flag change, next to the search and the SELECT that read flags
// (BenchmarkSearchUnseen, BenchmarkView).
func BenchmarkFlagToggle(b *testing.B) {
	s, mb := benchBox(b, 10000)
	ctx := context.Background()
	benchCPU(b, func(i int) {
		op := FlagsAdd
		if i%2 == 1 {
			op = FlagsRemove
		}
		if _, err := s.SetFlags(ctx, mb, []uint32{uint32(5000 + i%100)}, op, FlagSeen, nil); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkSearchUnseen is UID SEARCH UNSEEN on 10,000 messages, 50 unseen,
// in SQL (IMAP answers it from its selected view when it can).
func BenchmarkSearchUnseen(b *testing.B) {
	s, mb := benchBox(b, 10000)
	ctx := context.Background()
	benchCPU(b, func(int) {
		got, err := s.Search(ctx, mb, &SearchCriteria{NotFlags: FlagSeen})
		if err != nil || len(got) != 50 {
			b.Fatalf("%d found, %v", len(got), err)
		}
	})
}

// BenchmarkView is the read of SELECT on 10,000 messages.
func BenchmarkView(b *testing.B) {
	s, mb := benchBox(b, 10000)
	ctx := context.Background()
	benchCPU(b, func(int) {
		v, err := s.View(ctx, mb)
		if err != nil || len(v.UIDs) != 10000 {
			b.Fatalf("%v", err)
		}
	})
}

// benchBox is an INBOX of n messages, all \Seen but the newest 50.
func benchBox(b *testing.B, n int) (*Store, int64) {
	b.Helper()
	s, _ := openTest(b)
	u := addUser(b, s, "alice@example.test")
	fill(b, s, u.ID, n)
	ctx := context.Background()
	mbx, err := s.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	uids := make([]uint32, 0, n)
	for i := 1; i <= n-50; i++ {
		uids = append(uids, uint32(i))
	}
	if _, err := s.SetFlags(ctx, mbx.ID, uids, FlagsAdd, FlagSeen, nil); err != nil {
		b.Fatal(err)
	}
	return s, mbx.ID
}

// benchCPU runs op b.N times and reports the process's CPU time per op.
func benchCPU(b *testing.B, op func(i int)) {
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		op(i)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
