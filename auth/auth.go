// Package auth checks the credentials of mail users for every protocol (SMTP
// submission, IMAP, POP3): password hashing with argon2id, the login check
// itself, throttling of failed logins, and SASL PLAIN/LOGIN servers.
//
// Invariants:
//
//   - Passwords are stored only as argon2id PHC strings (see HashPassword). The
//     parameters travel with each hash, so they can be raised without a
//     migration; stored parameters are bounded when read (see VerifyPassword).
//   - An unknown user costs the same argon2id computation as a wrong password,
//     so response time does not tell which accounts exist.
//   - Every failed login is logged as one line at Warn with the message
//     "auth failed" and the attributes proto, ip, user, reason, in that order
//     (see Authenticator.Authenticate for the fail2ban filter).
//   - Failed logins are throttled per client address (IPv6: per /64) and per
//     account; loopback is not exempt.
//   - SASL PLAIN refuses an authorization identity other than the
//     authenticated user: there is no "log in as someone else".
//
// auth does not import storage; it reads password hashes through UserLookup,
// which storage implements.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"
)

// UserLookup finds the stored argon2id hash of an account. It returns found=false for an unknown user (not an error).
type UserLookup interface {
	PasswordHash(ctx context.Context, address string) (hash string, found bool, err error)
}

// Errors returned by Authenticate and by the SASL servers. Protocols map them
// to their replies: ErrInvalidCredentials to a permanent authentication
// failure (SMTP 535 5.7.8, IMAP NO [AUTHENTICATIONFAILED], POP3 -ERR [AUTH]),
// ErrThrottled to a temporary one (SMTP 454 4.7.0, IMAP NO [UNAVAILABLE],
// POP3 -ERR [IN-USE] or [SYS/TEMP]), ErrMalformed to a syntax error, and any
// other error to a temporary server failure.
var (
	ErrInvalidCredentials = errors.New("invalid credentials")
	ErrThrottled          = errors.New("too many failed logins")
	ErrMalformed          = errors.New("malformed SASL response")
)

// maxUsernameLen bounds a username: an address is at most 64 octets of local
// part, "@" and 255 of domain (RFC 5321 §4.5.3.1).
const maxUsernameLen = 320

// maxLoggedUser bounds how much of an attacker-supplied username goes to a log.
const maxLoggedUser = 128

// Reasons logged for a failed login. They are stable: log filters may match them.
const (
	reasonThrottled   = "throttled"
	reasonBadUsername = "invalid username"
	reasonBadPassword = "invalid password"
	reasonUnknownUser = "unknown user"
	reasonWrongPass   = "wrong password"
	reasonLookup      = "lookup error"
	reasonStoredHash  = "bad stored hash"
	reasonAuthzid     = "authzid mismatch"
	reasonMalformed   = "malformed"
	reasonCanceled    = "canceled"
)

// Authenticator checks user names and passwords. One Authenticator serves
// every protocol; it is safe for concurrent use. Users is required; Throttle
// may be nil (no throttling, for tests and tools); Log may be nil
// (slog.Default()).
type Authenticator struct {
	Users    UserLookup
	Throttle *Throttle
	Log      *slog.Logger

	// verify is VerifyPassword; tests replace it to count argon2 calls.
	verify func(phc, password string) (bool, error)

	// sem bounds concurrent argon2 computations (19 MiB each with the default
	// parameters) to the number of CPUs, so a burst of logins queues instead
	// of exhausting memory.
	semOnce sync.Once
	sem     chan struct{}
}

// Authenticate checks a username and password. username is an email address
// (case-insensitive domain; normalise with strings.ToLower on the whole
// address). On unknown user it still spends the same argon2 time on a dummy
// hash. Throttled attempts return ErrThrottled without checking the password.
// On success it returns the normalised account address.
//
// Every failure logs one line at Warn, with the default slog text handler:
//
//	time=… level=WARN msg="auth failed" proto=imap ip=203.0.113.7 user=bob@example.org reason="wrong password"
//
// and with the JSON handler:
//
//	{"time":"…","level":"WARN","msg":"auth failed","proto":"imap","ip":"203.0.113.7","user":"bob@example.org","reason":"wrong password"}
//
// ip comes before the attacker-chosen user, and slog quotes and escapes any
// value with spaces, '=' or quotes, so a username cannot forge an ip field.
// A fail2ban filter (filter.d/pombo.conf) for either form:
//
//	[Definition]
//	failregex = msg="auth failed" proto=\S+ ip=<HOST> user=
//	            "msg":"auth failed","proto":"[^"]*","ip":"<HOST>","user":
//
// (This assumes Log has no attributes added with With; add them after
// proto/ip or adapt the filter.)
func (a *Authenticator) Authenticate(ctx context.Context, proto string, ip netip.Addr, username, password string) (account string, err error) {
	account = strings.ToLower(username)
	if a.Throttle != nil && !a.Throttle.Allowed(ip, account) {
		a.logFailure(ctx, proto, ip, account, reasonThrottled, nil)
		return "", ErrThrottled
	}
	if !validUsername(username) { // before ToLower, which hides invalid UTF-8
		return "", a.fail(ctx, proto, ip, account, reasonBadUsername)
	}
	if ValidatePassword(password) != nil {
		return "", a.fail(ctx, proto, ip, account, reasonBadPassword)
	}

	hash, found, err := a.Users.PasswordHash(ctx, account)
	if err != nil {
		// A storage failure is not the client's fault: not counted, and
		// reported as a temporary error.
		a.logFailure(ctx, proto, ip, account, reasonLookup, err)
		return "", fmt.Errorf("look up %s: %w", account, err)
	}
	if !found {
		hash = dummyHash
	}
	ok, err := a.verifyLimited(ctx, hash, password)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		a.logFailure(ctx, proto, ip, account, reasonCanceled, err)
		return "", err
	case err != nil:
		// A corrupt row: the operator must fix it (pombo user passwd).
		a.logFailure(ctx, proto, ip, account, reasonStoredHash, err)
		return "", fmt.Errorf("stored hash of %s: %w", account, err)
	case !found:
		return "", a.fail(ctx, proto, ip, account, reasonUnknownUser)
	case !ok:
		return "", a.fail(ctx, proto, ip, account, reasonWrongPass)
	}
	if a.Throttle != nil {
		a.Throttle.Succeeded(ip, account)
	}
	return account, nil
}

// fail counts a failed login, logs it and returns ErrInvalidCredentials.
func (a *Authenticator) fail(ctx context.Context, proto string, ip netip.Addr, user, reason string) error {
	if a.Throttle != nil {
		a.Throttle.Failed(ip, user)
	}
	a.logFailure(ctx, proto, ip, user, reason, nil)
	return ErrInvalidCredentials
}

// logFailure writes the one "auth failed" line. The attribute order is part of
// the format fail2ban filters rely on: do not reorder.
func (a *Authenticator) logFailure(ctx context.Context, proto string, ip netip.Addr, user, reason string, err error) {
	log := a.Log
	if log == nil {
		log = slog.Default()
	}
	attrs := []slog.Attr{
		slog.String("proto", proto),
		slog.String("ip", ip.Unmap().WithZone("").String()),
		slog.String("user", loggableUser(user)),
		slog.String("reason", reason),
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	log.LogAttrs(ctx, slog.LevelWarn, "auth failed", attrs...)
}

// verifyLimited runs a.verify with at most GOMAXPROCS computations at a time.
func (a *Authenticator) verifyLimited(ctx context.Context, hash, password string) (bool, error) {
	a.semOnce.Do(func() { a.sem = make(chan struct{}, runtime.GOMAXPROCS(0)) })
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-a.sem }()
	verify := a.verify
	if verify == nil {
		verify = VerifyPassword
	}
	return verify(hash, password)
}

// validUsername accepts what may be an address: non-empty, bounded, valid
// UTF-8 without control characters or spaces.
func validUsername(s string) bool {
	if s == "" || len(s) > maxUsernameLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// loggableUser truncates an attacker-supplied name for the log. slog itself
// quotes and escapes what needs it.
func loggableUser(s string) string {
	if len(s) <= maxLoggedUser {
		return s
	}
	return strings.ToValidUTF8(s[:maxLoggedUser], "") + "…"
}
