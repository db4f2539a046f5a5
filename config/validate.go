package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
)

// problem is one validation failure; key is a dotted path of bare keys.
type problem struct {
	key, msg string
}

// Validate checks c without touching the filesystem or the network. All
// problems are reported, one per line.
func (c *Config) Validate() error {
	var errs []error
	for _, p := range c.problems() {
		errs = append(errs, &keyError{key: p.key, msg: p.msg})
	}
	return errors.Join(errs...)
}

func (c *Config) problems() []problem {
	var ps []problem
	bad := func(key, format string, args ...any) {
		ps = append(ps, problem{key, fmt.Sprintf(format, args...)})
	}
	positive := func(key string, n int) {
		if n <= 0 {
			bad(key, "must be greater than 0, not %d", n)
		}
	}
	positiveDur := func(key string, d Duration) {
		if d <= 0 {
			bad(key, "must be greater than 0, not %s", d)
		}
	}
	both := func(aKey, a, bKey, b string) { // a set requires b set
		if a != "" && b == "" {
			bad(bKey, "must be set when %s is set", aKey)
		}
	}

	if msg := checkHostname(c.Hostname); msg != "" {
		bad("hostname", "%s", msg)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	both("tls.cert_file", c.TLS.CertFile, "tls.key_file", c.TLS.KeyFile)
	both("tls.key_file", c.TLS.KeyFile, "tls.cert_file", c.TLS.CertFile)

	addrs := c.ListenAddrs()
	for i, a := range addrs {
		if msg := checkHostPort(a.Addr, 0); msg != "" {
			bad(a.Key, "%s", msg)
			continue
		}
		for _, b := range addrs[:i] {
			if checkHostPort(b.Addr, 0) == "" && conflict(a.Addr, b.Addr) {
				bad(a.Key, "%q conflicts with %q in %s", a.Addr, b.Addr, b.Key)
				break
			}
		}
	}
	if c.DNS.Resolver != "" {
		if msg := checkHostPort(c.DNS.Resolver, 1); msg != "" {
			bad("dns.resolver", "%s", msg)
		}
	}

	l := c.Limits
	if l.MaxMessageSize <= 0 {
		bad("limits.max_message_size", "must be greater than 0, not %s", l.MaxMessageSize)
	}
	positive("limits.max_connections", l.MaxConnections)
	positive("limits.max_connections_per_ip", l.MaxConnectionsPerIP)
	positive("limits.max_recipients", l.MaxRecipients)
	positive("limits.max_errors", l.MaxErrors)
	positiveDur("limits.command_timeout", l.CommandTimeout)
	positiveDur("limits.data_timeout", l.DataTimeout)
	positiveDur("limits.imap_idle_timeout", l.IMAPIdleTimeout)
	positiveDur("limits.imap_login_timeout", l.IMAPLoginTimeout)
	positiveDur("limits.imap_autologout", l.IMAPAutologout)
	positiveDur("limits.pop3_idle_timeout", l.POP3IdleTimeout)
	// RFC 5321 §4.5.3.1.6: a text line is up to 1000 octets with its CRLF;
	// a lower limit would refuse conforming mail.
	if l.MaxLineLength < 1000 {
		bad("limits.max_line_length", "must be at least 1000 (RFC 5321), not %d", l.MaxLineLength)
	}

	positive("auth.max_failures_per_ip", c.Auth.MaxFailuresPerIP)
	positive("auth.max_failures_per_account", c.Auth.MaxFailuresPerAccount)
	positiveDur("auth.failure_window", c.Auth.FailureWindow)

	positive("submission.max_messages_per_hour", c.Submission.MaxMessagesPerHour)
	positive("submission.max_recipients_per_message", c.Submission.MaxRecipientsPerMessage)

	q := c.Queue
	positiveDur("queue.retry_initial", q.RetryInitial)
	positiveDur("queue.give_up_after", q.GiveUpAfter)
	if q.RetryMax < q.RetryInitial {
		bad("queue.retry_max", "must be at least queue.retry_initial (%s), not %s", q.RetryInitial, q.RetryMax)
	}
	positive("queue.workers", q.Workers)

	r := c.Relay
	switch r.TLS {
	case RelayTLSStartTLS, RelayTLSImplicit, RelayTLSNone:
	default:
		bad("relay.tls", "%q is not one of %q, %q, %q", r.TLS, RelayTLSStartTLS, RelayTLSImplicit, RelayTLSNone)
	}
	if r.Port < 1 || r.Port > 65535 {
		bad("relay.port", "%d is out of range 1-65535", r.Port)
	}
	if r.Host != "" && net.ParseIP(r.Host) == nil {
		if msg := checkHostname(r.Host); msg != "" {
			if strings.Contains(r.Host, ":") {
				msg += " (the port goes in relay.port)"
			}
			bad("relay.host", "%s", msg)
		}
	}
	both("relay.username", r.Username, "relay.host", r.Host)
	both("relay.username", r.Username, "relay.password", r.Password)
	both("relay.password", r.Password, "relay.username", r.Username)

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of \"debug\", \"info\", \"warn\", \"error\"", c.Log.Level)
	}
	if c.UserDefaults.Quota < 0 {
		bad("user_defaults.quota", "must not be negative")
	}
	return ps
}

// checkHostname accepts a DNS name: letters (IDN included), digits, "-",
// "_" and ".".
func checkHostname(h string) string {
	if h == "" {
		return "must not be empty"
	}
	if len(h) > 253 {
		return "is longer than 253 characters"
	}
	for _, r := range h {
		ok := unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Sprintf("%q is not a valid host name", h)
		}
	}
	return ""
}

// checkHostPort checks a "host:port" address with a numeric port of at
// least minPort; it returns "" if the address is fine.
func checkHostPort(addr string, minPort int) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Sprintf("%q is not host:port (%s)", addr, ae.Err)
		}
		return fmt.Sprintf("%q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || port == "" || port[0] < '0' || port[0] > '9' {
		return fmt.Sprintf("%q: port %q is not a number", addr, port)
	}
	if n < minPort || n > 65535 {
		return fmt.Sprintf("%q: port %d is out of range %d-65535", addr, n, minPort)
	}
	return ""
}

// conflict reports whether two valid addresses cannot both be bound. Port 0
// never conflicts. Go listens dual-stack on any unspecified address ("",
// "0.0.0.0", "::"), which then takes the port on every address.
func conflict(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	if na != nb || na == 0 {
		return false
	}
	ia, ib := net.ParseIP(ha), net.ParseIP(hb)
	all := func(h string, ip net.IP) bool { return h == "" || ip != nil && ip.IsUnspecified() }
	switch {
	case all(ha, ia) || all(hb, ib):
		return true
	case ia != nil && ib != nil:
		return ia.Equal(ib)
	}
	return ha == hb
}
