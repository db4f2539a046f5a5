package pop3_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"pombo/config"
)

// TestAuth covers RFC 5034 AUTH with PLAIN (with and without initial
// response) and LOGIN, and its hostile cases next to each.
func TestAuth(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.MaxErrors = 100 })
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

	c := dial(t, e.plainAddr())
	c.ok("AUTH")
	if got := c.lines(); strings.Join(got, " ") != "PLAIN LOGIN" {
		t.Errorf("AUTH without mechanism: %q", got)
	}
	c.fail("-ERR unsupported", "AUTH CRAM-MD5")
	c.fail("-ERR [AUTH] ", "AUTH PLAIN !!!notbase64")
	c.fail("-ERR [AUTH] ", "AUTH PLAIN =") // empty response: no NULs
	// Authorization identity of another user, with alice's right password.
	c.fail("-ERR [AUTH] ", "AUTH PLAIN %s", plainResp(bob, alice, alicePW))
	c.fail("-ERR [AUTH] ", "AUTH PLAIN %s", plainResp("", alice, "wrong"))
	// Cancelled exchange.
	if l := c.cmd("AUTH PLAIN"); l != "+ " {
		t.Fatalf("AUTH PLAIN: %q", l)
	}
	c.fail("-ERR authentication cancelled", "*")
	// Garbage in the exchange.
	c.cmd("AUTH LOGIN")
	c.fail("-ERR [AUTH] ", "%%%%")
	c.fail("-ERR", "STAT")
	// The authorization identity may name the user itself.
	c.ok("AUTH PLAIN %s", plainResp(alice, alice, alicePW))
	c.fail("-ERR", "AUTH PLAIN %s", plainResp("", alice, alicePW)) // not in TRANSACTION
	c.ok("QUIT")

	// PLAIN without initial response.
	c = dial(t, e.plainAddr())
	if l := c.cmd("AUTH PLAIN"); l != "+ " {
		t.Fatalf("AUTH PLAIN: %q", l)
	}
	c.ok("%s", plainResp("", alice, alicePW))
	c.ok("QUIT")

	// LOGIN: username and password prompts.
	c = dial(t, e.plainAddr())
	if l := c.cmd("AUTH LOGIN"); l != "+ "+b64("Username:") {
		t.Fatalf("AUTH LOGIN: %q", l)
	}
	if l := c.cmd("%s", b64(alice)); l != "+ "+b64("Password:") {
		t.Fatalf("username: %q", l)
	}
	c.ok("%s", b64(alicePW))
	c.ok("STAT")
	c.ok("QUIT")

	// LOGIN with the username as initial response, lower-case keyword.
	c = dial(t, e.plainAddr())
	if l := c.cmd("auth login %s", b64(alice)); l != "+ "+b64("Password:") {
		t.Fatalf("AUTH LOGIN with initial response: %q", l)
	}
	c.fail("-ERR [AUTH] ", "%s", b64("wrong"))
	c.ok("QUIT")

	// A SASL line past the limit.
	c = dial(t, e.plainAddr())
	c.cmd("AUTH PLAIN")
	c.fail("-ERR line too long", "%s", strings.Repeat("A", 5000))
	c.ok("CAPA")
	c.lines()
}

// TestUserPass: RFC 1939 USER/PASS and what goes wrong around it.
func TestUserPass(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Limits.MaxErrors = 100 })
	c := dial(t, e.plainAddr())
	c.fail("-ERR send USER first", "PASS %s", alicePW)
	c.fail("-ERR", "USER")
	c.fail("-ERR", "USER a b")
	c.ok("USER %s", alice)
	c.fail("-ERR [AUTH] ", "PASS wrong")
	// A failed PASS forgets the USER.
	c.fail("-ERR send USER first", "PASS %s", alicePW)
	c.ok("USER nobody@example.test")
	c.fail("-ERR [AUTH] ", "PASS %s", alicePW)
	// The address is case-insensitive; the password may hold spaces.
	c.ok("USER ALICE@Example.Test")
	c.ok("PASS %s", alicePW)
	c.fail("-ERR", "USER %s", alice)
	c.fail("-ERR", "PASS %s", alicePW)
	c.ok("QUIT")
}

// TestLoginThrottle: after max_failures_per_account wrong passwords even the
// right one is refused, with a temporary code, and over every mechanism.
func TestLoginThrottle(t *testing.T) {
	e := start(t, func(c *config.Config) {
		c.Auth.MaxFailuresPerAccount = 3
		c.Limits.MaxErrors = 100
	})
	c := dial(t, e.plainAddr())
	for range 3 {
		c.ok("USER %s", alice)
		c.fail("-ERR [AUTH] ", "PASS guess")
	}
	c.ok("USER %s", alice)
	c.fail("-ERR [SYS/TEMP] ", "PASS %s", alicePW)
	c.fail("-ERR [SYS/TEMP] ", "AUTH PLAIN %s", plainResp("", alice, alicePW))
	// Another account from the same address is not locked (per-IP limit is
	// higher).
	c.login(bob, bobPW)
	c.ok("QUIT")
}
