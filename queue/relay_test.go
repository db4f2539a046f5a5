package queue_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"pombo/queue"
	"pombo/storage"
)

func relayEnv(t *testing.T, tlsMode string, withTLS bool, implicit bool) (*env, *remote, *storage.Store) {
	t.Helper()
	cert, pool := selfSigned(t, nil, []net.IP{net.ParseIP("127.0.0.1")})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}}
	r := &remote{user: "relayuser", pass: "relay-secret"}
	if implicit {
		startRemote(t, tls.NewListener(l, tc), r, nil)
	} else if withTLS {
		startRemote(t, l, r, tc)
	} else {
		startRemote(t, l, r, nil)
	}
	e := newEnv(t, 1) // MX port 1: nothing may go by MX
	e.opts.Relay = queue.Relay{
		Host:     "127.0.0.1",
		Port:     l.Addr().(*net.TCPAddr).Port,
		Username: "relayuser",
		Password: "relay-secret",
		TLS:      tlsMode,
	}
	e.opts.RootCAs = pool
	return e, r, e.st
}

func TestRelaySTARTTLSWithAuth(t *testing.T) {
	t.Parallel()
	e, r, _ := relayEnv(t, queue.RelayStartTLS, true, false)
	e.start()
	msg, _ := testMessage("via relay")
	// Domains without any DNS record: the relay does the routing.
	e.enqueue("alice@example.org", []string{"bob@nowhere.test", "carol@elsewhere.test"}, msg)
	e.waitEmpty(10 * time.Second)
	got := r.messages()
	if len(got) != 1 {
		t.Fatalf("relay got %d messages", len(got))
	}
	if got[0].user != "relayuser" || !got[0].tls || strings.Join(got[0].rcpts, ",") != "bob@nowhere.test,carol@elsewhere.test" {
		t.Fatalf("relay session: user %q tls %v rcpts %v", got[0].user, got[0].tls, got[0].rcpts)
	}
}

func TestRelayImplicitTLS(t *testing.T) {
	t.Parallel()
	e, r, _ := relayEnv(t, queue.RelayImplicit, false, true)
	e.start()
	msg, _ := testMessage("via relay")
	e.enqueue("alice@example.org", []string{"bob@nowhere.test"}, msg)
	e.waitEmpty(10 * time.Second)
	if got := r.messages(); len(got) != 1 || got[0].user != "relayuser" || !got[0].tls {
		t.Fatalf("relay got %+v", got)
	}
}

func TestRelayPlaintextOnLoopback(t *testing.T) {
	t.Parallel()
	e, r, _ := relayEnv(t, queue.RelayNone, false, false)
	e.start()
	msg, _ := testMessage("via relay")
	e.enqueue("alice@example.org", []string{"bob@nowhere.test"}, msg)
	e.waitEmpty(10 * time.Second)
	if got := r.messages(); len(got) != 1 || got[0].user != "relayuser" || got[0].tls {
		t.Fatalf("relay got %+v", got)
	}
}

// The password never goes out when TLS cannot be had: the mail waits.
func TestRelayNoPasswordWithoutTLS(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		tls     bool
		badCert bool
		want    string
	}{
		{"STARTTLS not offered", false, false, "does not offer STARTTLS"},
		{"untrusted certificate", true, true, "certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, r, st := relayEnv(t, queue.RelayStartTLS, c.tls, false)
			if c.badCert {
				e.opts.RootCAs = nil // the system roots do not know the test CA
			}
			// Only the first attempt is checked; keep a retry from
			// claiming the recipient again before the poll sees it.
			e.opts.RetryInitial, e.opts.RetryMax = time.Hour, time.Hour
			e.start()
			msg, _ := testMessage("via relay")
			qid := e.enqueue("alice@example.org", []string{"bob@nowhere.test"}, msg)
			waitFor(t, 10*time.Second, "the failed attempt", func() bool {
				it, err := st.QueueItem(context.Background(), qid)
				if err != nil {
					t.Fatal("message left the queue")
				}
				rc := it.Recipients[0]
				if rc.Attempts == 1 {
					if rc.Status != storage.QueuePending || !strings.Contains(rc.LastError, c.want) {
						t.Errorf("after the attempt: %+v", rc)
					}
					return true
				}
				return false
			})
			if len(r.messages()) != 0 {
				t.Fatal("the relay got the message")
			}
		})
	}
}

func TestRelayWrongPasswordDefers(t *testing.T) {
	t.Parallel()
	e, r, st := relayEnv(t, queue.RelayStartTLS, true, false)
	r.pass = "another"
	e.opts.RetryInitial, e.opts.RetryMax = time.Hour, time.Hour // see above
	e.start()
	msg, _ := testMessage("via relay")
	qid := e.enqueue("alice@example.org", []string{"bob@nowhere.test"}, msg)
	waitFor(t, 10*time.Second, "the failed attempt", func() bool {
		it, err := st.QueueItem(context.Background(), qid)
		if err != nil {
			t.Fatal("message left the queue: a relay login failure must not bounce")
		}
		rc := it.Recipients[0]
		if rc.Attempts == 1 {
			if rc.Status != storage.QueuePending || !strings.Contains(rc.LastError, "535") {
				t.Errorf("after a refused login: %+v", rc)
			}
			return true
		}
		return false
	})
}
