package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"pombo/auth"
	"pombo/storage"
)

// corpus holds the messages of an mbox from make_corpus.py.
type corpus [][]byte

func readCorpus(path string) corpus {
	if path == "" {
		log.Fatal("-corpus is needed to fill the mailboxes")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	var msgs corpus
	for _, m := range bytes.Split(data, []byte("From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n")) {
		if len(bytes.TrimSpace(m)) > 0 {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// Targets of the searches: the one message whose Message-ID is
// "bench-<headerTarget(n)>", and the one with "quarterly zebra" in its body
// (another has it in a header, which BODY must not find). With n = 100000:
// 77777, 99999 and 4242.
func headerTarget(n int) int { return int(int64(n) * 77777 / 100000) }
func bodyTarget(n int) int   { return n - 1 }
func decoyTarget(n int) int  { return min(4242, n/3) }

// message i of n of the benchmark mailbox, with LF line ends: a corpus
// message with a Message-ID of its own (bench-i) and the search targets. Both servers get the very
// same bytes (pombo stores them with CRLF, as SMTP would hand them over).
func (c corpus) message(i, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Message-ID: <bench-%d@example.test>\n", i)
	if i == decoyTarget(n) {
		b.WriteString("X-Note: quarterly zebra\n")
	}
	if i == bodyTarget(n) {
		// A plain text body of our own: appended to a corpus message the
		// phrase could land in a multipart epilogue, which is no body text.
		b.WriteString("From: Report <report@example.test>\nTo: bench@example.test\nSubject: report\n" +
			"Date: Mon, 1 Jan 2024 00:00:00 +0000\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n" +
			"Here is the quarterly zebra report.\n")
		return b.Bytes()
	}
	body := c[i%len(c)]
	body = bytes.Replace(body, []byte("\nMessage-ID:"), []byte("\nX-Orig-Message-ID:"), 1)
	if bytes.HasPrefix(body, []byte("Message-ID:")) {
		b.WriteString("X-Orig-")
	}
	b.Write(body)
	return b.Bytes()
}

// parallel runs f(i) for i in [0, n) on a few goroutines.
func parallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

func fillPombo(dir string, n int, msgs func() corpus) {
	st, err := storage.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	u, err := st.UserByAddress(ctx, user)
	if err == nil {
		mb, err := st.MailboxByName(ctx, u.ID, "INBOX")
		if err == nil && mb.Messages >= int64(n) {
			return
		}
		log.Fatalf("%s holds a partial mailbox: delete it", dir)
	}
	st.AddDomain(ctx, "example.test")
	h, _ := auth.HashPassword(pass)
	if u, err = st.AddUser(ctx, user, h, 0); err != nil {
		log.Fatal(err)
	}
	c := msgs()
	t0 := time.Now()
	// Many concurrent deliveries, as from an SMTP server: group commit.
	parallel(n, 32, func(i int) {
		if _, err := st.Deliver(ctx, bytes.NewReader(c.message(i, n)), []storage.Recipient{{UserID: u.ID}}, storage.DeliverOptions{}); err != nil {
			log.Fatal(err)
		}
	})
	fmt.Printf("pombo: filled %d messages in %v\n", n, time.Since(t0).Round(time.Second))
}

// fillMaildir writes the messages straight into Maildir/cur, named
// "<unique>,S=<size>:2," with mtime (Dovecot's internal date) as stored.
// A file "filled" marks a complete fill.
func fillMaildir(dir string, n int, msgs func() corpus) {
	md := filepath.Join(dir, "Maildir")
	mark := filepath.Join(dir, "filled")
	if b, err := os.ReadFile(mark); err == nil {
		if have, _ := strconv.Atoi(string(b)); have == n {
			return
		}
		log.Fatalf("%s holds a mailbox of another size: delete it", dir)
	}
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, d), 0o700); err != nil {
			log.Fatal(err)
		}
	}
	c := msgs()
	t0 := time.Now()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	parallel(n, 4, func(i int) {
		m := c.message(i, n)
		name := fmt.Sprintf("%d.M%dP1.bench,S=%d:2,", 1700000000+i, i, len(m))
		p := filepath.Join(md, "cur", name)
		if err := os.WriteFile(p, m, 0o600); err != nil {
			log.Fatal(err)
		}
		t := base.Add(time.Duration(i) * time.Minute)
		os.Chtimes(p, t, t)
	})
	if err := os.WriteFile(mark, []byte(strconv.Itoa(n)), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dovecot: wrote %d maildir files in %v\n", n, time.Since(t0).Round(time.Second))
}
