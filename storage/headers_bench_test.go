package storage

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// BenchmarkHeaderReads reads the header sections of 50 messages, as a
// client's message list does (Thunderbird: the newest 50), with blobs as
// delivery stores them, then all rewritten header first, then all flat
// (as blobs written before schema 3). The messages come
// from the corpus: "mixed" takes them as they come (mostly under 25 KB),
// "25-100KB" only those of that size. Each case is measured:
//
//   - headers: one headerSections call for the 50 (IMAP HEADER.FIELDS);
//   - rows: the same query without the header, the floor of the above;
//   - top0: per message OpenMessageHeader and a read of the header (POP3
//     TOP n 0);
//   - body: per message OpenMessage and a read of all in 32 KiB reads
//     (IMAP BODY[]);
//   - retr: per message OpenMessageLoaded and a read of all (POP3 RETR).
func BenchmarkHeaderReads(b *testing.B) {
	msgs := corpusMessages(b)
	var mid [][]byte
	for _, m := range msgs {
		if len(m) >= 25<<10 && len(m) <= 100<<10 {
			mid = append(mid, m)
		}
	}
	for _, tc := range []struct {
		name string
		msgs [][]byte
	}{{"mixed", msgs[:50]}, {"25-100KB", mid}} {
		s, _ := openTest(b)
		u := addUser(b, s, "alice@example.test")
		ctx := context.Background()
		var ds []Delivery
		for len(ds) < 50 {
			for _, m := range tc.msgs[:min(len(tc.msgs), 50-len(ds))] {
				d, err := s.Deliver(ctx, bytes.NewReader(m), []Recipient{{UserID: u.ID, Prefix: []byte(testPrefix)}}, DeliverOptions{})
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, d[0])
			}
		}
		uids := make([]uint32, len(ds))
		hsizes := make([]int64, len(ds))
		for i, d := range ds {
			uids[i] = d.UID
			_, hsizes[i] = blobOf(b, s, d.MessageID)
		}
		mbox := ds[0].MailboxID
		for _, layout := range []string{"delivered", "header-first", "flat"} {
			if layout != "delivered" {
				for _, d := range ds {
					id, _ := blobOf(b, s, d.MessageID)
					rewrite(b, s, id, readAll(b, s, d.MessageID)[len(testPrefix):], layout == "header-first")
				}
			}
			pre := tc.name + "/" + layout + "/"
			b.Run(pre+"headers", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					got, err := s.headerSections(ctx, mbox, uids)
					if err != nil || len(got) != len(uids) {
						b.Fatalf("%d sections, %v", len(got), err)
					}
				}
			})
			b.Run(pre+"top0", func(b *testing.B) {
				b.ReportAllocs()
				buf := make([]byte, MaxHeaderSection)
				for i := 0; i < b.N; i++ {
					for j, d := range ds {
						r, err := s.OpenMessageHeader(ctx, d.MessageID)
						if err != nil {
							b.Fatal(err)
						}
						n := int64(len(testPrefix)) + hsizes[j]
						if n > int64(len(buf)) {
							buf = make([]byte, n)
						}
						if _, err := io.ReadFull(r, buf[:n]); err != nil {
							b.Fatal(err)
						}
						r.Close()
					}
				}
			})
			b.Run(pre+"body", func(b *testing.B) {
				b.ReportAllocs()
				buf := make([]byte, 32<<10)
				for i := 0; i < b.N; i++ {
					for _, d := range ds {
						r, err := s.OpenMessage(ctx, d.MessageID)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, buf); err != nil {
							b.Fatal(err)
						}
						r.Close()
					}
				}
			})
			b.Run(pre+"retr", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					for _, d := range ds {
						r, err := s.OpenMessageLoaded(ctx, d.MessageID)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := io.Copy(io.Discard, r); err != nil {
							b.Fatal(err)
						}
						r.Close()
					}
				}
			})
		}
		b.Run(tc.name+"/rows", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				n, err := headerRowsOnly(ctx, s, mbox, uids)
				if err != nil || n != len(uids) {
					b.Fatalf("%d rows, %v", n, err)
				}
			}
		})
	}
}

// headerRowsOnly is the header fetch's selection of rows, reading no chunk.
func headerRowsOnly(ctx context.Context, s *Store, mailboxID int64, uids []uint32) (int, error) {
	rows, err := s.query(ctx, `SELECT m.uid, m.prefix, b.header_size
		FROM messages m JOIN blobs b ON b.id = m.blob_id
		WHERE m.mailbox_id = ? AND m.uid IN (SELECT value FROM json_each(?))`, mailboxID, uidList(uids))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	var uid, hs int64
	var prefix []byte
	for rows.Next() {
		if err := rows.Scan(&uid, &prefix, &hs); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}
