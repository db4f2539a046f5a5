package auth

import (
	"errors"
	"slices"
	"testing"

	"github.com/emersion/go-sasl"
)

// saslRun feeds responses to a server for mech and returns the challenges,
// the final error and the account passed to done ("" if done was not called).
func saslRun(t *testing.T, env *testEnv, mech string, responses ...[]byte) (challenges []string, account string, err error) {
	t.Helper()
	s, err := env.a.NewSASLServer(ctx, "smtp", ip1, mech, func(a string) error {
		if account != "" {
			t.Errorf("done called twice")
		}
		account = a
		return nil
	})
	if err != nil {
		t.Fatalf("NewSASLServer(%q): %v", mech, err)
	}
	for i, r := range responses {
		ch, done, err := s.Next(r)
		if err != nil {
			return challenges, account, err
		}
		if ch != nil {
			challenges = append(challenges, string(ch))
		}
		if done {
			if i != len(responses)-1 {
				t.Fatalf("done after response %d of %d", i+1, len(responses))
			}
			// Nothing more is accepted after the end.
			if _, _, err := s.Next([]byte("more")); !errors.Is(err, sasl.ErrUnexpectedClientResponse) {
				t.Errorf("Next after done: err = %v, want ErrUnexpectedClientResponse", err)
			}
			return challenges, account, nil
		}
	}
	t.Fatalf("exchange not done after %d responses (challenges %q)", len(responses), challenges)
	return
}

func TestMechanisms(t *testing.T) {
	if got := Mechanisms(); !slices.Equal(got, []string{"PLAIN", "LOGIN"}) {
		t.Errorf("Mechanisms() = %q", got)
	}
}

func TestSASLUnsupportedMechanism(t *testing.T) {
	env := newTestEnv(t)
	for _, mech := range []string{"CRAM-MD5", "XOAUTH2", "", "PLAINX", "ANONYMOUS"} {
		s, err := env.a.NewSASLServer(ctx, "imap", ip1, mech, func(string) error { return nil })
		if !errors.Is(err, ErrUnsupportedMechanism) || s != nil {
			t.Errorf("NewSASLServer(%q) = %v, %v; want ErrUnsupportedMechanism", mech, s, err)
		}
	}
}

func TestSASLPlainSuccess(t *testing.T) {
	env := newTestEnv(t)
	for _, mech := range []string{"PLAIN", "plain", "Plain"} {
		_, acct, err := saslRun(t, env, mech, []byte("\x00Bob@example.org\x00bob's password"))
		if err != nil || acct != "bob@example.org" {
			t.Errorf("%s: account %q, err %v", mech, acct, err)
		}
	}
}

func TestSASLPlainNoInitialResponse(t *testing.T) {
	env := newTestEnv(t)
	ch, acct, err := saslRun(t, env, "PLAIN", nil, []byte("\x00bob@example.org\x00bob's password"))
	if err != nil || acct != "bob@example.org" {
		t.Fatalf("account %q, err %v", acct, err)
	}
	if !slices.Equal(ch, []string{""}) {
		t.Errorf("challenges %q, want one empty challenge", ch)
	}
}

// TestSASLPlainAuthzidOtherUser is maddy's CVE-2023-27582: the right password
// for bob with authorization identity alice must not log in as alice (nor bob).
func TestSASLPlainAuthzidOtherUser(t *testing.T) {
	env := newTestEnv(t)
	_, acct, err := saslRun(t, env, "PLAIN", []byte("alice@example.org\x00bob@example.org\x00bob's password"))
	if !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("err = %v, want ErrInvalidCredentials", err)
	}
	if acct != "" {
		t.Fatalf("done called with %q", acct)
	}
	if env.verifies.Load() != 0 {
		t.Errorf("password checked despite a foreign authzid")
	}
	env.wantOneFailureLog(t, "smtp", "192.0.2.1", "bob@example.org", "authzid mismatch")
}

func TestSASLPlainAuthzidSelf(t *testing.T) {
	env := newTestEnv(t)
	for _, authz := range []string{"bob@example.org", "BOB@example.ORG"} {
		_, acct, err := saslRun(t, env, "PLAIN", []byte(authz+"\x00bob@example.org\x00bob's password"))
		if err != nil || acct != "bob@example.org" {
			t.Errorf("authzid %q: account %q, err %v", authz, acct, err)
		}
	}
}

func TestSASLPlainWrongPassword(t *testing.T) {
	env := newTestEnv(t)
	_, acct, err := saslRun(t, env, "PLAIN", []byte("\x00bob@example.org\x00nope"))
	if !errors.Is(err, ErrInvalidCredentials) || acct != "" {
		t.Fatalf("account %q, err %v; want ErrInvalidCredentials", acct, err)
	}
}

func TestSASLPlainMalformed(t *testing.T) {
	for name, resp := range map[string]string{
		"no NUL":        "bob@example.org bob's password",
		"one NUL":       "bob@example.org\x00bob's password",
		"too many NULs": "\x00bob@example.org\x00bob's\x00password",
		"empty":         "",
	} {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			_, acct, err := saslRun(t, env, "PLAIN", []byte(resp))
			if !errors.Is(err, ErrInvalidCredentials) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
			if acct != "" {
				t.Fatalf("done called with %q", acct)
			}
			env.wantOneFailureLog(t, "smtp", "192.0.2.1", "", "malformed")
		})
	}
}

func TestSASLLoginSuccess(t *testing.T) {
	env := newTestEnv(t)
	// IMAP/POP3 style: no initial response.
	ch, acct, err := saslRun(t, env, "LOGIN", nil, []byte("bob@example.org"), []byte("bob's password"))
	if err != nil || acct != "bob@example.org" {
		t.Fatalf("account %q, err %v", acct, err)
	}
	if !slices.Equal(ch, []string{"Username:", "Password:"}) {
		t.Errorf("challenges %q", ch)
	}
	// SMTP "AUTH LOGIN <user>" style: the username as initial response.
	ch, acct, err = saslRun(t, env, "login", []byte("Bob@Example.org"), []byte("bob's password"))
	if err != nil || acct != "bob@example.org" {
		t.Fatalf("with initial response: account %q, err %v", acct, err)
	}
	if !slices.Equal(ch, []string{"Password:"}) {
		t.Errorf("challenges %q", ch)
	}
}

func TestSASLLoginFailure(t *testing.T) {
	env := newTestEnv(t)
	_, acct, err := saslRun(t, env, "LOGIN", nil, []byte("bob@example.org"), []byte("alice's password"))
	if !errors.Is(err, ErrInvalidCredentials) || acct != "" {
		t.Fatalf("account %q, err %v; want ErrInvalidCredentials", acct, err)
	}
	env.wantOneFailureLog(t, "smtp", "192.0.2.1", "bob@example.org", "wrong password")
}

func TestSASLDoneError(t *testing.T) {
	env := newTestEnv(t)
	sessionErr := errors.New("session closed")
	s, err := env.a.NewSASLServer(ctx, "imap", ip1, "PLAIN", func(string) error { return sessionErr })
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Next([]byte("\x00bob@example.org\x00bob's password")); !errors.Is(err, sessionErr) {
		t.Errorf("err = %v, want done's error", err)
	}
}

func TestSASLThrottled(t *testing.T) {
	env := newTestEnv(t)
	for range 3 {
		saslRun(t, env, "PLAIN", []byte("\x00bob@example.org\x00guess"))
	}
	_, acct, err := saslRun(t, env, "LOGIN", nil, []byte("bob@example.org"), []byte("bob's password"))
	if !errors.Is(err, ErrThrottled) || acct != "" {
		t.Fatalf("account %q, err %v; want ErrThrottled", acct, err)
	}
}
