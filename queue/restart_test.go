package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"pombo/queue"
	"pombo/storage"
)

// A queue stopped in the middle of a session leaves its recipient pending;
// after a restart the message is delivered exactly once.
func TestStopMidSessionThenRestart(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	release := make(chan struct{})
	inRcpt := make(chan struct{}, 10)
	var once sync.Once
	r := startRemote(t, ls[0], &remote{onRcpt: func(string) error {
		block := false
		once.Do(func() { block = true })
		if block {
			inRcpt <- struct{}{}
			<-release
			return &smtp.SMTPError{Code: 421, Message: "too late"}
		}
		return nil
	}}, nil)
	defer close(release)
	e := newEnv(t, port)
	e.opts.StopGrace = 200 * time.Millisecond
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	msg, id := testMessage("interrupted")
	qid := e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
	select {
	case <-inRcpt:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not reach RCPT")
	}

	e.reopen() // Close interrupts the session after StopGrace
	it, err := e.st.QueueItem(context.Background(), qid)
	if err != nil {
		t.Fatal(err)
	}
	if rc := it.Recipients[0]; rc.Status != storage.QueuePending || rc.Attempts != 0 {
		t.Fatalf("after an interrupted session: %+v", rc)
	}
	e.start()
	e.waitEmpty(10 * time.Second)
	if n := r.countByMessageID(t)[id+" bob@remote.test"]; n != 1 {
		t.Fatalf("delivered %d times, want 1", n)
	}
}

// A crash leaves recipients in 'sending' (those whose 250 was committed are
// 'sent'); a restart sends the former once and never the latter again.
func TestCrashLeavesSendingThenRestart(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	r := startRemote(t, ls[0], &remote{}, nil)
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	ctx := context.Background()

	// Enqueue without running the workers, then play the crashed session.
	e.q = queue.New(e.opts)
	msg, id := testMessage("crash")
	qid := e.enqueue("alice@example.org", []string{"done@remote.test", "inflight@remote.test"}, msg)
	it, err := e.st.QueueItem(ctx, qid)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int64{it.Recipients[0].ID, it.Recipients[1].ID}
	if claimed, err := e.st.MarkSending(ctx, ids); err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	if err := e.st.MarkSent(ctx, ids[:1], storage.Attempt{RemoteMTA: "mx.remote.test", Reply: "250 ok"}); err != nil {
		t.Fatal(err)
	}
	// kill -9: no Close of the queue; the store goes away as it is.
	e.q = nil
	e.reopen()

	e.start()
	e.waitEmpty(10 * time.Second)
	counts := r.countByMessageID(t)
	if counts[id+" inflight@remote.test"] != 1 || counts[id+" done@remote.test"] != 0 {
		t.Fatalf("deliveries after the crash: %v", counts)
	}
}

// Restarting a queue with mail deferred keeps it, and does not resend what
// was sent.
func TestRestartKeepsDeferredMail(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	var mu sync.Mutex
	accept := false
	r := startRemote(t, ls[0], &remote{onRcpt: func(to string) error {
		mu.Lock()
		defer mu.Unlock()
		if to == "later@remote.test" && !accept {
			return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "busy"}
		}
		return nil
	}}, nil)
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	e.start()
	var ids []string
	for i := 0; i < 5; i++ {
		msg, id := testMessage("restart")
		ids = append(ids, id)
		e.enqueue("alice@example.org", []string{"now@remote.test", "later@remote.test"}, msg)
	}
	waitFor(t, 10*time.Second, "the first deliveries", func() bool { return len(r.messages()) == 5 })
	e.reopen()
	if n := e.queueLen(); n != 5 {
		t.Fatalf("%d messages queued after restart, want 5", n)
	}
	mu.Lock()
	accept = true
	mu.Unlock()
	e.start()
	e.waitEmpty(15 * time.Second)
	counts := r.countByMessageID(t)
	for _, id := range ids {
		if counts[id+" now@remote.test"] != 1 || counts[id+" later@remote.test"] != 1 {
			t.Fatalf("copies of %s: %v", id, counts)
		}
	}
}
