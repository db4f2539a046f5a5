package autoconfig

import (
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
)

func serve(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.NewHTTPServer()
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return "http://" + l.Addr().String()
}

func TestThunderbirdAutoconfig(t *testing.T) {
	base := serve(t, &Server{Hostname: "mail.example.test", IMAPPort: 993, POP3Port: 995, SMTPPort: 465})
	resp, err := http.Get(base + "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice@Example.TEST")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var c clientConfigXML
	if err := xml.Unmarshal(body, &c); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	p := c.Provider
	if p.Domain != "example.test" || len(p.Incoming) != 2 || len(p.Outgoing) != 1 {
		t.Fatalf("provider = %+v", p)
	}
	if in := p.Incoming[0]; in.Type != "imap" || in.Port != 993 || in.SocketType != "SSL" || in.Hostname != "mail.example.test" || in.Username != "%EMAILADDRESS%" {
		t.Fatalf("imap = %+v", in)
	}
	if out := p.Outgoing[0]; out.Type != "smtp" || out.Port != 465 {
		t.Fatalf("smtp = %+v", out)
	}
}

func TestHealthAndBadRequests(t *testing.T) {
	healthy := error(nil)
	base := serve(t, &Server{Hostname: "h", IMAPPort: 993, Healthy: func() error { return healthy }})
	get := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/healthz"); c != 200 {
		t.Fatalf("healthz = %d", c)
	}
	healthy = errors.New("down")
	if c := get("/healthz"); c != 503 {
		t.Fatalf("unhealthy healthz = %d", c)
	}
	if c := get("/nothing"); c != 404 {
		t.Fatalf("unknown path = %d", c)
	}
	// A hostile address is ignored, not reflected: the hostname stands in.
	resp, err := http.Get(base + "/mail/config-v1.1.xml?emailaddress=%3Cscript%3E@%3Cx%3E%22")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var c clientConfigXML
	if err := xml.Unmarshal(b, &c); err != nil {
		t.Fatalf("escaped output does not parse: %v", err)
	}
	if c.Provider.Domain != "h" {
		t.Fatalf("domain = %q", c.Provider.Domain)
	}
}

func TestPortOf(t *testing.T) {
	if p := PortOf([]string{"bad", "127.0.0.1:2993"}); p != 2993 {
		t.Fatalf("PortOf = %d", p)
	}
	if p := PortOf(nil); p != 0 {
		t.Fatalf("PortOf(nil) = %d", p)
	}
}
