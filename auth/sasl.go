package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/emersion/go-sasl"
)

// ErrUnsupportedMechanism is returned by NewSASLServer for a mechanism other
// than those of Mechanisms.
var ErrUnsupportedMechanism = errors.New("unsupported SASL mechanism")

// Mechanisms returns the SASL mechanisms NewSASLServer offers, in the order to
// advertise them.
func Mechanisms() []string {
	return []string{sasl.Plain, sasl.Login}
}

// NewSASLServer returns a server for mech "PLAIN" or "LOGIN" (case-insensitive;
// anything else: error). On success it calls done(account). PLAIN with an
// authorization identity that is not empty and not equal to the authenticated
// username is refused (maddy CVE-2023-27582).
//
// The returned server's errors are those of Authenticate, ErrMalformed for a
// response that does not parse, done's error, or
// sasl.ErrUnexpectedClientResponse for a response after the exchange ended.
func (a *Authenticator) NewSASLServer(ctx context.Context, proto string, ip netip.Addr, mech string, done func(account string) error) (sasl.Server, error) {
	check := func(username, password string) error {
		account, err := a.Authenticate(ctx, proto, ip, username, password)
		if err != nil {
			return err
		}
		return done(account)
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		s := &plainServer{a: a, ctx: ctx, proto: proto, ip: ip}
		s.inner = sasl.NewPlainServer(func(identity, username, password string) error {
			s.parsed = true
			// RFC 4616 §2: the server must verify that the authentication
			// identity may act as the authorization identity; we allow only
			// itself. Compared as accounts (case-insensitively), before the
			// password, so the refusal tells nothing about it.
			if identity != "" && strings.ToLower(identity) != strings.ToLower(username) {
				return a.fail(ctx, proto, ip, strings.ToLower(username), reasonAuthzid)
			}
			return check(username, password)
		})
		return s, nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedMechanism, mech)
}

// plainServer wraps go-sasl's PLAIN server to report a response it cannot
// split (not exactly two NULs) as ErrMalformed, and to log it.
type plainServer struct {
	inner  sasl.Server
	parsed bool // the inner server got as far as calling our authenticator

	a     *Authenticator
	ctx   context.Context
	proto string
	ip    netip.Addr
}

func (s *plainServer) Next(response []byte) (challenge []byte, done bool, err error) {
	if s.parsed {
		return nil, false, sasl.ErrUnexpectedClientResponse
	}
	challenge, done, err = s.inner.Next(response)
	if err != nil && !s.parsed {
		s.parsed = true // one response only
		s.a.fail(s.ctx, s.proto, s.ip, "", reasonMalformed)
		return nil, true, ErrMalformed
	}
	return challenge, done, err
}

// loginServer is the obsolete but still widely used LOGIN mechanism
// (draft-murchison-sasl-login): the server prompts "Username:" and
// "Password:", the client answers each. A client may send the username as its
// initial response (SMTP "AUTH LOGIN <base64 user>"). go-sasl no longer ships a
// LOGIN server.
type loginServer struct {
	check    func(username, password string) error
	state    loginState
	username string
}

type loginState int

const (
	loginStart loginState = iota
	loginWantUsername
	loginWantPassword
	loginDone
)

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.state {
	case loginStart:
		if response == nil {
			s.state = loginWantUsername
			return []byte("Username:"), false, nil
		}
		s.username = string(response)
		s.state = loginWantPassword
		return []byte("Password:"), false, nil
	case loginWantUsername:
		s.username = string(response)
		s.state = loginWantPassword
		return []byte("Password:"), false, nil
	case loginWantPassword:
		s.state = loginDone
		return nil, true, s.check(s.username, string(response))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}
