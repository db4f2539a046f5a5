package pop3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pombo/storage"
	"pombo/testutil"
)

// corpusScript makes the shared corpus of realistic mail (see its README).
func corpusScript() string {
	if p := os.Getenv("POMBO_CORPUS_SCRIPT"); p != "" {
		return p
	}
	return "/work/shared/corpus/make_corpus.py"
}

// corpusCount is how many messages the client tests download: 2,000 by
// default, fewer with POMBO_POP3_CORPUS=n while working on them.
func corpusCount() int {
	if n, err := strconv.Atoi(os.Getenv("POMBO_POP3_CORPUS")); err == nil && n > 0 {
		return n
	}
	return 2000
}

var corpus struct {
	once sync.Once
	msgs [][]byte
	err  error
}

// corpusMessages returns the messages of the deterministic corpus. Making
// it takes ~30 s of Python, so the mbox is kept in the user's cache
// directory under a name that hashes the generator and the count: the same
// script always gives the same bytes.
func corpusMessages(t *testing.T) [][]byte {
	t.Helper()
	script := corpusScript()
	src, err := os.ReadFile(script)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus generator: %v", err)
		}
		t.Skipf("corpus generator: %v", err)
	}
	py := testutil.RequireTool(t, "python3")
	corpus.once.Do(func() {
		n := corpusCount()
		sum := sha256.Sum256(append(src, strconv.Itoa(n)...))
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		dir = filepath.Join(dir, "pombo-test")
		path := filepath.Join(dir, "corpus-"+hex.EncodeToString(sum[:8])+".mbox")
		data, err := os.ReadFile(path)
		if err != nil {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				corpus.err = err
				return
			}
			tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
			out, err := exec.Command(py, script, "--count", strconv.Itoa(n), "--out", tmp).CombinedOutput()
			if err != nil {
				corpus.err = &exec.Error{Name: script + ": " + string(out), Err: err}
				return
			}
			if err := os.Rename(tmp, path); err != nil {
				corpus.err = err
				return
			}
			if data, err = os.ReadFile(path); err != nil {
				corpus.err = err
				return
			}
		}
		corpus.msgs = splitMbox(data)
	})
	if corpus.err != nil {
		t.Fatal(corpus.err)
	}
	return corpus.msgs
}

// splitMbox splits an mbox as Python's mailbox module writes it: a "From "
// line opens each message, and one empty line separates messages.
func splitMbox(data []byte) [][]byte {
	var msgs [][]byte
	sep := []byte("\n\nFrom ")
	if !bytes.HasPrefix(data, []byte("From ")) {
		return nil
	}
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			break
		}
		data = data[nl+1:] // the From_ line
		end := bytes.Index(data, sep)
		if end < 0 {
			msgs = append(msgs, bytes.TrimSuffix(data, []byte("\n")))
			break
		}
		msgs = append(msgs, data[:end+1])
		data = data[end+2:]
	}
	return msgs
}

// fillCorpus delivers the first n messages of the corpus, as SMTP would,
// to the INBOX of each user given (one delivery, the message stored once),
// and returns the stored octets of each message in INBOX order.
func (e *env) fillCorpus(t *testing.T, n int, users ...int64) [][]byte {
	t.Helper()
	msgs := corpusMessages(t)[:n]
	t0 := time.Now()
	var rcpts []storage.Recipient
	for _, u := range users {
		rcpts = append(rcpts, storage.Recipient{UserID: u})
	}
	ids := make([]int64, len(msgs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(msgs) {
					return
				}
				ds, err := e.srv.Store.Deliver(context.Background(), bytes.NewReader(msgs[i]), rcpts, storage.DeliverOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = ds[0].MessageID
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Concurrent deliveries take UIDs in any order: sort by the INBOX.
	mb, err := e.srv.Store.MailboxByName(context.Background(), users[0], "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var stored [][]byte
	err = e.srv.Store.Messages(context.Background(), mb.ID, nil, func(m *storage.Message) error {
		stored = append(stored, e.stored(m.ID))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(msgs) {
		t.Fatalf("%d messages stored of %d", len(stored), len(msgs))
	}
	t.Logf("corpus of %d messages delivered and read back in %v", n, time.Since(t0).Round(time.Millisecond))
	return stored
}

// digestCounts is a multiset of message digests.
func digestCounts(msgs [][]byte) map[[32]byte]int {
	m := make(map[[32]byte]int, len(msgs))
	for _, b := range msgs {
		m[sha256.Sum256(b)]++
	}
	return m
}

// sameMessages reports how the downloaded messages differ from the
// expected ones, compared octet for octet (as a multiset: clients deliver
// in their own order and name files their own way).
func sameMessages(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d messages, want %d", what, len(got), len(want))
	}
	g, w := digestCounts(got), digestCounts(want)
	missing := 0
	for d, n := range w {
		if g[d] < n {
			missing += n - g[d]
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d messages not received octet for octet", what, missing, len(want))
		// Show the first mismatch against its closest candidate by prefix.
		for _, m := range got {
			if w[sha256.Sum256(m)] == 0 {
				best, at := []byte(nil), -1
				for _, c := range want {
					if d := firstDiff(m, c); d > at {
						best, at = c, d
					}
				}
				lo := max(0, at-80)
				t.Errorf("first unmatched message differs at octet %d:\n got %q\nwant %q", at, m[lo:min(len(m), at+80)], best[lo:min(len(best), at+80)])
				break
			}
		}
	}
}

// readDir returns the contents of every regular file under dir.
func readDir(t *testing.T, dir string) [][]byte {
	t.Helper()
	var out [][]byte
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out = append(out, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
