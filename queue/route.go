package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"pombo/storage"
)

const (
	// maxMXHosts bounds the MX hosts tried per attempt (Postfix tries 5
	// addresses): a domain that publishes a thousand MX records gets ten.
	maxMXHosts = 10
	// maxConnects bounds the connections opened per route and attempt.
	maxConnects = 10
	// maxAddrsPerHost bounds the addresses tried per MX host.
	maxAddrsPerHost = 4
)

// newResolver returns the system resolver for "", else one that asks only
// the DNS server at addr ("host:port"), over UDP and, for truncated
// answers, TCP.
func newResolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// host is one server to try for a route.
type host struct {
	name string     // MX host name (or the domain, for an implicit MX)
	ip   netip.Addr // set when the name is an address literal
	// implicit: the domain had no MX record; if this host has no address
	// either, the domain cannot receive mail (RFC 5321 §5.1).
	implicit bool
}

// route is a set of recipients of one message that share their next hop,
// delivered in one session.
type route struct {
	key   string
	hosts []host
	relay bool
	rcpts []storage.QueuedRecipient
}

// failure is the result of a delivery attempt that did not succeed.
type failure struct {
	perm bool
	storage.Attempt
}

func tempFail(code, format string, args ...any) *failure {
	return &failure{Attempt: storage.Attempt{StatusCode: code, Reply: fmt.Sprintf(format, args...)}}
}

func permFail(code, format string, args ...any) *failure {
	return &failure{perm: true, Attempt: storage.Attempt{StatusCode: code, Reply: fmt.Sprintf(format, args...)}}
}

// domainOf returns the lower-case domain of an address.
func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}

// routes groups recipients by next hop: the relay when there is one, else
// their domains' MX hosts (two domains served by the same hosts share a
// session). Recipients whose domain cannot be resolved come back in failed.
func (q *Queue) routes(ctx context.Context, rcpts []storage.QueuedRecipient) ([]*route, map[int64]*failure) {
	if q.opts.Relay.Host != "" {
		return []*route{{key: "relay", relay: true, rcpts: rcpts}}, nil
	}
	failed := map[int64]*failure{}
	byKey := map[string]*route{}
	var out []*route
	hostsOf := map[string][]host{}
	failOf := map[string]*failure{}
	for _, rc := range rcpts {
		d := domainOf(rc.Address)
		hs, seen := hostsOf[d]
		f := failOf[d]
		if !seen && f == nil {
			hs, f = q.lookupMX(ctx, d)
			hostsOf[d], failOf[d] = hs, f
		}
		if f != nil {
			failed[rc.ID] = f
			continue
		}
		names := make([]string, len(hs))
		for i, h := range hs {
			names[i] = h.name
		}
		key := strings.Join(names, ",")
		rt := byKey[key]
		if rt == nil {
			rt = &route{key: key, hosts: hs}
			byKey[key] = rt
			out = append(out, rt)
		}
		rt.rcpts = append(rt.rcpts, rc)
	}
	return out, failed
}

// lookupMX returns the hosts to try for a domain in order of preference,
// or why there are none. RFC 5321 §5.1 and RFC 7505:
//   - a domain literal ("[192.0.2.1]") is its own host;
//   - a null MX (one record, host ".") means the domain takes no mail:
//     permanent failure 5.1.10, at once;
//   - no MX records (NOERROR without answers, or NXDOMAIN: Go's resolver
//     does not tell them apart) means an implicit MX of the domain itself;
//     when that has no address either the failure is permanent (5.1.2),
//     decided in dial (NXDOMAIN is authoritative: waiting will not help);
//   - any other DNS error (SERVFAIL, timeout, a CNAME loop, which resolvers
//     answer with SERVFAIL) is temporary: retried until give_up_after.
func (q *Queue) lookupMX(ctx context.Context, domain string) ([]host, *failure) {
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		lit := strings.TrimPrefix(domain[1:len(domain)-1], "ipv6:")
		ip, err := netip.ParseAddr(lit)
		if err != nil || ip.Zone() != "" {
			return nil, permFail("5.1.2", "bad address literal %s", domain)
		}
		return []host{{name: domain, ip: ip.Unmap()}}, nil
	}
	if _, err := storage.NormalizeDomain(domain); err != nil {
		return nil, permFail("5.1.2", "bad domain %q", domain)
	}
	mxs, err := q.resolver.LookupMX(ctx, domain+".")
	if err != nil && len(mxs) == 0 {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return []host{{name: domain, implicit: true}}, nil
		}
		return nil, tempFail("4.4.3", "DNS lookup of MX of %s failed: %s", domain, dnsReason(err))
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		// RFC 7505 §4.1.
		return nil, permFail("5.1.10", "domain %s does not accept mail (null MX, RFC 7505)", domain)
	}
	var hs []host
	seen := map[string]bool{}
	for _, mx := range mxs {
		name := strings.ToLower(strings.TrimSuffix(mx.Host, "."))
		if name == "" || seen[name] {
			continue // a null MX among others is not a host
		}
		seen[name] = true
		h := host{name: name}
		if ip, err := netip.ParseAddr(name); err == nil {
			h.ip = ip.Unmap()
		}
		hs = append(hs, h)
		if len(hs) == maxMXHosts {
			break
		}
	}
	if len(hs) == 0 {
		return nil, tempFail("4.4.3", "no usable MX host for %s", domain)
	}
	return hs, nil
}

// dnsReason is a DNS error without the resolver's address.
func dnsReason(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsTimeout:
			return "timeout"
		case de.IsNotFound:
			return "no such domain"
		}
		return de.Err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "interrupted"
	}
	return err.Error()
}

// addrs resolves a host to the addresses to dial, IPv4 and IPv6 as the
// resolver orders them. notFound is true when the name has no address at
// all (as opposed to a failed lookup).
func (q *Queue) addrs(ctx context.Context, h host) (ips []netip.Addr, notFound bool, err error) {
	if h.ip.IsValid() {
		return []netip.Addr{h.ip}, false, nil
	}
	ips, err = q.resolver.LookupNetIP(ctx, "ip", h.name+".")
	if err != nil {
		var de *net.DNSError
		return nil, errors.As(err, &de) && de.IsNotFound, err
	}
	if len(ips) == 0 {
		return nil, true, errors.New("no address")
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	if len(ips) > maxAddrsPerHost {
		ips = ips[:maxAddrsPerHost]
	}
	return ips, false, nil
}
