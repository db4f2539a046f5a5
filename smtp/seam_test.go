package smtp

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"pombo/storage"
)

// authPolicy is what a submission policy looks like from the core: the
// inbound rules plus AUTH through the sessionWrapper seam.
type authPolicy struct{ inbound }

type authSession struct{ *session }

func (authPolicy) wrap(se *session) gosmtp.Session { return authSession{se} }

func (a authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (a authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "alice@example.test" || pass != "secret" {
			return gosmtp.ErrAuthFailed
		}
		a.authUser = user
		return nil
	}), nil
}

// TestPolicySeam: a policy can add AUTH, and the shared DATA path then
// labels the message ESMTPA.
func TestPolicySeam(t *testing.T) {
	st, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	st.AddDomain(ctx, "example.test")
	u, err := st.AddUser(ctx, "alice@example.test", "hash", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer("submission", Options{Hostname: "mx.example.test", Store: st,
		Limits: Limits{MaxMessageSize: 1 << 20}}, authPolicy{})
	srv.srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	var got strings.Builder
	say := func(s string) {
		io.WriteString(c, s)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("after %q: %v", s, err)
			}
			got.WriteString(line)
			if line[3] != '-' {
				return
			}
		}
	}
	say("")
	say("EHLO client.example\r\n")
	// "\x00alice@example.test\x00secret"
	say("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n")
	say("MAIL FROM:<alice@example.test>\r\n")
	say("RCPT TO:<alice@example.test>\r\n")
	say("DATA\r\n")
	say("Subject: seam\r\n\r\nhi\r\n.\r\n")
	if !strings.Contains(got.String(), "250-AUTH PLAIN") || !strings.Contains(got.String(), "235 ") ||
		!strings.Contains(got.String(), "250 2.0.0 Ok: stored as") {
		t.Fatalf("transcript:\n%s", got.String())
	}
	mb, err := st.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	st.Messages(ctx, mb.ID, nil, func(m *storage.Message) error {
		r, err := st.OpenMessage(ctx, m.ID)
		if err != nil {
			return err
		}
		data, err = io.ReadAll(r)
		return err
	})
	if !strings.Contains(string(data), " with ESMTPA id ") {
		t.Fatalf("message:\n%s", data)
	}
}
