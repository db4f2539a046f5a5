package imap_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"pombo/config"
)

// closeLimit bounds the wait for a server to close a connection it should
// close within seconds; only a server that never does reaches it.
const closeLimit = 30 * time.Second

// timeouts sets the IMAP login timeout, autologout and IDLE limit; zero
// keeps the default.
func timeouts(login, autologout, idle time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		if login > 0 {
			c.Limits.IMAPLoginTimeout = config.Duration(login)
		}
		if autologout > 0 {
			c.Limits.IMAPAutologout = config.Duration(autologout)
		}
		if idle > 0 {
			c.Limits.IMAPIdleTimeout = config.Duration(idle)
		}
	}
}

// waitClosed reads until the server closes c and returns the lines it sent
// meanwhile. It fails the test if c is still open after closeLimit.
func waitClosed(t *testing.T, c net.Conn, br *bufio.Reader) []string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(closeLimit))
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if l != "" {
			lines = append(lines, l)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %v; server sent %q", closeLimit, lines)
			}
			return lines // EOF or reset: the server closed
		}
	}
}

func lastIsBye(t *testing.T, lines []string) {
	t.Helper()
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "* BYE ") {
		t.Errorf("connection closed without a final BYE: %q", lines)
	}
}

// TestLoginTimeoutClosesSilentClient: a client that connects and never logs
// in is told BYE and disconnected after imap_login_timeout, on the plain
// port, after STARTTLS and on the implicit-TLS port.
func TestLoginTimeoutClosesSilentClient(t *testing.T) {
	t.Parallel()
	const login = time.Second
	for _, mode := range []string{"plain", "starttls", "implicit TLS"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := start(t, timeouts(login, 0, 0))
			t0 := time.Now()
			var r *raw
			if mode == "implicit TLS" {
				r = dialRaw(t, e.tlsAddr, true)
			} else {
				r = dialRaw(t, e.addr, false)
			}
			if mode == "starttls" {
				if out := r.cmd("S", "STARTTLS"); !strings.HasPrefix(out[len(out)-1], "S OK") {
					t.Fatalf("STARTTLS: %q", out)
				}
				tc := tls.Client(r.c, &tls.Config{InsecureSkipVerify: true})
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				r.c, r.br = tc, bufio.NewReader(tc)
				if out := r.cmd("C", "CAPABILITY"); !strings.Contains(out[0], "AUTH=PLAIN") {
					t.Fatalf("CAPABILITY over TLS: %q", out)
				}
			}
			lines := waitClosed(t, r.c, r.br)
			if d := time.Since(t0); d < login {
				t.Errorf("closed after %v, before the login timeout of %v", d, login)
			}
			lastIsBye(t, lines)
		})
	}
}

// TestLoginTimeoutStalledTLSHandshake: on the implicit-TLS port a client
// that never sends its ClientHello is disconnected too (imapserver alone
// waits for it forever).
func TestLoginTimeoutStalledTLSHandshake(t *testing.T) {
	t.Parallel()
	const login = time.Second
	e := start(t, timeouts(login, 0, 0))
	t0 := time.Now()
	c, err := net.Dial("tcp", e.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if lines := waitClosed(t, c, bufio.NewReader(c)); len(lines) != 0 {
		t.Errorf("server sent %q to a client that sent nothing", lines)
	}
	if d := time.Since(t0); d < login {
		t.Errorf("closed after %v, before the login timeout of %v", d, login)
	}
}

// TestLoginTimeoutSlowloris: dribbling a byte at a time, even completing
// a NOOP now and then, does not stretch the login timeout: it counts the
// whole time before login, not the silence between reads.
func TestLoginTimeoutSlowloris(t *testing.T) {
	t.Parallel()
	const login = time.Second
	e := start(t, timeouts(login, 0, 0))
	t0 := time.Now()
	r := dialRaw(t, e.addr, false)
	stop := make(chan struct{})
	wrote := make(chan int)
	go func() {
		n := 0
		defer func() { wrote <- n }()
		const cmd = "a NOOP\r\n"
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			r.c.SetWriteDeadline(time.Now().Add(closeLimit))
			if _, err := r.c.Write([]byte{cmd[n%len(cmd)]}); err != nil {
				return // closed by the server
			}
			n++
		}
	}()
	lines := waitClosed(t, r.c, r.br)
	close(stop)
	n := <-wrote
	if d := time.Since(t0); d < login {
		t.Errorf("closed after %v, before the login timeout of %v", d, login)
	}
	lastIsBye(t, lines)
	// The NOOPs were answered: the client was never silent, yet was cut.
	oks := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "a OK") {
			oks++
		}
	}
	if oks == 0 {
		t.Errorf("no NOOP answered in %d bytes sent: %q", n, lines)
	}
}

// TestLoginTimeoutFreesPerIPSlot: a client that never logs in holds its
// per-IP slot only until the login timeout.
func TestLoginTimeoutFreesPerIPSlot(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *config.Config) {
		timeouts(time.Second, 0, 0)(c)
		c.Limits.MaxConnectionsPerIP = 1
	})
	squatter := dialRaw(t, e.addr, false)
	greeting := func() string {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(closeLimit))
		l, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("greeting: %v", err)
		}
		return l
	}
	if g := greeting(); !strings.HasPrefix(g, "* BYE [UNAVAILABLE]") {
		t.Fatalf("second connection from one IP with a limit of 1: %q", g)
	}
	waitClosed(t, squatter.c, squatter.br)
	// The slot is released just after the close the squatter saw.
	g := greeting()
	for i := 0; i < 50 && strings.HasPrefix(g, "* BYE"); i++ {
		time.Sleep(20 * time.Millisecond)
		g = greeting()
	}
	if !strings.HasPrefix(g, "* OK") {
		t.Errorf("after the squatter was cut: %q", g)
	}
}

// TestAutologout: a logged-in client that says nothing is told BYE and
// disconnected after imap_autologout, and not before.
func TestAutologout(t *testing.T) {
	t.Parallel()
	const autologout = 2 * time.Second
	for _, useTLS := range []bool{false, true} {
		name := "plain"
		if useTLS {
			name = "implicit TLS"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := start(t, timeouts(0, autologout, 0))
			addr := e.addr
			if useTLS {
				addr = e.tlsAddr
			}
			r := dialRaw(t, addr, useTLS)
			t0 := time.Now()
			r.login()
			if out := r.cmd("s", "SELECT INBOX"); !strings.HasPrefix(out[len(out)-1], "s OK") {
				t.Fatalf("SELECT: %q", out)
			}
			lines := waitClosed(t, r.c, r.br)
			if d := time.Since(t0); d < autologout {
				t.Errorf("logged out after %v, before the autologout of %v", d, autologout)
			}
			lastIsBye(t, lines)
			if len(lines) > 0 && !strings.Contains(lines[len(lines)-1], "Autologout") {
				t.Errorf("BYE does not say why: %q", lines)
			}
		})
	}
}

// TestIdleOutlastsAutologout: a client in IDLE is not logged out when the
// autologout time since its IDLE command passes; IDLE ends at its own,
// longer limit.
func TestIdleOutlastsAutologout(t *testing.T) {
	t.Parallel()
	const autologout, idle = 2 * time.Second, 6 * time.Second
	e := start(t, timeouts(0, autologout, idle))
	c, exists := e.existsClient(t, 4)
	selectBox(t, c, "INBOX")
	t0 := time.Now()
	cmd, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Close()
	// Past the autologout that silence since IDLE would have earned.
	time.Sleep(time.Until(t0.Add(autologout + time.Second)))
	e.deliver(t, "INBOX", simpleMsg("still here", "idling"))
	select {
	case n := <-exists:
		if n != 1 {
			t.Errorf("EXISTS %d, want 1", n)
		}
	case <-c.Closed():
		t.Fatalf("IDLE cut %v into IDLE, before its limit of %v", time.Since(t0), idle)
	case <-time.After(closeLimit):
		t.Fatal("no EXISTS during IDLE")
	}
	select {
	case <-c.Closed():
	case <-time.After(closeLimit):
		t.Fatalf("IDLE still running after %v", closeLimit)
	}
	if d := time.Since(t0); d < idle {
		t.Errorf("IDLE ended after %v, before its limit of %v", d, idle)
	}
}

// TestActiveClientStaysLoggedIn: a client that sends commands (and short
// IDLEs) more often than the autologout time is never cut, well past both
// timeouts; once it falls silent, even right after an IDLE, it is.
func TestActiveClientStaysLoggedIn(t *testing.T) {
	t.Parallel()
	const login, autologout = 3 * time.Second, 2 * time.Second
	e := start(t, timeouts(login, autologout, 0))
	c := e.client(t, nil)
	selectBox(t, c, "INBOX")
	end := time.Now().Add(login + 3*autologout)
	for i := 0; time.Now().Before(end); i++ {
		time.Sleep(autologout / 4)
		if i%2 == 0 {
			if err := c.Noop().Wait(); err != nil {
				t.Fatalf("NOOP %d: %v", i, err)
			}
			continue
		}
		cmd, err := c.Idle()
		if err != nil {
			t.Fatalf("IDLE %d: %v", i, err)
		}
		time.Sleep(autologout / 4)
		if err := cmd.Close(); err != nil {
			t.Fatalf("DONE %d: %v", i, err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("IDLE %d: %v", i, err)
		}
	}
	cmd, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(autologout / 4)
	t0 := time.Now() // the server counts from DONE, sent after this
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Closed():
	case <-time.After(closeLimit):
		t.Fatalf("silent client still logged in after %v", closeLimit)
	}
	if d := time.Since(t0); d < autologout {
		t.Errorf("logged out %v after IDLE ended, before the autologout of %v", d, autologout)
	}
}
