package queue_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"pombo/queue"
	"pombo/storage"
	"pombo/testutil"
)

// The server builds the queue from its configuration ([dns] resolver,
// hostname) and runs it: a message to a domain with a null MX comes back to
// the sender as a DSN.
func TestServerRunsQueue(t *testing.T) {
	t.Parallel()
	dns := testutil.StartDNS(t)
	dns.AddMX("nomail.test", 0, ".")
	cfg := testutil.Config(t)
	cfg.DNS.Resolver = dns.Addr
	srv := testutil.StartServer(t, cfg)
	uid := testutil.AddUser(t, srv, "alice@example.org", "pw-alice-1")
	if srv.Queue == nil {
		t.Fatal("server has no queue")
	}
	msg, _ := testMessage("wired")
	ctx := context.Background()
	if _, err := srv.Queue.Enqueue(ctx, "alice@example.org", uid, []string{"bob@nomail.test"}, bytes.NewReader(msg), queue.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	mb, err := srv.Store.MailboxByName(ctx, uid, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the DSN", func() bool {
		mb, _ = srv.Store.MailboxByID(ctx, mb.ID)
		return mb.Messages == 1
	})
	var raw []byte
	srv.Store.Messages(ctx, mb.ID, nil, func(m *storage.Message) error {
		r, err := srv.Store.OpenMessage(ctx, m.ID)
		if err != nil {
			return err
		}
		raw, err = io.ReadAll(r)
		return err
	})
	d := parseDSN(t, raw)
	if d.perMessage.Get("Reporting-MTA") != "dns; "+cfg.Hostname {
		t.Errorf("Reporting-MTA %q", d.perMessage.Get("Reporting-MTA"))
	}
	if s := d.rcpt(t, "bob@nomail.test").Get("Status"); s != "5.1.10" {
		t.Errorf("Status %q", s)
	}
}
