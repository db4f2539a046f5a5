package pop3

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"pombo/auth"
)

// errHandshake ends a session whose STLS handshake failed.
var errHandshake = errors.New("tls handshake failed")

// canLogin tells whether credentials may be sent on this connection: over
// TLS, or in plaintext from loopback when the configuration allows it.
func (c *conn) canLogin() bool {
	return c.tls || (c.srv.opts.AllowPlaintextFromLoopback && c.ip.IsValid() && c.ip.IsLoopback())
}

// cmdCapa lists the capabilities of the current state (RFC 2449 §5).
func (c *conn) cmdCapa(cmd *command) error {
	if len(cmd.args) != 0 {
		return errSyntax
	}
	c.ok("capability list follows")
	c.reply("TOP")
	c.reply("UIDL")
	c.reply("RESP-CODES")
	c.reply("AUTH-RESP-CODE")
	c.reply("PIPELINING")
	c.reply("EXPIRE NEVER")
	if c.state == stateAuthorization {
		if c.canLogin() {
			c.reply("USER")
			c.reply("SASL " + strings.Join(auth.Mechanisms(), " "))
		}
		if !c.tls && c.srv.opts.TLS != nil {
			c.reply("STLS")
		}
	}
	c.reply("IMPLEMENTATION pombo")
	c.reply(".")
	return nil
}

// cmdStls starts TLS (RFC 2595 §4).
func (c *conn) cmdStls(cmd *command) error {
	if len(cmd.args) != 0 {
		return errSyntax
	}
	if c.tls {
		return misuse("already using TLS")
	}
	if c.srv.opts.TLS == nil {
		return misuse("STLS not available")
	}
	c.ok("begin TLS negotiation")
	if err := c.w.Flush(); err != nil {
		return &Error{Text: "write failed", Err: err, Close: true}
	}
	// Anything the client sent after STLS, before the handshake, is dropped
	// with the old reader: plaintext must not be read as if it came over
	// TLS (command injection, CVE-2011-0411 and kin).
	tc := tls.Server(c.raw, c.srv.opts.TLS)
	c.raw.SetDeadline(time.Now().Add(c.srv.opts.IdleTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		// Nothing can be said to the client any more: neither plaintext
		// nor TLS is known to work.
		c.log.Debug("pop3 STLS handshake failed", "err", err)
		return fmt.Errorf("%w: %w", errHandshake, err)
	}
	c.setConn(tc)
	c.tls = true
	c.user = ""
	return nil
}

// cmdUser names the user for PASS (RFC 1939 §7).
func (c *conn) cmdUser(cmd *command) error {
	if !c.canLogin() {
		return errPlaintext
	}
	if len(cmd.args) != 1 {
		return errSyntax
	}
	c.user = cmd.args[0]
	c.ok("send PASS")
	return nil
}

// cmdPass checks the password of the USER (RFC 1939 §7). The password is
// the rest of the line: it may hold spaces.
func (c *conn) cmdPass(cmd *command) error {
	if !c.canLogin() {
		return errPlaintext
	}
	user := c.user
	c.user = "" // a failed PASS needs a new USER
	if user == "" {
		return misuse("send USER first")
	}
	if cmd.rest == "" {
		return errSyntax
	}
	account, err := c.srv.opts.Auth.Authenticate(c.ctx, "pop3", c.ip, user, cmd.rest)
	if err != nil {
		return authError(err)
	}
	return c.login(account)
}

// cmdAuth runs a SASL exchange (RFC 5034). With no argument it lists the
// mechanisms, as some RFC 1734 clients expect.
func (c *conn) cmdAuth(cmd *command) error {
	if !c.canLogin() {
		return errPlaintext
	}
	if len(cmd.args) == 0 {
		c.ok("mechanisms follow")
		for _, m := range auth.Mechanisms() {
			c.reply(m)
		}
		c.reply(".")
		return nil
	}
	if len(cmd.args) > 2 {
		return errSyntax
	}
	var account string
	srv, err := c.srv.opts.Auth.NewSASLServer(c.ctx, "pop3", c.ip, cmd.args[0], func(a string) error {
		account = a
		return nil
	})
	if errors.Is(err, auth.ErrUnsupportedMechanism) {
		return misuse("unsupported authentication mechanism")
	} else if err != nil {
		return temporary("authentication unavailable", err)
	}
	var resp []byte // nil: no initial response
	if len(cmd.args) == 2 {
		if resp, err = decodeSASL(cmd.args[1]); err != nil {
			return errAuthMalform
		}
	}
	if err := c.saslExchange(srv, resp); err != nil {
		return err
	}
	if account == "" {
		return errAuthFailed
	}
	return c.login(account)
}

// saslExchange runs challenges and responses (RFC 5034 §4) until the
// mechanism is done.
func (c *conn) saslExchange(srv sasl.Server, resp []byte) error {
	// PLAIN takes one round, LOGIN two; a few more are a client looping.
	for round := 0; ; round++ {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			return authError(err)
		}
		if done {
			return nil
		}
		if round == 4 {
			return errAuthMalform
		}
		c.reply("+ " + base64.StdEncoding.EncodeToString(challenge))
		if err := c.w.Flush(); err != nil {
			return err
		}
		line, err := c.readLine(maxSASLLine)
		if err != nil {
			return err
		}
		text := strings.TrimRight(string(line), "\r\n")
		if text == "*" {
			return misuse("authentication cancelled") // RFC 5034 §4
		}
		if resp, err = base64.StdEncoding.DecodeString(text); err != nil {
			return errAuthMalform
		}
	}
}

// decodeSASL decodes an initial response; "=" is the empty one (RFC 5034 §4).
func decodeSASL(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// authError maps an error of auth to a reply (RFC 3206 response codes).
func authError(err error) error {
	var pe *Error
	switch {
	case errors.As(err, &pe):
		return pe // a read error inside the exchange, already typed
	case errors.Is(err, auth.ErrInvalidCredentials):
		return errAuthFailed
	case errors.Is(err, auth.ErrThrottled):
		return errThrottled
	case errors.Is(err, auth.ErrMalformed), errors.Is(err, sasl.ErrUnexpectedClientResponse):
		return errAuthMalform
	}
	return temporary("authentication unavailable", err)
}
