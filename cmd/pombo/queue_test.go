package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"pombo/dkim"
	"pombo/storage"
)

// withStore runs fn on the data directory's store, closed afterwards so
// that the command under test has the database to itself.
func withStore(t *testing.T, dataDir string, fn func(st *storage.Store)) {
	t.Helper()
	st, err := storage.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fn(st)
}

func TestQueueCommands(t *testing.T) {
	cfg, data := tempConfig(t)
	ctx := context.Background()
	// An empty queue lists as nothing.
	r := mustOK(t, pombo(t, "", "--config", cfg, "queue", "list", "--json"))
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("empty queue --json: %q", r.stdout)
	}
	var first, second int64
	withStore(t, data, func(st *storage.Store) {
		var err error
		first, err = st.Enqueue(ctx, "alice@example.test", 0, []string{"bob@remote.test", "carol@remote.test"},
			strings.NewReader("Subject: first one\r\nMessage-ID: <1@example.test>\r\n\r\nhi\r\n"), storage.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		second, err = st.Enqueue(ctx, "", 0, []string{"dave@remote.test"}, strings.NewReader("Subject: a bounce\r\n\r\nsorry\r\n"), storage.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// bob was tried once and deferred for an hour.
		m, _ := st.QueueItem(ctx, first)
		bob := m.Recipients[0].ID
		st.MarkSending(ctx, []int64{bob})
		st.MarkRetry(ctx, []int64{bob}, time.Now().Add(time.Hour), storage.Attempt{RemoteMTA: "mx.remote.test", StatusCode: "4.2.2", Reply: "452 4.2.2 mailbox full"})
	})

	r = mustOK(t, pombo(t, "", "--config", cfg, "queue", "list"))
	for _, re := range []string{
		`(?m)^ID\s+QUEUED\s+SIZE\s+FROM\s+TO\s+STATUS\s+ATTEMPTS\s+NEXT\s+LAST ERROR$`,
		`(?m)^1\s+\S+ \S+\s+\d+ B\s+alice@example.test\s+bob@remote.test\s+pending\s+1\s+\S+ \S+\s+452 4.2.2 mailbox full$`,
		`(?m)^\s+carol@remote.test\s+pending\s+0\s`,
		`(?m)^2\s+.*<>\s+dave@remote.test\s+pending\s+0\s`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("queue list does not match %s:\n%s", re, r.stdout)
		}
	}
	var list []storage.QueuedMessage
	r = mustOK(t, pombo(t, "", "--config", cfg, "queue", "list", "--json"))
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 || len(list[0].Recipients) != 2 || list[0].Subject != "first one" {
		t.Fatalf("queue list --json: %v\n%s", err, r.stdout)
	}

	r = mustOK(t, pombo(t, "", "--config", cfg, "queue", "show", "1"))
	for _, want := range []string{"subject:     first one", "message-id:  1@example.test", "recipient:   bob@remote.test", "host:        mx.remote.test", "last result: 452 4.2.2 mailbox full"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("queue show lacks %q:\n%s", want, r.stdout)
		}
	}

	// retry makes bob due now.
	r = mustOK(t, pombo(t, "", "--config", cfg, "queue", "retry", "1"))
	if !strings.HasPrefix(r.stdout, "2 recipients of message 1 due now") {
		t.Errorf("queue retry: %q", r.stdout)
	}
	var m storage.QueuedMessage
	r = mustOK(t, pombo(t, "", "--config", cfg, "queue", "show", "--json", "1"))
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || time.Until(m.Recipients[0].NextAttempt) > time.Minute {
		t.Fatalf("after retry: %v %+v", err, m.Recipients)
	}
	r = mustOK(t, pombo(t, "", "--config", cfg, "queue", "retry", "--all"))
	if !strings.HasPrefix(r.stdout, "3 recipients of queued messages due now") {
		t.Errorf("queue retry --all: %q", r.stdout)
	}

	mustOK(t, pombo(t, "", "--config", cfg, "queue", "del", "2"))
	r = mustOK(t, pombo(t, "", "--config", cfg, "queue", "list", "--json"))
	list = nil
	json.Unmarshal([]byte(r.stdout), &list)
	if len(list) != 1 || list[0].ID != first {
		t.Fatalf("after del: %s", r.stdout)
	}
	withStore(t, data, func(st *storage.Store) {
		if n, _, _ := st.BlobCount(ctx); n != 1 {
			t.Errorf("%d blobs after deleting one of two messages", n)
		}
	})

	// Bad input: one clear line each, nothing changed.
	mustFail(t, pombo(t, "", "--config", cfg, "queue", "show", "abc"), "positive number")
	mustFail(t, pombo(t, "", "--config", cfg, "queue", "show", "99"), "not found")
	mustFail(t, pombo(t, "", "--config", cfg, "queue", "del", "99"), "not found")
	mustFail(t, pombo(t, "", "--config", cfg, "queue", "del", "0"), "positive number")
	mustFail(t, pombo(t, "", "--config", cfg, "queue", "retry"), "usage")
	mustFail(t, pombo(t, "", "--config", cfg, "queue", "retry", "1", "--all"), "not both")
	mustFail(t, pombo(t, "", "--config", cfg, "queue", "retry", "99"), "not found")
	r = mustOK(t, pombo(t, "", "--config", cfg, "queue", "list", "--json"))
	list = nil
	json.Unmarshal([]byte(r.stdout), &list)
	if len(list) != 1 || second == 0 {
		t.Fatalf("bad input changed the queue: %s", r.stdout)
	}
}

func TestDKIMKeygen(t *testing.T) {
	cfg, data := tempConfig(t)
	mustFail(t, pombo(t, "", "--config", cfg, "dkim", "keygen", "example.test"), "pombo domain add example.test")
	mustOK(t, pombo(t, "", "--config", cfg, "domain", "add", "example.test"))
	mustFail(t, pombo(t, "", "--config", cfg, "dkim", "keygen", "example.test", "--selector", "bad_selector!"), "not valid")
	mustFail(t, pombo(t, "", "--config", cfg, "dkim", "keygen"), "usage")

	r := mustOK(t, pombo(t, "", "--config", cfg, "dkim", "keygen", "Example.TEST", "--selector", "s2026"))
	name := regexp.MustCompile(`(?m)^name:  (\S+)$`).FindStringSubmatch(r.stdout)
	value := regexp.MustCompile(`(?m)^value: (v=DKIM1; k=rsa; p=(\S+))$`).FindStringSubmatch(r.stdout)
	if name == nil || name[1] != "s2026._domainkey.example.test" || value == nil {
		t.Fatalf("keygen printed:\n%s", r.stdout)
	}
	zone := regexp.MustCompile(`(?m)^s2026\._domainkey\.example\.test\. IN TXT \((( "[^"]*")+) \)$`).FindStringSubmatch(r.stdout)
	if zone == nil {
		t.Fatalf("no zone-file line:\n%s", r.stdout)
	}
	var joined string
	for _, s := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(zone[1], -1) {
		if len(s[1]) > 255 {
			t.Errorf("TXT string of %d octets", len(s[1]))
		}
		joined += s[1]
	}
	if joined != value[1] {
		t.Errorf("zone line and value differ")
	}

	// The published key is the public half of the stored one.
	der, err := base64.StdEncoding.DecodeString(value[2])
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	withStore(t, data, func(st *storage.Store) {
		k, err := st.DKIMKeyOf(context.Background(), "example.test")
		if err != nil {
			t.Fatal(err)
		}
		priv, err := dkim.ParseKey(k.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		if k.Selector != "s2026" || !priv.Public().(*rsa.PublicKey).Equal(pub) || pub.(*rsa.PublicKey).N.BitLen() != 2048 {
			t.Fatal("stored key does not match the printed record")
		}
	})

	mustFail(t, pombo(t, "", "--config", cfg, "dkim", "keygen", "example.test"), "already has a DKIM key (selector s2026)")
	r2 := mustOK(t, pombo(t, "", "--config", cfg, "dkim", "show", "example.test"))
	if !strings.Contains(r2.stdout, value[0]) {
		t.Errorf("dkim show differs from keygen:\n%s", r2.stdout)
	}
	mustOK(t, pombo(t, "", "--config", cfg, "domain", "add", "other.test"))
	mustFail(t, pombo(t, "", "--config", cfg, "dkim", "show", "other.test"), "pombo dkim keygen other.test")
}
