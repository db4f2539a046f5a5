package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func blobCount(t *testing.T, s *Store) int64 {
	t.Helper()
	n, _, err := s.BlobCount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestQueueLifecycleFreesBlob(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	alice := addUser(t, s, "alice@example.test")
	// A large message with bare LF line ends: stored in chunks, as CRLF.
	raw := bytes.ReplaceAll(testMessage(1, 3*ChunkSize), []byte("\r\n"), []byte("\n"))
	var signed []byte
	id, err := s.Enqueue(ctx, "alice@example.test", alice.ID, []string{"bob@remote.test", "carol@Remote.TEST", "bob@REMOTE.test"},
		bytes.NewReader(raw), EnqueueOptions{Sign: func(msg io.Reader, env *Envelope) ([]byte, error) {
			b, err := io.ReadAll(msg)
			signed = b
			if env.From[0].Host != "example.org" {
				t.Errorf("envelope From %+v", env.From)
			}
			return []byte("X-Sig: 1\r\n"), err
		}})
	if err != nil {
		t.Fatal(err)
	}
	crlf := bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
	if !bytes.Equal(signed, crlf) {
		t.Fatal("Sign did not see the message as stored")
	}
	m, err := s.QueueItem(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Recipients) != 2 || m.Recipients[1].Address != "carol@remote.test" || m.Subject != "message 1" || m.UserID != alice.ID {
		t.Fatalf("queued: %+v", m)
	}
	if m.Size != int64(len(crlf))+10 || m.HeaderSize <= 10 {
		t.Fatalf("sizes %d %d", m.Size, m.HeaderSize)
	}
	r, err := s.OpenQueued(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, append([]byte("X-Sig: 1\r\n"), crlf...)) {
		t.Fatal("OpenQueued does not return prefix + message")
	}
	if blobCount(t, s) != 1 {
		t.Fatal("want one blob")
	}

	due, err := s.DueRecipients(ctx, time.Now(), 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due: %v %v", due, err)
	}
	bob, carol := m.Recipients[0].ID, m.Recipients[1].ID
	claimed, err := s.MarkSending(ctx, []int64{bob, carol})
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %v %v", claimed, err)
	}
	// A second claim gets nothing: one worker per recipient.
	if again, _ := s.MarkSending(ctx, []int64{bob, carol}); len(again) != 0 {
		t.Fatalf("claimed twice: %v", again)
	}
	if due, _ := s.DueRecipients(ctx, time.Now(), 10); len(due) != 0 {
		t.Fatalf("sending recipients are due: %v", due)
	}
	if err := s.MarkSent(ctx, []int64{bob}, Attempt{RemoteMTA: "mx", Reply: "250 ok"}); err != nil {
		t.Fatal(err)
	}
	next := time.Now().Add(time.Hour)
	if err := s.MarkRetry(ctx, []int64{carol}, next, Attempt{RemoteMTA: "mx", StatusCode: "4.2.2", Reply: "452 full"}); err != nil {
		t.Fatal(err)
	}
	m, _ = s.QueueItem(ctx, id)
	if c := m.Recipients[1]; c.Status != QueuePending || c.Attempts != 1 || c.NextAttempt.Unix() != next.Unix() || c.LastError != "452 full" {
		t.Fatalf("after retry: %+v", c)
	}
	if t2, ok, _ := s.NextDue(ctx); !ok || t2.Unix() != next.Unix() {
		t.Fatalf("NextDue %v %v", t2, ok)
	}
	if n, err := s.RetryNow(ctx, id); err != nil || n != 1 {
		t.Fatalf("RetryNow: %d %v", n, err)
	}
	s.MarkSending(ctx, []int64{carol})
	if err := s.MarkFailed(ctx, []int64{carol}, Attempt{RemoteMTA: "mx", StatusCode: "5.1.1", Reply: "550 no"}); err != nil {
		t.Fatal(err)
	}
	// Failed but unreported: still queued, and due for its report.
	if due, _ := s.DueRecipients(ctx, time.Now(), 10); len(due) != 1 || due[0].Status != QueueFailed {
		t.Fatalf("due after failure: %+v", due)
	}
	dsn := "From: MAILER-DAEMON@example.test\r\nSubject: failed\r\n\r\nsorry\r\n"
	if err := s.Bounce(ctx, id, []int64{carol}, strings.NewReader(dsn), []Recipient{{UserID: alice.ID}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueueItem(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("queue row left: %v", err)
	}
	// The queued message is freed; the DSN is the only blob, in the INBOX.
	if blobCount(t, s) != 1 {
		t.Fatalf("%d blobs", blobCount(t, s))
	}
	inbox, _ := s.MailboxByName(ctx, alice.ID, "INBOX")
	if inbox.Messages != 1 {
		t.Fatalf("INBOX has %d messages", inbox.Messages)
	}
}

func TestQueueBounceToRemoteSender(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	id, err := s.Enqueue(ctx, "someone@remote.test", 0, []string{"x@other.test"}, strings.NewReader("Subject: x\r\n\r\nx\r\n"), EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.QueueItem(ctx, id)
	rid := m.Recipients[0].ID
	s.MarkSending(ctx, []int64{rid})
	s.MarkFailed(ctx, []int64{rid}, Attempt{StatusCode: "5.1.2", Reply: "no such domain"})
	if err := s.Bounce(ctx, id, []int64{rid}, strings.NewReader("Subject: dsn\r\n\r\nsorry\r\n"), nil, []string{"someone@remote.test"}); err != nil {
		t.Fatal(err)
	}
	l, err := s.QueueList(ctx)
	if err != nil || len(l) != 1 {
		t.Fatalf("queue: %+v %v", l, err)
	}
	if l[0].Sender != "" || l[0].Recipients[0].Address != "someone@remote.test" || l[0].Subject != "dsn" {
		t.Fatalf("queued bounce: %+v", l[0])
	}
	if blobCount(t, s) != 1 {
		t.Fatalf("%d blobs", blobCount(t, s))
	}
}

func TestQueueOperatorActions(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	if _, err := s.RetryNow(ctx, 42); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RetryNow of nothing: %v", err)
	}
	if err := s.DeleteQueued(ctx, 42); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteQueued of nothing: %v", err)
	}
	id, _ := s.Enqueue(ctx, "a@example.test", 0, []string{"b@remote.test"}, strings.NewReader("Subject: x\r\n\r\nx\r\n"), EnqueueOptions{})
	m, _ := s.QueueItem(ctx, id)
	s.MarkSending(ctx, []int64{m.Recipients[0].ID})
	if n, err := s.ResetSending(ctx); err != nil || n != 1 {
		t.Fatalf("ResetSending: %d %v", n, err)
	}
	if err := s.DeleteQueued(ctx, id); err != nil {
		t.Fatal(err)
	}
	if blobCount(t, s) != 0 {
		t.Fatal("delete left the blob")
	}
}

func TestEnqueueRefusesBadInput(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	for _, rcpts := range [][]string{nil, {"no-at-sign"}, {"a@b\r\nRCPT TO:<x@y>"}, {"<a@b>"}, {"a@"}} {
		if _, err := s.Enqueue(ctx, "a@example.test", 0, rcpts, strings.NewReader("x\r\n"), EnqueueOptions{}); err == nil {
			t.Errorf("Enqueue to %q succeeded", rcpts)
		}
	}
	if _, err := s.Enqueue(ctx, "a@b>\r\nDATA", 0, []string{"x@y.test"}, strings.NewReader("x\r\n"), EnqueueOptions{}); err == nil {
		t.Error("Enqueue with an injected sender succeeded")
	}
	failing := EnqueueOptions{Sign: func(io.Reader, *Envelope) ([]byte, error) { return nil, errors.New("no") }}
	if _, err := s.Enqueue(ctx, "a@example.test", 0, []string{"x@y.test"}, strings.NewReader("x\r\n"), failing); err == nil {
		t.Error("Enqueue ignored a Sign error")
	}
	if blobCount(t, s) != 0 {
		t.Fatal("a refused Enqueue left a blob")
	}
}

// A delivery with local and remote recipients stores both parts in one
// transaction, with one blob, or neither: a client told to retry must not
// find a first local copy left behind.
func TestDeliverWithQueueCopy(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	alice := addUser(t, s, "alice@example.test")
	bob := addUser(t, s, "bob@example.test")
	msg := testMessage(7, 5000)
	received := []byte("Received: from client\r\n\tby mx; Mon, 02 Jan 2006 15:04:05 +0000\r\n")
	var signed []byte
	q := &QueueCopy{Sender: "alice@example.test", UserID: alice.ID, Recipients: []string{"x@remote.test", "y@REMOTE.test", "x@remote.test"},
		Options: EnqueueOptions{Prefix: received, Sign: func(m io.Reader, env *Envelope) ([]byte, error) {
			b, err := io.ReadAll(m)
			signed = b
			if env.Subject != "message 7" {
				t.Errorf("Sign got envelope %+v", env)
			}
			return []byte("X-Sig: 1\r\n"), err
		}}}
	local := []Recipient{{UserID: bob.ID, Prefix: []byte("Delivered-To: bob@example.test\r\n")}}
	ds, err := s.Deliver(ctx, bytes.NewReader(msg), local, DeliverOptions{Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || q.ID == 0 {
		t.Fatalf("deliveries %+v, queue id %d", ds, q.ID)
	}
	if !bytes.Equal(signed, append(append([]byte{}, received...), msg...)) {
		t.Fatalf("Sign saw:\n%s", signed)
	}
	if got := readAll(t, s, ds[0].MessageID); !bytes.Equal(got, append([]byte("Delivered-To: bob@example.test\r\n"), msg...)) {
		t.Fatalf("local copy:\n%s", got)
	}
	r, err := s.OpenQueued(ctx, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	sent, _ := io.ReadAll(r)
	if want := append(append([]byte("X-Sig: 1\r\n"), received...), msg...); !bytes.Equal(sent, want) {
		t.Fatalf("queued copy:\n%s", sent)
	}
	item, err := s.QueueItem(ctx, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	if item.UserID != alice.ID || len(item.Recipients) != 2 || item.Recipients[1].Address != "y@remote.test" || item.Size != int64(len(sent)) {
		t.Fatalf("queued: %+v", item)
	}
	if n := blobCount(t, s); n != 1 {
		t.Fatalf("%d blobs, want one shared by both copies", n)
	}
	// The blob outlives the queue entry while bob keeps his copy.
	due, _ := s.DueRecipients(ctx, time.Now(), 10)
	var ids []int64
	for _, d := range due {
		ids = append(ids, d.ID)
	}
	if _, err := s.MarkSending(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, ids, Attempt{StatusCode: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, ds[0].MessageID); !bytes.Equal(got, append([]byte("Delivered-To: bob@example.test\r\n"), msg...)) {
		t.Fatal("local copy damaged once the queued one was sent")
	}

	inbox := func() int {
		mb, err := s.MailboxByName(ctx, bob.ID, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		return int(mb.Messages)
	}
	queued := func() int {
		l, err := s.QueueList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	before, beforeQ, beforeBlobs := inbox(), queued(), blobCount(t, s)
	fails := []struct {
		name  string
		local []Recipient
		q     QueueCopy
	}{
		{"signer fails", local, QueueCopy{Sender: "alice@example.test", Recipients: []string{"x@remote.test"},
			Options: EnqueueOptions{Sign: func(io.Reader, *Envelope) ([]byte, error) { return nil, errors.New("no key") }}}},
		{"bad remote address", local, QueueCopy{Sender: "alice@example.test", Recipients: []string{"x@remote.test", "no-at-sign"}}},
		{"smuggled sender", local, QueueCopy{Sender: "a@example.test>\r\nRCPT TO:<z@evil.test", Recipients: []string{"x@remote.test"}}},
		{"local mailbox gone", []Recipient{{UserID: bob.ID, MailboxID: 1 << 40}}, QueueCopy{Sender: "alice@example.test", Recipients: []string{"x@remote.test"}}},
	}
	for _, f := range fails {
		q := f.q
		if _, err := s.Deliver(ctx, bytes.NewReader(msg), f.local, DeliverOptions{Queue: &q}); err == nil {
			t.Errorf("%s: delivered", f.name)
		}
		if q.ID != 0 || inbox() != before || queued() != beforeQ || blobCount(t, s) != beforeBlobs {
			t.Errorf("%s: something was stored (queue id %d, inbox %d, queue %d, blobs %d)", f.name, q.ID, inbox(), queued(), blobCount(t, s))
		}
	}
	// Over quota locally: nothing is queued either.
	if err := s.SetQuota(ctx, bob.Address, 1); err != nil {
		t.Fatal(err)
	}
	q2 := QueueCopy{Sender: "alice@example.test", Recipients: []string{"x@remote.test"}}
	if _, err := s.Deliver(ctx, bytes.NewReader(msg), local, DeliverOptions{Queue: &q2}); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if queued() != beforeQ || blobCount(t, s) != beforeBlobs {
		t.Fatal("over quota locally, but the remote copy was queued")
	}
}
