package pop3_test

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// certFingerprint is the MD5 fingerprint of the server certificate in
// fetchmail's notation, so that fetchmail can pin it.
func (e *env) certFingerprint() string {
	sum := md5.Sum(e.srv.TLS.Certificates[0].Certificate[0])
	var parts []string
	for _, b := range sum {
		parts = append(parts, fmt.Sprintf("%02X", b))
	}
	return strings.Join(parts, ":")
}

// runFetchmail polls alice's maildrop once and returns what it handed on,
// as a BSMTP file: the SMTP transaction fetchmail would have had with an
// MTA, written to a file (no process per message, unlike an MDA).
func (e *env) runFetchmail(t *testing.T, fetchmail string, keep, implicitTLS bool) []bsmtpMessage {
	t.Helper()
	home := t.TempDir()
	out := filepath.Join(home, "out.bsmtp")
	addr := e.plainAddr()
	tlsOpt := `sslproto "auto"` // STLS, required
	if implicitTLS {
		addr, tlsOpt = e.tlsAddr(), "ssl"
	}
	host, port, _ := strings.Cut(addr, ":")
	keepOpt := "no keep"
	if keep {
		keepOpt = "keep"
	}
	// The certificate is pinned by fingerprint (it names mx.example.test,
	// not 127.0.0.1). no rewrite: leave addresses alone; invisible: no
	// Received header of its own; bad-header accept: pass on the corpus
	// message whose header does not end in an empty line.
	rc := fmt.Sprintf(`set no bouncemail
set invisible
poll %s protocol pop3 port %s timeout 120 bad-header accept
  user "%s" password "%s"
  %s no sslcertck sslfingerprint "%s"
  fetchall %s no rewrite no mimedecode
  bsmtp "%s"
`, host, port, alice, alicePW, tlsOpt, e.certFingerprint(), keepOpt, out)
	rcPath := filepath.Join(home, "fetchmailrc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fetchmail, "-f", rcPath, "--nosyslog", "--nodetach", "-v")
	cmd.Env = append(os.Environ(), "HOME="+home, "FETCHMAILHOME="+home)
	t0 := time.Now()
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetchmail: %v\n%s", err, tail(log))
	}
	t.Logf("fetchmail (keep=%v, implicit TLS=%v): %v", keep, implicitTLS, time.Since(t0).Round(time.Millisecond))
	if !implicitTLS && !bytes.Contains(log, []byte("POP3> STLS")) {
		t.Errorf("fetchmail did not use STLS:\n%s", tail(log))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := parseBSMTP(data)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func tail(b []byte) []byte {
	if len(b) > 4000 {
		return b[len(b)-4000:]
	}
	return b
}

type bsmtpMessage struct {
	from string // MAIL FROM address
	data []byte // the message, dot-stuffing undone
}

// parseBSMTP reads fetchmail's BSMTP output: per message MAIL FROM, RCPT
// TO lines, DATA, the dot-stuffed message and ".".
func parseBSMTP(b []byte) ([]bsmtpMessage, error) {
	var out []bsmtpMessage
	line := func() ([]byte, error) {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return nil, fmt.Errorf("bsmtp: unterminated line %q", b[:min(len(b), 80)])
		}
		l := b[:i+2]
		b = b[i+2:]
		return l, nil
	}
	for len(b) > 0 {
		l, err := line()
		if err != nil {
			return nil, err
		}
		from, ok := bytes.CutPrefix(l, []byte("MAIL FROM:<"))
		end := bytes.IndexByte(from, '>')
		if !ok || end < 0 {
			return nil, fmt.Errorf("bsmtp: want MAIL FROM, got %q", l)
		}
		m := bsmtpMessage{from: string(from[:end])}
		for {
			if l, err = line(); err != nil {
				return nil, err
			}
			if string(l) == "DATA\r\n" {
				break
			}
			if !bytes.HasPrefix(l, []byte("RCPT TO:")) {
				return nil, fmt.Errorf("bsmtp: want RCPT TO or DATA, got %q", l)
			}
		}
		for {
			if l, err = line(); err != nil {
				return nil, err
			}
			if string(l) == ".\r\n" {
				break
			}
			m.data = append(m.data, bytes.TrimPrefix(l, []byte("."))...)
		}
		out = append(out, m)
	}
	return out, nil
}

// fetchmailExpect is what fetchmail hands on for a stored message. It
// moves Return-Path: into MAIL FROM (fetchmail(1), INTERACTION WITH RFC
// 822: Return-Path: is the first source of the envelope sender, and an MTA
// receiving by SMTP adds it back at final delivery, RFC 5321 §4.4), and ends
// a header that lacks the empty line after it with one. Nothing else
// changes.
func fetchmailExpect(stored []byte) (data []byte, returnPath string) {
	head, body, found := bytes.Cut(stored, []byte("\r\n\r\n"))
	if bytes.HasPrefix(stored, []byte("\r\n")) {
		return stored, ""
	}
	var kept [][]byte
	skip := false
	for _, l := range bytes.Split(head, []byte("\r\n")) {
		if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
			if !skip {
				kept = append(kept, l)
			}
			continue
		}
		name, value, _ := bytes.Cut(l, []byte(":"))
		skip = strings.EqualFold(string(name), "Return-Path")
		if skip {
			if returnPath == "" {
				v := strings.TrimSpace(string(value))
				returnPath = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
			}
			continue
		}
		kept = append(kept, l)
	}
	data = bytes.Join(kept, []byte("\r\n"))
	if found {
		data = append(append(data, "\r\n\r\n"...), body...)
	} else {
		if !bytes.HasSuffix(data, []byte("\r\n")) {
			data = append(data, "\r\n"...) // as RETR sends it
		}
		data = append(data, "\r\n"...) // the empty line ending the header
	}
	return data, returnPath
}

// checkFetchmail compares, in maildrop order, what fetchmail passed on with
// what storage holds.
func checkFetchmail(t *testing.T, what string, got []bsmtpMessage, stored [][]byte) {
	t.Helper()
	if len(got) != len(stored) {
		t.Errorf("%s: %d messages, want %d", what, len(got), len(stored))
	}
	bad := 0
	for i := range min(len(got), len(stored)) {
		want, rp := fetchmailExpect(stored[i])
		if !bytes.Equal(got[i].data, want) || (rp != "" && got[i].from != rp) {
			if bad++; bad <= 3 {
				at := firstDiff(got[i].data, want)
				lo := max(0, at-60)
				t.Errorf("%s: message %d (MAIL FROM %q, Return-Path %q) differs at octet %d:\n got %q\nwant %q", what, i+1,
					got[i].from, rp, at, got[i].data[lo:min(len(got[i].data), at+60)], want[lo:min(len(want), at+60)])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d messages differ", what, bad, len(stored))
	}
}

// interpreter returns the interpreter named on the #! line of a script.
func interpreter(script string) (string, error) {
	b, err := os.ReadFile(script)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if f := strings.Fields(strings.TrimPrefix(line, "#!")); strings.HasPrefix(line, "#!") && len(f) > 0 {
		return f[0], nil
	}
	return "", fmt.Errorf("%s: no #! line", script)
}

// getmailExpect computes, with getmail's and smtplib's own code, what the
// LMTP server receives from getmail for each stored message. (It runs
// beside the first getmail run, so it reports errors instead of failing.)
func getmailExpect(getmail string, stored [][]byte) ([][]byte, error) {
	src, err := os.MkdirTemp("", "getmail-expect-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	in, dst := filepath.Join(src, "in"), filepath.Join(src, "out")
	for _, d := range []string{in, dst} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	for i, m := range stored {
		if err := os.WriteFile(filepath.Join(in, fmt.Sprintf("%05d", i)), m, 0o600); err != nil {
			return nil, err
		}
	}
	script, err := filepath.Abs("testdata/getmail_expect.py")
	if err != nil {
		return nil, err
	}
	py, err := interpreter(getmail)
	if err != nil {
		return nil, err
	}
	if out, err := exec.Command(py, script, in, dst, bob).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("getmail_expect.py: %v\n%s", err, tail(out))
	}
	var want [][]byte
	for i := range stored {
		b, err := os.ReadFile(filepath.Join(dst, fmt.Sprintf("%05d", i)))
		if err != nil {
			return nil, err
		}
		want = append(want, b)
	}
	return want, nil
}

// lmtpSink is a minimal LMTP server (RFC 2033) that keeps every message
// it gets, exactly: it accepts any sender and recipient (getmail may send
// MAIL FROM:<unknown>), and only undoes dot-stuffing.
type lmtpSink struct {
	mu   sync.Mutex
	msgs [][]byte
}

// startLMTP runs an LMTP sink on loopback until the test ends.
func startLMTP(t *testing.T) (*lmtpSink, string) {
	t.Helper()
	sink := &lmtpSink{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go sink.serve(c)
		}
	}()
	return sink, l.Addr().String()
}

func (s *lmtpSink) serve(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	reply := func(l string) { w.WriteString(l + "\r\n"); w.Flush() }
	reply("220 lmtp.example.test LMTP")
	rcpts := 0
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(l)), " ")
		switch verb {
		case "LHLO":
			reply("250-lmtp.example.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING")
		case "MAIL", "RSET":
			rcpts = 0
			reply("250 ok")
		case "RCPT":
			rcpts++
			reply("250 ok")
		case "DATA":
			reply("354 go ahead")
			var msg []byte
			for {
				l, err := r.ReadSlice('\n')
				if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
					return
				}
				if string(l) == ".\r\n" {
					break
				}
				if len(msg) == 0 || msg[len(msg)-1] == '\n' {
					l = bytes.TrimPrefix(l, []byte("."))
				}
				msg = append(msg, l...)
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, msg)
			s.mu.Unlock()
			for range rcpts { // RFC 2033 §4.2: one reply per recipient
				reply("250 delivered")
			}
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("500 unknown")
		}
	}
}

func (s *lmtpSink) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs
	s.msgs = nil
	return m
}

// runGetmail retrieves bob's maildrop once and hands every message to an
// LMTP server (getmail's MDA_lmtp destination). getmail's other
// destinations fork a process per message, which costs ~18 ms each and, in
// getmail6, can lose the child's exit (getmail6 issues #52 and #226: a 180 s
// wait, then an abort).
func (e *env) runGetmail(t *testing.T, getmail string, keep, implicitTLS bool) [][]byte {
	t.Helper()
	sink, lmtpAddr := startLMTP(t)
	lhost, lport, _ := strings.Cut(lmtpAddr, ":")
	addr, typ, extra := e.plainAddr(), "SimplePOP3Retriever", ""
	if implicitTLS {
		// Pinned: getmail compares the SHA-256 of the certificate.
		sum := sha256.Sum256(e.srv.TLS.Certificates[0].Certificate[0])
		addr, typ = e.tlsAddr(), "SimplePOP3SSLRetriever"
		extra = fmt.Sprintf("ssl_fingerprints = (\"%x\",)\n", sum)
	}
	host, port, _ := strings.Cut(addr, ":")
	rc := fmt.Sprintf(`[retriever]
type = %s
server = %s
port = %s
username = %s
password = %s
%s
[destination]
type = MDA_lmtp
host = %s
port = %s
override = %s

[options]
verbose = 0
read_all = true
delete = %v
message_log_syslog = false
`, typ, host, port, bob, bobPW, extra, lhost, lport, bob, !keep)
	home := t.TempDir()
	rcPath := filepath.Join(home, "getmailrc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(getmail, "--rcfile", rcPath, "--getmaildir", home)
	cmd.Env = append(os.Environ(), "HOME="+home)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("getmail: %v\n%s", err, tail(out))
	}
	t.Logf("getmail (keep=%v, implicit TLS=%v): %v", keep, implicitTLS, time.Since(t0).Round(time.Millisecond))
	return sink.take()
}

// TestClients downloads the corpus with fetchmail (alice's copy) and with
// getmail (bob's copy), each twice: keeping the messages, then deleting
// them. Every message arrives octet for octet as storage holds it, modulo
// what each client documentably does to it; then the maildrop is empty.
func TestClients(t *testing.T) {
	fetchmail := requireTool(t, "fetchmail")
	getmail := requireTool(t, "getmail")
	e := start(t, nil)
	stored := e.fillCorpus(t, corpusCount(), e.aliceID, e.bobID)

	// fetchmail: keep over STLS, then delete over implicit TLS.
	t.Run("fetchmail", func(t *testing.T) {
		t.Parallel()
		checkFetchmail(t, "fetchmail keep", e.runFetchmail(t, fetchmail, true, false), stored)
		if n := len(e.uidsOf(t, e.aliceID)); n != len(stored) {
			t.Fatalf("after fetchmail keep: %d messages left of %d", n, len(stored))
		}
		checkFetchmail(t, "fetchmail delete", e.runFetchmail(t, fetchmail, false, true), stored)
		if n := len(e.uidsOf(t, e.aliceID)); n != 0 {
			t.Fatalf("after fetchmail without keep: %d messages left", n)
		}
	})
	// getmail: keep over plaintext loopback, then delete over implicit TLS.
	t.Run("getmail", func(t *testing.T) {
		t.Parallel()
		type result struct {
			want [][]byte
			err  error
		}
		expect := make(chan result, 1)
		go func() {
			w, err := getmailExpect(getmail, stored)
			expect <- result{w, err}
		}()
		keep := e.runGetmail(t, getmail, true, false)
		r := <-expect
		if r.err != nil {
			t.Fatal(r.err)
		}
		want := r.want
		sameMessages(t, "getmail keep", keep, want)
		if n := len(e.uidsOf(t, e.bobID)); n != len(stored) {
			t.Fatalf("after getmail keep: %d messages left of %d", n, len(stored))
		}
		sameMessages(t, "getmail delete", e.runGetmail(t, getmail, false, true), want)
		if n := len(e.uidsOf(t, e.bobID)); n != 0 {
			t.Fatalf("after getmail with delete: %d messages left", n)
		}
	})
}
