// Package netlimit bounds the connections a listener accepts, overall and per
// client IP, so that one peer cannot take every slot of a server.
package netlimit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limiter counts connections against an overall and a per-IP limit. One
// Limiter may be shared by several listeners, so that the limits hold over
// all of them.
type Limiter struct {
	Max      int // 0: no overall limit
	MaxPerIP int // 0: no per-IP limit

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

// NewLimiter returns a Limiter.
func NewLimiter(max, maxPerIP int) *Limiter {
	return &Limiter{Max: max, MaxPerIP: maxPerIP, perIP: make(map[netip.Addr]int)}
}

// Count returns the connections open now, overall and from ip.
func (l *Limiter) Count(ip netip.Addr) (total, fromIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.perIP[ip]
}

func (l *Limiter) acquire(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if (l.Max > 0 && l.total >= l.Max) || (l.MaxPerIP > 0 && l.perIP[ip] >= l.MaxPerIP) {
		return false
	}
	l.total++
	l.perIP[ip]++
	return true
}

func (l *Limiter) release(ip netip.Addr) {
	l.mu.Lock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
}

// Listener wraps a net.Listener. A connection over a limit is handed to
// Reject (which may write a protocol greeting refusing it) and closed; it is
// never returned by Accept.
type Listener struct {
	net.Listener
	*Limiter
	// Reject is called (in its own goroutine) with a refused connection,
	// before it is closed; nil closes it at once.
	Reject func(c net.Conn)
}

// New wraps l with limits of its own.
func New(l net.Listener, max, maxPerIP int, reject func(net.Conn)) *Listener {
	return Wrap(l, NewLimiter(max, maxPerIP), reject)
}

// Wrap wraps l with a (possibly shared) Limiter.
func Wrap(l net.Listener, lim *Limiter, reject func(net.Conn)) *Listener {
	return &Listener{Listener: l, Limiter: lim, Reject: reject}
}

// Accept returns the next connection within the limits.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrIP(c.RemoteAddr())
		if !l.acquire(ip) {
			go func() {
				if l.Reject != nil {
					c.SetDeadline(time.Now().Add(5 * time.Second))
					l.Reject(c)
				}
				c.Close()
			}()
			continue
		}
		return &conn{Conn: c, l: l.Limiter, ip: ip}, nil
	}
}

type conn struct {
	net.Conn
	l    *Limiter
	ip   netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// Unwrap returns the underlying connection.
func (c *conn) Unwrap() net.Conn { return c.Conn }

func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
