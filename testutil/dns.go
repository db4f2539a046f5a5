package testutil

import (
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/miekg/dns"
)

// DNS is a DNS server for tests on 127.0.0.1, UDP and TCP on one port. It
// answers from records set by the test, as a recursive resolver would:
// CNAME chains are followed (a loop or a chain longer than 8 gives
// SERVFAIL, as Unbound and BIND do), an unknown name is NXDOMAIN, a known
// name without records of the type asked is an empty NOERROR answer, and a
// UDP answer too big for the client's buffer is truncated (the client then
// asks again over TCP).
type DNS struct {
	// Addr is "127.0.0.1:port", for config.DNS.Resolver.
	Addr string

	mu      sync.Mutex
	records map[string][]dns.RR // by lower-case FQDN
	cnames  map[string]string
	rcodes  map[string]int
	queries map[string]int // "name TYPE" → count
	servers []*dns.Server
}

// StartDNS starts a DNS server that stops when the test ends.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	d := &DNS{
		records: map[string][]dns.RR{},
		cnames:  map[string]string{},
		rcodes:  map[string]int{},
		queries: map[string]int{},
	}
	var pc net.PacketConn
	var l net.Listener
	for try := 0; ; try++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if try == 20 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("dns: listen tcp: %v", err)
		}
	}
	d.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: d}
	tcp := &dns.Server{Listener: l, Handler: d}
	d.servers = []*dns.Server{udp, tcp}
	for _, s := range d.servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
	}
	t.Cleanup(func() {
		for _, s := range d.servers {
			s.Shutdown()
		}
	})
	return d
}

func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }

func (d *DNS) add(rr dns.RR) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := rr.Header().Name
	d.records[n] = append(d.records[n], rr)
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: 60}
}

// AddMX adds an MX record; host "." makes a null MX (RFC 7505).
func (d *DNS) AddMX(name string, pref uint16, host string) {
	d.add(&dns.MX{Hdr: hdr(name, dns.TypeMX), Preference: pref, Mx: fqdn(host)})
}

// AddIP adds A or AAAA records, by the family of each address.
func (d *DNS) AddIP(name string, ips ...string) {
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			panic("testutil.DNS: bad IP " + s)
		}
		if v4 := ip.To4(); v4 != nil {
			d.add(&dns.A{Hdr: hdr(name, dns.TypeA), A: v4})
		} else {
			d.add(&dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: ip})
		}
	}
}

// AddTXT adds a TXT record, split into strings of 255 octets.
func (d *DNS) AddTXT(name, txt string) {
	var parts []string
	for len(txt) > 255 {
		parts = append(parts, txt[:255])
		txt = txt[255:]
	}
	parts = append(parts, txt)
	d.add(&dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: parts})
}

// AddCNAME makes name an alias of target.
func (d *DNS) AddCNAME(name, target string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cnames[fqdn(name)] = fqdn(target)
}

// SetRcode makes every question about name answered with rcode, e.g.
// dns.RcodeServerFailure.
func (d *DNS) SetRcode(name string, rcode int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rcodes[fqdn(name)] = rcode
}

// Queries returns how many questions of type qtype (e.g. dns.TypeMX) about
// name the server was asked.
func (d *DNS) Queries(name string, qtype uint16) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries[fqdn(name)+" "+dns.TypeToString[qtype]]
}

// ServeDNS implements dns.Handler.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	if len(req.Question) == 1 {
		d.answer(m, req.Question[0])
	} else {
		m.Rcode = dns.RcodeFormatError
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

func (d *DNS) answer(m *dns.Msg, q dns.Question) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := strings.ToLower(q.Name)
	d.queries[name+" "+dns.TypeToString[q.Qtype]]++
	seen := map[string]bool{}
	for {
		if rc, ok := d.rcodes[name]; ok {
			m.Rcode = rc
			return
		}
		target, ok := d.cnames[name]
		if !ok || q.Qtype == dns.TypeCNAME {
			break
		}
		if seen[name] || len(seen) >= 8 {
			m.Answer = nil
			m.Rcode = dns.RcodeServerFailure
			return
		}
		seen[name] = true
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: target})
		name = target
	}
	rrs, known := d.records[name]
	if _, alias := d.cnames[name]; !known && !alias {
		m.Rcode = dns.RcodeNameError
		return
	}
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
}
