package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkDeliverWALPages counts the pages that delivery commits write to
// the WAL, and which b-tree each belongs to: the cost of a commit is the
// write and fsync of those pages. It delivers 3-5 KB messages of the corpus
// in commits of exactly 1, 3 and 10 messages, with checkpoints off, then
// reads the frames from the -wal file and maps their pages with the dbstat
// table of the sqlite3 command (go-sqlite3 is built without it). It reports
// frames and KB per commit and logs them per b-tree (-v).
//
// Run it with a fixed count, e.g. -bench DeliverWALPages -benchtime 300x -v.
// POMBO_WALPAGES_FILL=n first puts n messages in the INBOX.
func BenchmarkDeliverWALPages(b *testing.B) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		b.Skip("no sqlite3 command for dbstat")
	}
	var msgs [][]byte
	for _, m := range corpusMessages(b) {
		if len(m) >= 3000 && len(m) <= 5000 {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		b.Fatal("no corpus message of 3-5 KB")
	}
	fill, _ := strconv.Atoi(os.Getenv("POMBO_WALPAGES_FILL"))
	for _, k := range []int{1, 3, 10} {
		b.Run(fmt.Sprintf("commit=%d", k), func(b *testing.B) {
			s, _ := openTest(b)
			ctx := context.Background()
			u := addUser(b, s, "alice@example.test")
			prefix := []byte("Return-Path: <sender@example.org>\r\nDelivered-To: alice@example.test\r\n" +
				"Received: from client.example.org (client.example.org [192.0.2.7])\r\n" +
				"\tby mx.example.test (pombo) with ESMTP id 0123456789abcdef\r\n" +
				"\tfor <alice@example.test>; Mon, 02 Jan 2006 15:04:05 +0000\r\n")
			var next atomic.Int64
			deliver := func() error {
				m := msgs[int(next.Add(1))%len(msgs)]
				_, err := s.Deliver(ctx, bytes.NewReader(m), []Recipient{{UserID: u.ID, Prefix: prefix}}, DeliverOptions{})
				return err
			}
			if err := parallel(fill, 32, deliver); err != nil {
				b.Fatal(err)
			}
			if _, err := s.wdb.Exec("PRAGMA wal_autocheckpoint = 0"); err != nil {
				b.Fatal(err)
			}
			// Statements prepared, and the first splits of an empty
			// database behind.
			for range 30 {
				if err := deliver(); err != nil {
					b.Fatal(err)
				}
			}
			walTruncate(b, s)
			commits := (b.N + k - 1) / k
			b.ResetTimer()
			for range commits {
				deliverBatch(b, s, k, deliver)
			}
			b.StopTimer()
			r := walPages(b, s)
			if r.commits != commits {
				b.Fatalf("%d commits in the WAL, %d made", r.commits, commits)
			}
			b.ReportMetric(float64(r.frames)/float64(r.commits), "frames/commit")
			b.ReportMetric(float64(r.frames*(r.pageSize+24))/1024/float64(r.commits), "KB/commit")
			b.ReportMetric(float64(r.frames)/float64(commits*k), "frames/msg")
			r.log(b)
		})
	}
}

// deliverBatch makes one commit of k deliveries: a write holds the writer
// until all k are queued behind it. The holding write changes nothing, so
// its commit writes no frame.
func deliverBatch(b *testing.B, s *Store, k int, deliver func() error) {
	held, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1 + k)
	go func() {
		defer wg.Done()
		s.write(context.Background(), func(*Tx) error { close(held); <-release; return nil })
	}()
	<-held
	for range k {
		go func() {
			defer wg.Done()
			if err := deliver(); err != nil {
				b.Error(err)
			}
		}()
	}
	for len(s.writes) < k {
		time.Sleep(20 * time.Microsecond)
	}
	close(release)
	wg.Wait()
}

func walTruncate(b *testing.B, s *Store) {
	var busy, logPages, done int
	if err := s.wdb.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done); err != nil || busy != 0 {
		b.Fatalf("checkpoint: busy %d, %v", busy, err)
	}
}

type walReport struct {
	commits, frames, pageSize int
	byTree                    map[string]int // "name/pagetype" -> frames
}

// walPages reads the frames of s's WAL and the owner of each page.
func walPages(b *testing.B, s *Store) walReport {
	wal, err := os.ReadFile(s.path + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	r := walReport{byTree: map[string]int{}}
	if len(wal) < 32 {
		return r
	}
	r.pageSize = int(binary.BigEndian.Uint32(wal[8:12]))
	owners := pageOwners(b, s.path)
	salt := binary.BigEndian.Uint32(wal[16:20])
	for off := 32; off+24+r.pageSize <= len(wal); off += 24 + r.pageSize {
		h := wal[off : off+24]
		if binary.BigEndian.Uint32(h[8:12]) != salt {
			break // frames of before the last reset
		}
		pg := binary.BigEndian.Uint32(h[0:4])
		o, ok := owners[pg]
		switch {
		case pg == 1:
			o = "page 1 (header)"
		case !ok:
			o = "freelist"
		}
		r.byTree[o]++
		r.frames++
		if binary.BigEndian.Uint32(h[4:8]) != 0 {
			r.commits++
		}
	}
	return r
}

// pageOwners maps page numbers to "b-tree/pagetype", from dbstat on a copy
// of the database and its WAL.
func pageOwners(b *testing.B, path string) map[uint32]string {
	dir := b.TempDir()
	for _, sfx := range []string{"", "-wal"} {
		data, err := os.ReadFile(path + sfx)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "c.db"+sfx), data, 0o600)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	out, err := exec.Command("sqlite3", filepath.Join(dir, "c.db"), "SELECT name, pageno, pagetype FROM dbstat").Output()
	if err != nil {
		b.Fatalf("sqlite3 dbstat: %v", err)
	}
	m := map[uint32]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "|")
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		m[uint32(n)] = f[0] + "/" + f[2]
	}
	return m
}

func (r walReport) log(b *testing.B) {
	names := make([]string, 0, len(r.byTree))
	for n := range r.byTree {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return r.byTree[names[i]] > r.byTree[names[j]] })
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d commits, %d frames of %d octets", r.commits, r.frames, r.pageSize)
	for _, n := range names {
		fmt.Fprintf(&sb, "\n\t%-40s %6.2f frames/commit", n, float64(r.byTree[n])/float64(r.commits))
	}
	b.Log(sb.String())
}
