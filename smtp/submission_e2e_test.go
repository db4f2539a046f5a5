package smtp_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"pombo/config"
	"pombo/dkim"
	"pombo/server"
	"pombo/storage"
	"pombo/testutil"
)

// mxB is where server B listens: the queue always connects to port 25.
const mxB = "127.0.0.3"

// twoServers starts pombo A (a.test, alice, a DKIM key published in the
// test DNS) and, unless bDown, pombo B (b.test, bob) listening on
// 127.0.0.3:25, the MX of b.test.
type twoServers struct {
	dns  *testutil.DNS
	a    *server.Server
	subA string
}

func startA(t *testing.T) *twoServers {
	t.Helper()
	if l, err := net.Listen("tcp", mxB+":25"); err != nil {
		// MX delivery always goes to port 25; CI runs as root and must
		// run this test, never skip it.
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot bind %s:25 for the MX of b.test: %v", mxB, err)
		}
		t.Skipf("cannot bind %s:25 for the MX of b.test: %v", mxB, err)
	} else {
		l.Close()
	}
	d := testutil.StartDNS(t)
	d.AddMX("b.test", 10, "mx.b.test")
	d.AddIP("mx.b.test", mxB)
	cfgA := testutil.Config(t)
	cfgA.Hostname = "mx.a.test"
	cfgA.DNS.Resolver = d.Addr
	// Retries every second at most, whatever the number of attempts.
	cfgA.Queue.RetryInitial = config.Duration(time.Second)
	cfgA.Queue.RetryMax = config.Duration(time.Second)
	a := testutil.StartServer(t, cfgA)
	testutil.AddUser(t, a, "alice@a.test", "alice-password")

	pemKey, err := dkim.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store.AddDKIMKey(context.Background(), "a.test", dkim.DefaultSelector, pemKey); err != nil {
		t.Fatal(err)
	}
	key, err := dkim.ParseKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := dkim.TXTRecord(key)
	if err != nil {
		t.Fatal(err)
	}
	d.AddTXT(dkim.RecordName("a.test", dkim.DefaultSelector), txt)
	return &twoServers{dns: d, a: a, subA: a.Addr("submission.listen")}
}

func startB(t *testing.T) (*server.Server, int64) {
	t.Helper()
	cfgB := testutil.Config(t)
	cfgB.Hostname = "mx.b.test"
	cfgB.SMTP.Listen = []string{mxB + ":25"}
	// bob exists before B listens: A's queue may knock at any moment, and
	// a B without b.test would bounce the message for good.
	st, err := storage.Open(cfgB.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.AddDomain(ctx, "b.test"); err != nil {
		t.Fatal(err)
	}
	u, err := st.AddUser(ctx, "bob@b.test", "unused-hash", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return testutil.StartServer(t, cfgB), u.ID
}

// submitAlice sends one message from alice@a.test to bob@b.test through A's
// submission port, over STARTTLS.
func (ts *twoServers) submitAlice(t *testing.T, subject string) {
	t.Helper()
	r := dialRaw(t, ts.subA)
	r.ehlo()
	r.startTLS()
	r.ehlo()
	r.send("AUTH PLAIN " + plain("", "alice@a.test", "alice-password") + "\r\n")
	r.expect("235 ")
	r.send("MAIL FROM:<alice@a.test>\r\nRCPT TO:<bob@b.test>\r\nDATA\r\n")
	r.expect("250 ")
	r.expect("250 ")
	r.expect("354 ")
	r.send("From: Alice <alice@a.test>\r\nTo: <bob@b.test>\r\nSubject: " + subject + "\r\n\r\nHello Bob,\r\nsigned and sealed.\r\n.\r\n")
	r.expect("250 ")
	r.send("QUIT\r\n")
}

// waitInbox waits (at most 30 s) for n messages in bob's INBOX on b.
func waitInbox(t *testing.T, b *server.Server, bob int64, n int) []stored {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := mailboxOf(t, b.Store, bob, "INBOX")
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verifyDKIM checks the DKIM signature of data against the test DNS.
func (ts *twoServers) verifyDKIM(t *testing.T, data []byte) {
	t.Helper()
	vs, err := ts.dkimResults(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "a.test" {
		t.Fatalf("DKIM verifications: %+v\n%s", vs, data)
	}
}

// dkimResults verifies data with the keys of the test DNS.
func (ts *twoServers) dkimResults(data []byte) ([]*msgdkim.Verification, error) {
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, ts.dns.Addr)
	}}
	return msgdkim.VerifyWithOptions(bytes.NewReader(data), &msgdkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) { return res.LookupTXT(context.Background(), domain) },
	})
}

// TestSubmissionEndToEnd: alice@a.test submits to A, A's queue delivers to
// the MX of b.test (B), bob reads it there and its DKIM signature verifies;
// the same message with its body changed on the way does not.
func TestSubmissionEndToEnd(t *testing.T) {
	ts := startA(t)
	b, bob := startB(t)
	ts.submitAlice(t, "end to end")
	got := waitInbox(t, b, bob, 1)
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	data := got[0].data
	for _, want := range []string{"DKIM-Signature: ", "Subject: end to end\r\n", "\r\nMessage-ID: <", "by mx.a.test (pombo) with ESMTPSA id ", "by mx.b.test (pombo) with ESMTPS id "} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("message lacks %q:\n%s", want, data)
		}
	}
	ts.verifyDKIM(t, data)

	tampered := bytes.Replace(data, []byte("signed and sealed"), []byte("signed and Sealed"), 1)
	vs, err := ts.dkimResults(tampered)
	if err != nil || len(vs) != 1 || vs[0].Err == nil || !strings.Contains(vs[0].Err.Error(), "body hash") {
		t.Fatalf("tampered message: %+v, %v", vs, err)
	}
	if q, _ := ts.a.Store.QueueList(context.Background()); len(q) != 0 {
		t.Fatalf("A's queue still holds %+v", q)
	}
}

// TestSubmissionRemoteDown: B is down when alice submits: the message stays
// in A's queue, and reaches bob once B is up.
func TestSubmissionRemoteDown(t *testing.T) {
	ts := startA(t)
	ts.submitAlice(t, "while you were away")
	ctx := context.Background()
	q, err := ts.a.Store.QueueList(ctx)
	if err != nil || len(q) != 1 || q[0].Recipients[0].Address != "bob@b.test" {
		t.Fatalf("queue: %+v, %v", q, err)
	}
	// Wait for a failed attempt, so that the retry is what delivers it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		q, err := ts.a.Store.QueueList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(q) == 1 && q[0].Recipients[0].Attempts > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery attempt: %+v", q)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, bob := startB(t)
	got := waitInbox(t, b, bob, 1)
	if len(got) != 1 || !strings.Contains(string(got[0].data), "Subject: while you were away\r\n") {
		q, _ := ts.a.Store.QueueList(ctx)
		for _, m := range q {
			t.Logf("A's queue: %+v", m.Recipients)
		}
		t.Fatalf("bob: %d messages", len(got))
	}
	ts.verifyDKIM(t, got[0].data)
}
