// Package queue delivers outbound mail: it keeps messages in the persistent
// queue of storage, finds each recipient's next hop (MX records, or a
// smarthost), speaks SMTP to it, retries temporary failures with backoff and
// reports permanent ones to the sender as RFC 3464 delivery status
// notifications. Messages are DKIM-signed once, when they are queued.
//
// Invariants:
//   - The database is the queue. A message is on disk before Enqueue
//     returns; every change of a recipient's state is a committed write.
//   - Nothing is sent twice after the next hop said 250: a recipient is
//     marked sent in a commit that follows the 250 to DATA at once, before
//     QUIT. The only window for a duplicate is a crash between that 250 and
//     the commit (one fsync): the recipient is then still 'sending', put
//     back to pending at start-up, and sent again (at-least-once; RFC 5321
//     §6.1 prefers a duplicate to a loss).
//   - Nothing is lost: a recipient leaves the queue only as sent, or as
//     failed once its DSN has been stored in the same transaction (a bounce
//     itself, with an empty sender, is never bounced: RFC 5321 §4.5.5).
//   - One worker at a time per message: the scheduler claims a message's due
//     recipients (status 'sending') and gives it to one worker, which groups
//     them by next hop so that one SMTP session carries each group.
//
// Transport security: opportunistic STARTTLS to MX hosts, without checking
// the certificate (RFC 7435: an unverified channel still beats plaintext;
// most MX certificates would not verify anyway). A failed handshake is
// retried in plaintext on the same host. MTA-STS (RFC 8461) and DANE
// (RFC 7672) are not implemented. A smarthost's certificate is verified,
// and AUTH is only sent over TLS (or in plaintext to a loopback address).
package queue

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"pombo/storage"
)

// Relay TLS modes.
const (
	RelayStartTLS = "starttls"
	RelayImplicit = "implicit"
	RelayNone     = "none"
)

// Relay is a smarthost that takes all outbound mail.
type Relay struct {
	Host     string // "" delivers by MX
	Port     int
	Username string // "" for no AUTH
	Password string
	TLS      string // RelayStartTLS, RelayImplicit or RelayNone
}

// Options configure a Queue. Zero durations take the defaults given.
type Options struct {
	Store    *storage.Store
	Log      *slog.Logger
	Hostname string // EHLO name, Reporting-MTA and MAILER-DAEMON domain of DSNs
	Workers  int    // sessions in parallel (4)

	RetryInitial time.Duration // first retry delay (5m), doubled each time...
	RetryMax     time.Duration // ...up to this (4h)
	GiveUpAfter  time.Duration // age at which a deferred message bounces (120h)

	Resolver string // DNS server "host:port"; "" for the system resolver
	Relay    Relay

	// Port is the TCP port of MX hosts: 25, unless a test sets another.
	Port int
	// RootCAs verify the relay's certificate; nil: the system roots.
	RootCAs *x509.CertPool

	PollInterval   time.Duration // how often the database is checked without a wake-up (30s)
	DialTimeout    time.Duration // TCP connect (30s)
	CommandTimeout time.Duration // each command's reply (5m, RFC 5321 §4.5.3.2)
	DataTimeout    time.Duration // reply to the final dot (10m, RFC 5321 §4.5.3.2.6)
	StopGrace      time.Duration // how long Close lets sessions finish (5s)
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RetryInitial, 5*time.Minute)
	def(&o.RetryMax, 4*time.Hour)
	def(&o.GiveUpAfter, 120*time.Hour)
	def(&o.PollInterval, 30*time.Second)
	def(&o.DialTimeout, 30*time.Second)
	def(&o.CommandTimeout, 5*time.Minute)
	def(&o.DataTimeout, 10*time.Minute)
	def(&o.StopGrace, 5*time.Second)
	if o.RetryMax < o.RetryInitial {
		o.RetryMax = o.RetryInitial
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Port == 0 {
		o.Port = 25
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	switch o.Relay.TLS {
	case RelayStartTLS, RelayImplicit, RelayNone:
	default:
		o.Relay.TLS = RelayStartTLS // the safe choice for anything else
	}
	if o.Relay.Port == 0 {
		o.Relay.Port = 587
	}
}

// Queue is the outbound queue and its workers.
type Queue struct {
	opts     Options
	st       *storage.Store
	log      *slog.Logger
	resolver *net.Resolver

	wake chan struct{}

	mu       sync.Mutex
	started  bool
	closed   bool
	inflight map[int64]bool      // queue ids a worker has
	hold     map[int64]time.Time // queue ids whose DSN failed: not before
	stop     chan struct{}       // closed by Close: no new work
	ctx      context.Context     // cancelled after StopGrace: sessions end
	cancel   context.CancelFunc
	done     chan struct{} // closed when the scheduler has returned
	wg       sync.WaitGroup
}

// New makes a queue; Start runs its workers. Enqueue works before Start.
func New(opts Options) *Queue {
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Queue{
		opts:     opts,
		st:       opts.Store,
		log:      opts.Log.With("component", "queue"),
		resolver: newResolver(opts.Resolver),
		wake:     make(chan struct{}, 1),
		inflight: map[int64]bool{},
		hold:     map[int64]time.Time{},
		stop:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
	}
}

// EnqueueOptions are the attributes of a submitted message.
type EnqueueOptions struct {
	// SMTPUTF8: the client used SMTPUTF8 (RFC 6531) in MAIL FROM; the next
	// hop must support it, or the message bounces.
	SMTPUTF8 bool
	// Prefix is trace header lines (CRLF terminated) sent in front of the
	// message, e.g. its Received: line.
	Prefix []byte
}

// Enqueue stores a message for delivery to remote recipients and returns its
// queue id once it is durable. It is DKIM-signed first when the domain of
// its From: address (else of sender) has a key; the signature is stored in
// front of the message and covers exactly the bytes that will be sent.
// sender is the envelope sender ("" only for bounces), userID the
// submitting user (0 for none). r is read to its end.
func (q *Queue) Enqueue(ctx context.Context, sender string, userID int64, recipients []string, r io.Reader, opts EnqueueOptions) (int64, error) {
	c := q.copyFor(ctx, sender, userID, recipients, opts)
	id, err := q.st.Enqueue(ctx, sender, userID, recipients, r, c.Options)
	if err != nil {
		return 0, err
	}
	q.queued(id, sender, recipients)
	return id, nil
}

// DeliverAndEnqueue stores a message in the mailboxes of local recipients
// and queues it for remote ones, as Enqueue does, in one transaction: when
// it fails, neither the local copies nor the queued one were stored.
func (q *Queue) DeliverAndEnqueue(ctx context.Context, r io.Reader, local []storage.Recipient, sender string, userID int64, remote []string, opts EnqueueOptions) (int64, error) {
	c := q.copyFor(ctx, sender, userID, remote, opts)
	if _, err := q.st.Deliver(ctx, r, local, storage.DeliverOptions{Queue: c}); err != nil {
		return 0, err
	}
	q.queued(c.ID, sender, remote)
	return c.ID, nil
}

func (q *Queue) copyFor(ctx context.Context, sender string, userID int64, recipients []string, opts EnqueueOptions) *storage.QueueCopy {
	utf8 := opts.SMTPUTF8 || !isASCII(sender)
	for _, rc := range recipients {
		utf8 = utf8 || !isASCII(rc)
	}
	return &storage.QueueCopy{Sender: sender, UserID: userID, Recipients: recipients, Options: storage.EnqueueOptions{
		SMTPUTF8: utf8,
		Prefix:   opts.Prefix,
		Sign:     q.signer(ctx, sender),
	}}
}

func (q *Queue) queued(id int64, sender string, recipients []string) {
	q.log.Info("queued", "queue_id", id, "from", sender, "rcpts", len(recipients))
	q.kick()
}

// Kick makes the workers look at the queue now (e.g. after `pombo queue
// retry` changed it from outside).
func (q *Queue) Kick() { q.kick() }

func (q *Queue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Start puts back recipients a crash left in 'sending' and starts the
// workers. It is an error to start a queue twice.
func (q *Queue) Start() error {
	q.mu.Lock()
	if q.started || q.closed {
		q.mu.Unlock()
		return errors.New("queue: already started")
	}
	q.started = true
	q.mu.Unlock()
	n, err := q.st.ResetSending(context.Background())
	if err != nil {
		return err
	}
	if n > 0 {
		q.log.Warn("recipients left in sending by an interrupted run are retried", "count", n)
	}
	go q.run()
	return nil
}

// Close stops taking new work, lets running sessions finish for up to
// StopGrace, then interrupts them; what was interrupted is left pending.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	started := q.started
	q.mu.Unlock()
	close(q.stop)
	if !started {
		q.cancel()
		return nil
	}
	<-q.done
	idle := make(chan struct{})
	go func() { q.wg.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(q.opts.StopGrace):
		q.cancel()
		<-idle
	}
	q.cancel()
	_, err := q.st.ResetSending(context.Background())
	return err
}

// job is the work of one worker: one message's claimed recipients, and its
// failed ones still to report.
type job struct {
	queueID int64
	rcpts   []storage.QueuedRecipient
	failed  bool
}

const dueBatch = 1000

func (q *Queue) run() {
	defer close(q.done)
	slots := make(chan struct{}, q.opts.Workers)
	for {
		for _, j := range q.collect() {
			select {
			case slots <- struct{}{}:
			case <-q.stop:
				return
			}
			if !q.claim(j) {
				<-slots
				continue
			}
			q.wg.Add(1)
			go func() {
				defer q.wg.Done()
				defer func() { <-slots }()
				q.process(q.ctx, j)
				q.mu.Lock()
				delete(q.inflight, j.queueID)
				q.mu.Unlock()
				q.kick()
			}()
		}
		t := time.NewTimer(q.nextWait())
		select {
		case <-q.wake:
		case <-t.C:
		case <-q.stop:
			t.Stop()
			return
		}
		t.Stop()
	}
}

// collect reads what is due and groups it by message, leaving out messages
// a worker already has.
func (q *Queue) collect() []job {
	due, err := q.st.DueRecipients(context.Background(), time.Now(), dueBatch)
	if err != nil {
		q.log.Error("read queue", "err", err)
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	byID := map[int64]*job{}
	var order []int64
	now := time.Now()
	for id, t := range q.hold {
		if now.After(t) {
			delete(q.hold, id)
		}
	}
	for _, r := range due {
		if q.inflight[r.QueueID] {
			continue
		}
		j := byID[r.QueueID]
		if j == nil {
			j = &job{queueID: r.QueueID}
			byID[r.QueueID] = j
			order = append(order, r.QueueID)
		}
		switch r.Status {
		case storage.QueuePending:
			j.rcpts = append(j.rcpts, r)
		case storage.QueueFailed:
			if _, held := q.hold[r.QueueID]; !held {
				j.failed = true
			}
		}
	}
	jobs := make([]job, 0, len(order))
	for _, id := range order {
		if j := byID[id]; len(j.rcpts) > 0 || j.failed {
			jobs = append(jobs, *j)
		}
	}
	return jobs
}

// claim marks a job's recipients as sending and the message as taken.
func (q *Queue) claim(j job) bool {
	q.mu.Lock()
	if q.inflight[j.queueID] {
		q.mu.Unlock()
		return false
	}
	q.inflight[j.queueID] = true
	q.mu.Unlock()
	if len(j.rcpts) > 0 {
		ids := make([]int64, len(j.rcpts))
		for i, r := range j.rcpts {
			ids[i] = r.ID
		}
		claimed, err := q.st.MarkSending(context.Background(), ids)
		if err != nil {
			q.log.Error("claim queued recipients", "queue_id", j.queueID, "err", err)
			claimed = nil
		}
		if len(claimed) > 0 || j.failed {
			return true
		}
	} else if j.failed {
		return true
	}
	q.mu.Lock()
	delete(q.inflight, j.queueID)
	q.mu.Unlock()
	return false
}

// nextWait is how long the scheduler sleeps when nothing wakes it: until
// the next pending attempt is due, at most PollInterval (the database may
// be changed by `pombo queue` from another process).
func (q *Queue) nextWait() time.Duration {
	next, ok, err := q.st.NextDue(context.Background())
	if err != nil || !ok {
		return q.opts.PollInterval
	}
	// Attempts are stored in whole seconds; wake just after the second.
	d := time.Until(next) + 10*time.Millisecond
	if d <= 0 {
		// Due but skipped: its message is with a worker, which wakes
		// the scheduler when it is done.
		return q.opts.PollInterval
	}
	return min(d, q.opts.PollInterval)
}

// backoff is the delay before the next attempt after attempts failed ones:
// RetryInitial, doubled each time, at most RetryMax.
func (q *Queue) backoff(attempts int) time.Duration {
	d := q.opts.RetryInitial
	for i := 1; i < attempts && d < q.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, q.opts.RetryMax)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
