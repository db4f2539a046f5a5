package queue_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
	msgdkim "github.com/emersion/go-msgauth/dkim"

	"pombo/dkim"
)

func TestDKIMSignedAtEnqueue(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	r := startRemote(t, ls[0], &remote{}, nil)
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	ctx := context.Background()
	pemKey, err := dkim.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.AddDKIMKey(ctx, "example.org", "sel1", pemKey); err != nil {
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
	e.dns.AddTXT("sel1._domainkey.example.org", txt)
	e.start()

	msg, _ := testMessage("signed")
	e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
	e.waitEmpty(10 * time.Second)
	got := r.messages()
	if len(got) != 1 {
		t.Fatalf("remote got %d messages", len(got))
	}
	data := got[0].data
	if !bytes.HasPrefix(data, []byte("DKIM-Signature: ")) || !bytes.HasSuffix(data, msg) {
		t.Fatalf("sent message is not signature + original:\n%s", data)
	}

	res := net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, e.dns.Addr)
	}}
	verify := func(b []byte) error {
		vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(b), &msgdkim.VerifyOptions{
			LookupTXT: func(name string) ([]string, error) { return res.LookupTXT(context.Background(), name) },
		})
		if err != nil {
			return err
		}
		if len(vs) != 1 {
			t.Fatalf("%d signatures", len(vs))
		}
		if vs[0].Err == nil && vs[0].Domain != "example.org" {
			t.Fatalf("signed for %q", vs[0].Domain)
		}
		return vs[0].Err
	}
	if err := verify(data); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	// Hostile: a changed subject, an added From: and a changed body each
	// break it.
	for name, bad := range map[string][]byte{
		"subject":    bytes.Replace(data, []byte("Subject: signed"), []byte("Subject: signeD"), 1),
		"added From": bytes.Replace(data, []byte("From: Alice"), []byte("From: Mallory <m@evil.test>\r\nFrom: Alice"), 1),
		"body":       bytes.Replace(data, []byte("Hello Bob"), []byte("Hello Eve"), 1),
	} {
		if err := verify(bad); err == nil {
			t.Errorf("signature still verifies after a changed %s", name)
		}
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	sigField := strings.Join(strings.Fields(h.Get("DKIM-Signature")), "")
	for _, tag := range []string{"d=example.org;", "s=sel1;", "c=relaxed/relaxed;", "a=rsa-sha256;"} {
		if !strings.Contains(sigField, tag) {
			t.Errorf("signature lacks %s: %s", tag, sigField)
		}
	}
}

func TestNoDKIMKeyNoSignature(t *testing.T) {
	t.Parallel()
	port, ls := listenSamePort(t, "127.0.0.2")
	r := startRemote(t, ls[0], &remote{}, nil)
	e := newEnv(t, port)
	e.dns.AddMX("remote.test", 10, "mx.remote.test")
	e.dns.AddIP("mx.remote.test", "127.0.0.2")
	// A key for another domain is not used for example.org.
	e.st.AddDomain(context.Background(), "other.org")
	pemKey, _ := dkim.GenerateKey()
	if err := e.st.AddDKIMKey(context.Background(), "other.org", "s", pemKey); err != nil {
		t.Fatal(err)
	}
	e.start()
	msg, _ := testMessage("unsigned")
	e.enqueue("alice@example.org", []string{"bob@remote.test"}, msg)
	e.waitEmpty(10 * time.Second)
	if got := r.messages(); len(got) != 1 || !bytes.Equal(got[0].data, msg) {
		t.Fatalf("remote got %+v", got)
	}
}
