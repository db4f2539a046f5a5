package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	gosmtp "github.com/emersion/go-smtp"

	"pombo/storage"
)

// policy decides who may send what to whom. The inbound (MX) server and
// the submission server differ only here; the session calls it at MAIL and
// RCPT and does everything else itself.
type policy interface {
	// mail checks the envelope sender of a new transaction. A refusal is a
	// *gosmtp.SMTPError.
	mail(ctx context.Context, se *session, t *txn) error
	// rcpt resolves one recipient into local targets and remote addresses,
	// or refuses it with a *gosmtp.SMTPError.
	rcpt(ctx context.Context, se *session, t *txn, to string) (local []storage.Target, remote []string, err error)
}

// sessionWrapper is an optional add-on of a policy: a policy that needs more
// of go-smtp's Session than the core offers (submission: AUTH, through
// gosmtp.AuthSession) returns its own Session embedding the core one.
type sessionWrapper interface {
	wrap(se *session) gosmtp.Session
}

// txn is one mail transaction: from MAIL to the end of DATA/BDAT or RSET.
type txn struct {
	from   string
	utf8   bool  // MAIL FROM had SMTPUTF8
	size   int64 // SIZE= of MAIL FROM, 0 if not given
	helo   string
	tls    tls.ConnectionState
	isTLS  bool
	rcpts  []string // RCPT TO addresses accepted, as given
	local  []localTarget
	remote []string // remote addresses (alias forwarding, submission)
}

type localTarget struct {
	rcpt   string // the RCPT TO address it came from
	target storage.Target
}

// session is go-smtp's Session: one per EHLO (STARTTLS starts another one on
// the same conn).
type session struct {
	s  *Server
	c  *conn
	gc *gosmtp.Conn
	// authUser is the authenticated account; set by an authenticating
	// policy (submission), always "" on port 25. It makes Received say
	// ESMTPA/ESMTPSA.
	authUser string

	mu sync.Mutex // tx: BDAT runs Data in its own goroutine
	tx *txn
}

func (s *Server) newSession(gc *gosmtp.Conn) (gosmtp.Session, error) {
	c := connOf(gc)
	if c == nil {
		s.log.Error("smtp session on an unknown connection type")
		return nil, errLocal
	}
	if s.closing.Load() {
		return nil, errShutdown
	}
	c.setHelo(gc.Hostname())
	c.setTLS(gc.TLSConnectionState())
	se := &session{s: s, c: c, gc: gc}
	if w, ok := s.policy.(sessionWrapper); ok {
		return w.wrap(se), nil
	}
	return se, nil
}

// Replies shared by the policies. Each is a *gosmtp.SMTPError because go-smtp
// looks for that exact type; any other error would reach the peer as text.
var (
	errLocal         = reply(451, 4, 3, 0, "Local error, try again later")
	errShutdown      = reply(421, 4, 3, 2, "Server shutting down, try again later")
	errTooManyErrors = reply(421, 4, 7, 0, "Too many errors, closing connection")
	errClosing       = reply(421, 4, 7, 0, "Closing connection")
	errNestedMail    = reply(503, 5, 5, 1, "Sender already given; RSET first")
	errNoRcpt        = reply(503, 5, 5, 1, "No valid recipients")
	errRelayDenied   = reply(554, 5, 7, 1, "Relay access denied")
	errNoSuchUser    = reply(550, 5, 1, 1, "No such user here")
	errMailboxFull   = reply(552, 5, 2, 2, "Mailbox full")
	errForwarding    = reply(451, 4, 3, 0, "Forwarding to this address is not available yet, try again later")
)

func reply(code, class, subject, detail int, msg string) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: gosmtp.EnhancedCode{class, subject, detail}, Message: msg}
}

// refuse counts a refused command and returns its reply, or 421 when that
// was one error too many (the connection closes after it).
func (se *session) refuse(e *gosmtp.SMTPError) error {
	if se.c.countError(e) {
		se.c.closeAfterWrite.Store(true)
		return errTooManyErrors
	}
	return e
}

// asReply turns a policy error into a reply: a *gosmtp.SMTPError as is,
// anything else is logged and becomes 451.
func (se *session) asReply(what string, err error) *gosmtp.SMTPError {
	var re *gosmtp.SMTPError
	if errors.As(err, &re) {
		return re
	}
	se.s.log.Error("smtp "+what+" failed", append(se.c.logAttrs(), "err", err)...)
	return errLocal
}

// Reset implements gosmtp.Session (RSET, EHLO again, end of DATA).
func (se *session) Reset() {
	se.mu.Lock()
	se.tx = nil
	se.mu.Unlock()
}

// Logout implements gosmtp.Session; the conn logs when it closes.
func (se *session) Logout() error { return nil }

// Mail implements gosmtp.Session.
func (se *session) Mail(from string, opts *gosmtp.MailOptions) error {
	if se.c.closeAfterWrite.Load() {
		return errClosing
	}
	se.mu.Lock()
	busy := se.tx != nil
	se.mu.Unlock()
	if busy {
		return se.refuse(errNestedMail)
	}
	if e := checkAddress(from, opts.UTF8, true); e != nil {
		return se.refuse(e)
	}
	st, isTLS := se.gc.TLSConnectionState()
	t := &txn{from: from, utf8: opts.UTF8, size: opts.Size, helo: se.gc.Hostname(), tls: st, isTLS: isTLS}
	se.c.setHelo(t.helo) // EHLO may come again with another name
	ctx, cancel := se.s.ctx()
	defer cancel()
	if err := se.s.policy.mail(ctx, se, t); err != nil {
		return se.refuse(se.asReply("MAIL", err))
	}
	se.mu.Lock()
	se.tx = t
	se.mu.Unlock()
	se.c.logMail(from)
	return nil
}

// Rcpt implements gosmtp.Session.
func (se *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if se.c.closeAfterWrite.Load() {
		return errClosing
	}
	se.mu.Lock()
	t := se.tx
	se.mu.Unlock()
	if t == nil {
		return se.refuse(reply(503, 5, 5, 1, "MAIL first"))
	}
	if max := se.s.opts.Limits.MaxRecipients; max > 0 && len(t.rcpts) >= max {
		// RFC 5321 §4.5.3.1.10: the client sends the rest in another
		// transaction. Not a client error, so not counted.
		return reply(452, 4, 5, 3, fmt.Sprintf("Too many recipients (at most %d per message)", max))
	}
	if e := checkAddress(to, t.utf8, false); e != nil {
		return se.refuse(e)
	}
	ctx, cancel := se.s.ctx()
	defer cancel()
	local, remote, err := se.s.policy.rcpt(ctx, se, t, to)
	if err != nil {
		return se.refuse(se.asReply("RCPT", err))
	}
	se.mu.Lock()
	t.rcpts = append(t.rcpts, to)
	for _, tg := range local {
		t.local = append(t.local, localTarget{rcpt: to, target: tg})
	}
	t.remote = append(t.remote, remote...)
	se.mu.Unlock()
	se.c.logRcpt(to)
	return nil
}

// maxAddress is the longest address accepted, in octets (RFC 5321
// §4.5.3.1.3: a path is at most 256 octets with its angle brackets).
const maxAddress = 254

// checkAddress refuses what no policy should see: overlong addresses,
// control characters, bad UTF-8, non-ASCII without SMTPUTF8 (RFC 6531 §3.4),
// and a domain that is not a domain.
func checkAddress(addr string, smtputf8, sender bool) *gosmtp.SMTPError {
	bad := reply(501, 5, 1, 3, "Bad recipient address syntax")
	if sender {
		bad = reply(501, 5, 1, 7, "Bad sender address syntax")
		if addr == "" {
			return nil // the null reverse-path
		}
	}
	if len(addr) > maxAddress || !utf8.ValidString(addr) {
		return bad
	}
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		if c < 0x20 || c == 0x7f {
			return bad
		}
		if c >= 0x80 && !smtputf8 {
			return reply(553, 5, 6, 7, "Non-ASCII address needs SMTPUTF8")
		}
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || !validDomain(addr[at+1:]) {
		return bad
	}
	return nil
}

// validDomain accepts a domain name (letters, digits, '-', '_', '.', UTF-8)
// or an address literal.
func validDomain(d string) bool {
	if d == "" || len(d) > 253+2 {
		return false
	}
	if d[0] == '[' {
		if d[len(d)-1] != ']' || len(d) < 3 {
			return false
		}
		for i := 1; i < len(d)-1; i++ {
			c := d[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' ||
				c == '.' || c == ':' || strings.IndexByte("IPv6", c) >= 0) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// checkQuota refuses a local target whose account is full, or would be with
// a message of the declared size (0: not declared).
func (s *Server) checkQuota(ctx context.Context, userID, size int64) error {
	quota, used, err := s.opts.Store.QuotaUsage(ctx, userID)
	if err != nil {
		return fmt.Errorf("quota of user %d: %w", userID, err)
	}
	if quota > 0 && (used >= quota || used+size > quota) {
		return errMailboxFull
	}
	return nil
}
