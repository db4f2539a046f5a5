package storage

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkHeaderRows reads what a message list's FETCH (Thunderbird: the
// newest 50, with size, date and header fields) needs from storage, in one
// query (FetchRowsWithHeaders). Before it, two queries over the same
// messages took 353-445 us where one takes 290-345 (commit 78e89b3).
func BenchmarkHeaderRows(b *testing.B) {
	msgs := corpusMessages(b)[:50]
	s, _ := openTest(b)
	u := addUser(b, s, "alice@example.test")
	ctx := context.Background()
	var uids []uint32
	var mbox int64
	for _, m := range msgs {
		d, err := s.Deliver(ctx, bytes.NewReader(m), []Recipient{{UserID: u.ID, Prefix: []byte(testPrefix)}}, DeliverOptions{})
		if err != nil {
			b.Fatal(err)
		}
		uids = append(uids, d[0].UID)
		mbox = d[0].MailboxID
	}
	const what = FetchInternalDate | FetchSize | FetchContent
	b.Run("one", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			rows, err := s.FetchRowsWithHeaders(ctx, mbox, uids, what)
			if err != nil || len(rows) != len(uids) {
				b.Fatalf("%d rows, %v", len(rows), err)
			}
		}
	})
}
