package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"pombo/auth"
	"pombo/storage"
)

// Submitter hands a submitted message to the outbound queue. Its parameters
// are plain types so that package queue need not import smtp. It returns
// only once the queue entry is durable; on error nothing is queued.
type Submitter interface {
	Submit(ctx context.Context, from string, userID int64, to []string, smtputf8 bool, r io.Reader) error
	// DeliverAndSubmit stores the message in the mailboxes of local and
	// queues it for to, with prefix in front of the queued copy only, in one
	// transaction: on error, neither is stored.
	DeliverAndSubmit(ctx context.Context, r io.Reader, local []storage.Recipient, from string, userID int64, to []string, smtputf8 bool, prefix []byte) error
}

// SubmissionOptions configure the submission server (ports 587 and 465).
type SubmissionOptions struct {
	Options
	Auth *auth.Authenticator
	// AllowPlaintextFromLoopback offers AUTH without TLS to loopback peers.
	AllowPlaintextFromLoopback bool
	// MaxMessagesPerHour bounds what one user submits; 0: no limit.
	MaxMessagesPerHour int
	// Queue takes the remote recipients' copy. While it is nil, a remote
	// recipient is refused with 451 4.3.0.
	Queue Submitter
}

// NewSubmission returns the submission server: AUTH (PLAIN, LOGIN) first,
// over TLS (or from loopback when allowed), then mail from the user's own
// addresses to anyone.
func NewSubmission(o SubmissionOptions) *Server {
	p := &submission{
		auth:       o.Auth,
		allowPlain: o.AllowPlaintextFromLoopback,
		queue:      o.Queue,
		rate:       newRateLimit(o.MaxMessagesPerHour, time.Hour),
	}
	s := newServer("submission", o.Options, p)
	// The session decides whether AUTH is allowed (TLS, or loopback when
	// configured): go-smtp's own check knows only TLS.
	s.srv.AllowInsecureAuth = true
	return s
}

// submission is the port 587/465 policy.
type submission struct {
	auth       *auth.Authenticator
	allowPlain bool
	queue      Submitter
	rate       *rateLimit
}

var (
	errAuthRequired   = reply(530, 5, 7, 0, "Authentication required")
	errEncryptionReq  = reply(538, 5, 7, 11, "Encryption required for requested authentication mechanism")
	errAuthFailed     = reply(535, 5, 7, 8, "Authentication credentials invalid")
	errAuthThrottled  = reply(454, 4, 7, 0, "Too many failed logins, try again later")
	errAuthMalformed  = reply(501, 5, 5, 2, "Malformed authentication response")
	errAuthTemp       = reply(454, 4, 7, 0, "Temporary authentication failure")
	errAuthMech       = reply(504, 5, 5, 4, "Unrecognized authentication mechanism")
	errSenderNotOwned = reply(553, 5, 7, 1, "Sender address not owned by the authenticated user")
	errFromNotOwned   = reply(553, 5, 7, 1, "From: header address not owned by the authenticated user")
	errRateLimited    = reply(450, 4, 7, 1, "Too many messages sent recently, try again later")
)

// mail requires AUTH, a sender address of the user's own, and a user under
// the hourly limit.
func (p *submission) mail(ctx context.Context, se *session, t *txn) error {
	if se.authUser == "" {
		return errAuthRequired
	}
	id, err := p.userID(ctx, se)
	if err != nil {
		return err
	}
	ok, err := p.owns(ctx, se, id, t.from)
	if err != nil {
		return err
	}
	if !ok {
		return errSenderNotOwned
	}
	if !p.rate.allowed(id, time.Now()) {
		se.s.log.Info("submission refused: hourly limit", append(se.c.logAttrs(), "user", se.authUser)...)
		return errRateLimited
	}
	return nil
}

func (p *submission) userID(ctx context.Context, se *session) (int64, error) {
	u, err := se.s.opts.Store.UserByAddress(ctx, se.authUser)
	if err != nil {
		return 0, fmt.Errorf("user %s: %w", se.authUser, err)
	}
	return u.ID, nil
}

// owns reports whether addr is the user's address or one of their aliases.
func (p *submission) owns(ctx context.Context, se *session, userID int64, addr string) (bool, error) {
	l, d, err := storage.NormalizeAddress(addr)
	if err != nil {
		return false, nil
	}
	addrs, err := se.s.opts.Store.AddressesOf(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("addresses of %s: %w", se.authUser, err)
	}
	for _, a := range addrs {
		al, ad, err := storage.NormalizeAddress(a)
		if err == nil && al == l && ad == d {
			return true, nil
		}
	}
	return false, nil
}

// rcpt accepts anyone: local addresses are resolved (aliases, plus
// addressing), addresses at other domains go to the queue.
func (p *submission) rcpt(ctx context.Context, se *session, t *txn, to string) ([]storage.Target, []string, error) {
	s := se.s
	targets, err := s.opts.Store.Resolve(ctx, to)
	switch {
	case errors.Is(err, storage.ErrUnknownDomain):
		targets = []storage.Target{{Address: to}}
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil, errNoSuchUser
	case errors.Is(err, storage.ErrBadAddress):
		return nil, nil, reply(501, 5, 1, 3, "Bad recipient address syntax")
	case err != nil:
		return nil, nil, err
	}
	local, remote := splitTargets(targets)
	if len(remote) > 0 && p.queue == nil {
		return nil, nil, errForwarding
	}
	for _, tg := range local {
		if err := s.checkQuota(ctx, tg.UserID, t.size); err != nil {
			return nil, nil, err
		}
	}
	return local, remote, nil
}

// wrap adds AUTH and the submission DATA to the core session.
func (p *submission) wrap(se *session) gosmtp.Session {
	return &subSession{session: se, p: p}
}

// subSession is the submission Session: the core one plus AUTH, and a DATA
// that checks From: and completes the header.
type subSession struct {
	*session
	p      *submission
	userID int64
}

// authAllowed: over TLS always; in the clear only from loopback, and only
// when the configuration says so.
func (ss *subSession) authAllowed() bool {
	if _, isTLS := ss.gc.TLSConnectionState(); isTLS {
		return true
	}
	return ss.p.allowPlain && ss.c.ip.IsLoopback()
}

// AuthMechanisms implements gosmtp.AuthSession; none are advertised where
// AUTH is not allowed.
func (ss *subSession) AuthMechanisms() []string {
	if !ss.authAllowed() || ss.p.auth == nil {
		return nil
	}
	return auth.Mechanisms()
}

// Auth implements gosmtp.AuthSession.
func (ss *subSession) Auth(mech string) (sasl.Server, error) {
	if !ss.authAllowed() || ss.p.auth == nil {
		return nil, ss.refuse(errEncryptionReq)
	}
	srv, err := ss.p.auth.NewSASLServer(context.Background(), "submission", ss.c.ip, mech, func(account string) error {
		ctx, cancel := ss.s.ctx()
		defer cancel()
		u, err := ss.s.opts.Store.UserByAddress(ctx, account)
		if err != nil {
			return fmt.Errorf("user %s: %w", account, err)
		}
		ss.authUser, ss.userID = account, u.ID
		return nil
	})
	if err != nil {
		return nil, errAuthMech
	}
	return &saslReplies{srv, ss}, nil
}

// saslReplies turns the authenticator's errors into SMTP replies (go-smtp
// sends a *gosmtp.SMTPError as it is, anything else as 454 with its text).
type saslReplies struct {
	sasl.Server
	ss *subSession
}

func (r *saslReplies) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := r.Server.Next(resp)
	if err == nil {
		return ch, done, nil
	}
	var e *gosmtp.SMTPError
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		e = errAuthFailed
	case errors.Is(err, auth.ErrThrottled):
		e = errAuthThrottled
	case errors.Is(err, auth.ErrMalformed), errors.Is(err, sasl.ErrUnexpectedClientResponse):
		e = errAuthMalformed
	default:
		r.ss.s.log.Error("submission auth failed", append(r.ss.c.logAttrs(), "err", err)...)
		e = errAuthTemp
	}
	return nil, false, r.ss.refuse(e)
}

// rateLimit is a sliding window of accepted messages per user.
type rateLimit struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	sent   map[int64][]time.Time
}

func newRateLimit(max int, window time.Duration) *rateLimit {
	return &rateLimit{max: max, window: window, sent: map[int64][]time.Time{}}
}

// prune drops the times out of the window; called with mu held.
func (r *rateLimit) prune(user int64, now time.Time) []time.Time {
	ts := r.sent[user]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= r.window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(r.sent, user)
	} else {
		r.sent[user] = ts
	}
	return ts
}

func (r *rateLimit) allowed(user int64, now time.Time) bool {
	if r.max <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.prune(user, now)) < r.max
}

func (r *rateLimit) record(user int64, now time.Time) {
	if r.max <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[user] = append(r.prune(user, now), now)
}

// lowerASCII is strings.ToLower for comparisons of header names.
func lowerASCII(s string) string { return strings.ToLower(s) }
