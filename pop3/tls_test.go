package pop3_test

import (
	"crypto/tls"
	"net/textproto"
	"strings"
	"testing"
)

// startTLS sends STLS and switches the client to TLS.
func (c *client) startTLS() {
	c.t.Helper()
	c.ok("STLS")
	if n := c.tp.R.Buffered(); n > 0 {
		c.t.Fatalf("%d octets after the STLS reply", n)
	}
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.nc = tc
	c.tp = textproto.NewConn(tc)
}

// TestSTLS: STLS works once, only before login, and plaintext pipelined
// behind it is never executed (command injection).
func TestSTLS(t *testing.T) {
	e := start(t, nil)
	e.deliver(e.aliceID, msgDots)

	c := dial(t, e.plainAddr())
	c.startTLS()
	c.fail("-ERR", "STLS") // twice
	c.login(alice, alicePW)
	c.fail("-ERR", "STLS")
	c.ok("QUIT")

	// After login on a plain connection: not in TRANSACTION state.
	c = dial(t, e.plainAddr())
	c.login(alice, alicePW)
	c.fail("-ERR", "STLS")
	c.ok("QUIT")

	// Injection: "USER" sent in plaintext right behind STLS must not count
	// once TLS is up.
	c = dial(t, e.plainAddr())
	c.nc.Write([]byte("STLS\r\nUSER " + alice + "\r\n"))
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("STLS: %q", l)
	}
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.nc, c.tp = tc, textproto.NewConn(tc)
	c.fail("-ERR send USER first", "PASS %s", alicePW)
	c.login(alice, alicePW)
	c.ok("QUIT")

	// A client that sends garbage instead of a handshake is disconnected.
	c = dial(t, e.plainAddr())
	c.ok("STLS")
	c.nc.Write([]byte("this is not TLS\r\n"))
	c.closed()
}
