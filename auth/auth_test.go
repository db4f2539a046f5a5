package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeUsers is a UserLookup over a map of address → PHC hash.
type fakeUsers struct {
	hashes map[string]string
	err    error
	calls  atomic.Int32
}

func (f *fakeUsers) PasswordHash(ctx context.Context, address string) (string, bool, error) {
	f.calls.Add(1)
	if f.err != nil {
		return "", false, f.err
	}
	h, ok := f.hashes[address]
	return h, ok, nil
}

// Hashing costs tens of milliseconds; do it once for all tests.
var testHashes = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	for addr, pw := range map[string]string{
		"bob@example.org":   "bob's password",
		"alice@example.org": "alice's password",
	} {
		h, err := HashPassword(pw)
		if err != nil {
			panic(err)
		}
		m[addr] = h
	}
	return m
})

type testEnv struct {
	a        *Authenticator
	users    *fakeUsers
	logs     *bytes.Buffer
	verifies atomic.Int32 // argon2 computations
}

// newTestEnv returns an Authenticator over bob and alice, logging JSON into
// env.logs, with a throttle of 3 failures per IP and per account.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	env := &testEnv{users: &fakeUsers{hashes: testHashes()}, logs: new(bytes.Buffer)}
	env.a = &Authenticator{
		Users:    env.users,
		Throttle: NewThrottle(ThrottleOptions{MaxPerIP: 3, MaxPerAccount: 3, Now: newFakeClock().Now}),
		Log:      slog.New(slog.NewJSONHandler(&lockedWriter{w: env.logs}, nil)),
		verify: func(phc, pw string) (bool, error) {
			env.verifies.Add(1)
			return VerifyPassword(phc, pw)
		},
	}
	return env
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logLines returns the JSON log records written so far.
func (env *testEnv) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(env.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// wantOneFailureLog asserts exactly one "auth failed" line with these fields.
func (env *testEnv) wantOneFailureLog(t *testing.T, proto, ip, user, reason string) {
	t.Helper()
	lines := env.logLines(t)
	if len(lines) != 1 {
		t.Fatalf("want 1 log line, got %d: %s", len(lines), env.logs)
	}
	l := lines[0]
	for k, want := range map[string]string{"level": "WARN", "msg": "auth failed", "proto": proto, "ip": ip, "user": user, "reason": reason} {
		if l[k] != want {
			t.Errorf("log %s = %v, want %q (line %v)", k, l[k], want, l)
		}
	}
}

var ctx = context.Background()

func TestAuthenticateSuccess(t *testing.T) {
	env := newTestEnv(t)
	acct, err := env.a.Authenticate(ctx, "imap", ip1, "Bob@Example.ORG", "bob's password")
	if err != nil {
		t.Fatal(err)
	}
	if acct != "bob@example.org" {
		t.Errorf("account = %q, want bob@example.org", acct)
	}
	if env.logs.Len() != 0 {
		t.Errorf("success logged a failure: %s", env.logs)
	}
}

func TestAuthenticateWrongPassword(t *testing.T) {
	env := newTestEnv(t)
	acct, err := env.a.Authenticate(ctx, "smtp", ip1, "bob@example.org", "alice's password")
	if !errors.Is(err, ErrInvalidCredentials) || acct != "" {
		t.Fatalf("Authenticate = %q, %v; want ErrInvalidCredentials", acct, err)
	}
	env.wantOneFailureLog(t, "smtp", "192.0.2.1", "bob@example.org", "wrong password")
}

func TestAuthenticateUnknownUserSpendsArgon2(t *testing.T) {
	env := newTestEnv(t)
	_, err := env.a.Authenticate(ctx, "pop3", ip1, "nobody@example.org", "whatever")
	if !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("err = %v, want ErrInvalidCredentials", err)
	}
	if n := env.verifies.Load(); n != 1 {
		t.Errorf("unknown user: %d argon2 verifications, want 1 (same cost as a wrong password)", n)
	}
	env.wantOneFailureLog(t, "pop3", "192.0.2.1", "nobody@example.org", "unknown user")
}

func TestAuthenticateThrottled(t *testing.T) {
	env := newTestEnv(t)
	for range 3 {
		if _, err := env.a.Authenticate(ctx, "imap", lo, "bob@example.org", "guess"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("err = %v, want ErrInvalidCredentials", err)
		}
	}
	env.logs.Reset()
	before := env.verifies.Load()
	lookups := env.users.calls.Load()
	// Even the right password is refused, without being checked.
	_, err := env.a.Authenticate(ctx, "imap", lo, "bob@example.org", "bob's password")
	if !errors.Is(err, ErrThrottled) {
		t.Fatalf("err = %v, want ErrThrottled", err)
	}
	if env.verifies.Load() != before || env.users.calls.Load() != lookups {
		t.Errorf("throttled attempt looked up the user or checked the password")
	}
	env.wantOneFailureLog(t, "imap", "127.0.0.1", "bob@example.org", "throttled")

	// The account is blocked from elsewhere too; another account from
	// elsewhere is not.
	if _, err := env.a.Authenticate(ctx, "imap", ip2, "bob@example.org", "bob's password"); !errors.Is(err, ErrThrottled) {
		t.Errorf("account from another IP: err = %v, want ErrThrottled", err)
	}
	if _, err := env.a.Authenticate(ctx, "imap", ip2, "alice@example.org", "alice's password"); err != nil {
		t.Errorf("other account from another IP: %v", err)
	}
}

func TestAuthenticateSuccessResetsAccount(t *testing.T) {
	env := newTestEnv(t)
	env.a.Authenticate(ctx, "imap", ip1, "bob@example.org", "guess1")
	env.a.Authenticate(ctx, "imap", ip2, "bob@example.org", "guess2")
	if _, err := env.a.Authenticate(ctx, "imap", ip2, "bob@example.org", "bob's password"); err != nil {
		t.Fatal(err)
	}
	// Two failures were forgotten: two more are allowed before the limit.
	env.a.Authenticate(ctx, "imap", netip.MustParseAddr("198.51.100.1"), "bob@example.org", "guess3")
	env.a.Authenticate(ctx, "imap", netip.MustParseAddr("198.51.100.2"), "bob@example.org", "guess4")
	if _, err := env.a.Authenticate(ctx, "imap", netip.MustParseAddr("198.51.100.3"), "bob@example.org", "bob's password"); err != nil {
		t.Errorf("after success and 2 failures: %v", err)
	}
}

func TestAuthenticateInvalidInput(t *testing.T) {
	for _, c := range []struct {
		name, user, pw, reason string
	}{
		{"empty user", "", "pw", "invalid username"},
		{"control char", "bob@example.org\r\nreason=x", "pw", "invalid username"},
		{"space", "bob @example.org", "pw", "invalid username"},
		{"bad utf8", "bob\xff@example.org", "pw", "invalid username"},
		{"long user", strings.Repeat("a", 400) + "@example.org", "pw", "invalid username"},
		{"empty password", "bob@example.org", "", "invalid password"},
		{"NUL password", "bob@example.org", "bob's\x00password", "invalid password"},
		{"long password", "bob@example.org", strings.Repeat("p", MaxPasswordLen+1), "invalid password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := newTestEnv(t)
			if _, err := env.a.Authenticate(ctx, "smtp", ip1, c.user, c.pw); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("err = %v, want ErrInvalidCredentials", err)
			}
			lines := env.logLines(t)
			if len(lines) != 1 || lines[0]["reason"] != c.reason {
				t.Fatalf("log %v, want one line with reason %q", lines, c.reason)
			}
			if u, _ := lines[0]["user"].(string); len(u) > maxLoggedUser+len("…") {
				t.Errorf("logged user of %d bytes", len(u))
			}
		})
	}
}

func TestAuthenticateLookupError(t *testing.T) {
	env := newTestEnv(t)
	dbErr := errors.New("database is locked")
	env.users.err = dbErr
	_, err := env.a.Authenticate(ctx, "imap", ip1, "bob@example.org", "bob's password")
	if !errors.Is(err, dbErr) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("err = %v, want the lookup error (temporary), not invalid credentials", err)
	}
	env.wantOneFailureLog(t, "imap", "192.0.2.1", "bob@example.org", "lookup error")
	// Storage trouble is not counted against the user.
	for range 5 {
		env.a.Authenticate(ctx, "imap", ip1, "bob@example.org", "bob's password")
	}
	env.users.err = nil
	if _, err := env.a.Authenticate(ctx, "imap", ip1, "bob@example.org", "bob's password"); err != nil {
		t.Errorf("after lookup errors: %v", err)
	}
}

func TestAuthenticateCorruptStoredHash(t *testing.T) {
	env := newTestEnv(t)
	env.users.hashes = map[string]string{"bob@example.org": "$argon2id$v=19$m=99999999,t=2,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA"}
	_, err := env.a.Authenticate(ctx, "imap", ip1, "bob@example.org", "x")
	if !errors.Is(err, ErrMalformedHash) {
		t.Fatalf("err = %v, want ErrMalformedHash", err)
	}
	env.wantOneFailureLog(t, "imap", "192.0.2.1", "bob@example.org", "bad stored hash")
}

func TestAuthenticateCanceled(t *testing.T) {
	env := newTestEnv(t)
	env.a.semOnce.Do(func() { env.a.sem = make(chan struct{}, 1) })
	env.a.sem <- struct{}{} // all argon2 slots busy
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := env.a.Authenticate(c, "imap", ip1, "bob@example.org", "bob's password"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if env.verifies.Load() != 0 {
		t.Errorf("argon2 ran while the limit was reached")
	}
}

func TestAuthenticateNilThrottleAndLog(t *testing.T) {
	a := &Authenticator{Users: &fakeUsers{hashes: testHashes()}}
	if _, err := a.Authenticate(ctx, "imap", ip1, "bob@example.org", "bob's password"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "imap", ip1, "bob@example.org", "no"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatal(err)
	}
}

// TestFail2banFilter checks the filter documented on Authenticate against the
// text handler's output, including a username crafted to forge an ip field.
func TestFail2banFilter(t *testing.T) {
	var buf bytes.Buffer
	env := newTestEnv(t)
	env.a.Log = slog.New(slog.NewTextHandler(&buf, nil))
	env.a.Throttle = nil
	// fail2ban's <HOST>, simplified.
	const host = `(?P<host>[0-9a-fA-F.:]+)`
	filters := []*regexp.Regexp{
		regexp.MustCompile(strings.ReplaceAll(`msg="auth failed" proto=\S+ ip=<HOST> user=`, "<HOST>", host)),
		regexp.MustCompile(strings.ReplaceAll(`"msg":"auth failed","proto":"[^"]*","ip":"<HOST>","user":`, "<HOST>", host)),
	}
	var jsonBuf bytes.Buffer
	for _, c := range []struct {
		ip   netip.Addr
		user string
	}{
		{netip.MustParseAddr("203.0.113.7"), "bob@example.org"},
		{netip.MustParseAddr("2001:db8::7"), `x" ip=198.51.100.66 user=`},
		{netip.MustParseAddr("::ffff:203.0.113.8"), `msg="auth failed" proto=x ip=198.51.100.66 user=`},
		{netip.MustParseAddr("203.0.113.9"), `","ip":"198.51.100.66","user":"`},
	} {
		for i, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&jsonBuf, nil)} {
			buf.Reset()
			jsonBuf.Reset()
			env.a.Log = slog.New(h)
			env.a.Authenticate(ctx, "imap", c.ip, c.user, "wrong")
			line := buf.String() + jsonBuf.String()
			m := filters[i].FindAllStringSubmatch(line, -1)
			if len(m) != 1 {
				t.Fatalf("filter %d matches %d times in %q", i, len(m), line)
			}
			if got := m[0][1]; got != c.ip.Unmap().String() {
				t.Errorf("filter %d extracts host %q from %q, want %s", i, got, line, c.ip.Unmap())
			}
		}
	}
}
