package storage

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkBlobIO measures the reads and writes of raw messages through
// the API only (no layout is named), so that it runs the same on any cut of
// the chunks, to compare one build with another. The 300 corpus messages
// are delivered once; reads are of the last 50 (a client's newest 50, most
// under 25 KB) or of those of 25 KB and more ("big"):
//
//   - headers: one headerSections call (IMAP BODY.PEEK[HEADER.FIELDS]);
//   - body: per message OpenMessage and a read of all in 32 KiB reads
//     (IMAP BODY[]);
//   - text: per message OpenMessage, a seek past the header and a read of
//     the rest (IMAP BODY[TEXT]);
//   - partial: per big message OpenMessage and a read of 16 KiB at 16 KiB
//     (IMAP BODY[]<16384.16384>, a client fetching by pieces);
//   - retr: per message OpenMessageLoaded and a read of all (POP3 RETR);
//   - deliver: Deliver of each corpus message in turn (one caller), and of
//     messages of 20 KB and 100 KB, with the CPU of the process per message.
func BenchmarkBlobIO(b *testing.B) {
	msgs := corpusMessages(b)
	s, _ := openTest(b)
	u := addUser(b, s, "alice@example.test")
	ctx := context.Background()
	prefix := []byte("Delivered-To: alice@example.test\r\n")
	var ds []Delivery
	for _, m := range msgs {
		d, err := s.Deliver(ctx, bytes.NewReader(m), []Recipient{{UserID: u.ID, Prefix: prefix}}, DeliverOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, d[0])
	}
	last := ds[len(ds)-50:]
	var big []Delivery
	for i, d := range ds {
		if len(msgs[i]) >= 25<<10 {
			big = append(big, d)
		}
	}
	b.Logf("%d messages, %d of 25 KB or more", len(ds), len(big))
	hsize := map[int64]int64{}
	for _, d := range ds {
		m, err := s.Meta(ctx, d.MessageID)
		if err != nil {
			b.Fatal(err)
		}
		hsize[d.MessageID] = m.HeaderSize
	}
	buf := make([]byte, 32<<10)
	readAll := func(b *testing.B, open func(context.Context, int64) (*BlobReader, error), d Delivery, skip, n int64) {
		r, err := open(ctx, d.MessageID)
		if err != nil {
			b.Fatal(err)
		}
		if skip > 0 {
			if _, err := r.Seek(skip, io.SeekStart); err != nil {
				b.Fatal(err)
			}
		}
		var src io.Reader = r
		if n >= 0 {
			src = io.LimitReader(r, n)
		}
		if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, src, buf); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
	reads := []struct {
		name string
		set  []Delivery
		f    func(b *testing.B, d Delivery)
	}{
		{"body", last, func(b *testing.B, d Delivery) { readAll(b, s.OpenMessage, d, 0, -1) }},
		{"body-big", big, func(b *testing.B, d Delivery) { readAll(b, s.OpenMessage, d, 0, -1) }},
		{"text", last, func(b *testing.B, d Delivery) { readAll(b, s.OpenMessage, d, hsize[d.MessageID], -1) }},
		{"text-big", big, func(b *testing.B, d Delivery) { readAll(b, s.OpenMessage, d, hsize[d.MessageID], -1) }},
		{"partial-big", big, func(b *testing.B, d Delivery) { readAll(b, s.OpenMessage, d, 16<<10, 16<<10) }},
		{"retr", last, func(b *testing.B, d Delivery) { readAll(b, s.OpenMessageLoaded, d, 0, -1) }},
		{"retr-big", big, func(b *testing.B, d Delivery) { readAll(b, s.OpenMessageLoaded, d, 0, -1) }},
	}
	b.Run("headers", func(b *testing.B) {
		uids := make([]uint32, len(last))
		for i, d := range last {
			uids[i] = d.UID
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			got, err := s.headerSections(ctx, last[0].MailboxID, uids)
			if err != nil || len(got) != len(uids) {
				b.Fatalf("%d sections, %v", len(got), err)
			}
		}
	})
	for _, rd := range reads {
		b.Run(rd.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for _, d := range rd.set {
					rd.f(b, d)
				}
			}
		})
	}

	deliver := func(b *testing.B, set [][]byte) {
		b.ReportAllocs()
		cpu0, t0 := cpuTime(), time.Now()
		for i := 0; i < b.N; i++ {
			for _, m := range set {
				if _, err := s.Deliver(ctx, bytes.NewReader(m), []Recipient{{UserID: u.ID, Prefix: prefix}}, DeliverOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		}
		n := float64(b.N * len(set))
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/n, "cpu-µs/msg")
		b.ReportMetric(float64(time.Since(t0).Microseconds())/n, "µs/msg")
	}
	b.Run("deliver-corpus50", func(b *testing.B) { deliver(b, msgs[len(msgs)-50:]) })
	for _, size := range []int{20 << 10, 100 << 10} {
		m := testMessage(7, size)
		b.Run("deliver-"+map[int]string{20 << 10: "20KB", 100 << 10: "100KB"}[size], func(b *testing.B) { deliver(b, [][]byte{m}) })
	}
}
