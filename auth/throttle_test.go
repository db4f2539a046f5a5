package auth

import (
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for ThrottleOptions.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	ip1 = netip.MustParseAddr("192.0.2.1")
	ip2 = netip.MustParseAddr("192.0.2.2")
	lo  = netip.MustParseAddr("127.0.0.1")
)

func TestThrottleBlocksIP(t *testing.T) {
	th := NewThrottle(ThrottleOptions{MaxPerIP: 3, MaxPerAccount: 100, Window: time.Minute, Now: newFakeClock().Now})
	for i := range 3 {
		acct := "user" + string(rune('a'+i)) + "@example.org"
		if !th.Allowed(ip1, acct) {
			t.Fatalf("blocked after %d failures", i)
		}
		th.Failed(ip1, acct)
	}
	if th.Allowed(ip1, "fresh@example.org") {
		t.Errorf("IP not blocked after 3 failures")
	}
	if !th.Allowed(ip2, "fresh@example.org") {
		t.Errorf("another IP is blocked")
	}
}

func TestThrottleLoopbackNotExempt(t *testing.T) {
	th := NewThrottle(ThrottleOptions{MaxPerIP: 2, Now: newFakeClock().Now})
	th.Failed(lo, "a@example.org")
	th.Failed(lo, "b@example.org")
	if th.Allowed(lo, "c@example.org") {
		t.Errorf("loopback exempt from throttling")
	}
}

func TestThrottleBlocksAccountAcrossIPs(t *testing.T) {
	th := NewThrottle(ThrottleOptions{MaxPerIP: 100, MaxPerAccount: 3, Window: time.Minute, Now: newFakeClock().Now})
	for i := range 3 {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
		th.Failed(ip, "bob@example.org")
	}
	// Case does not give an attacker fresh attempts.
	if th.Allowed(netip.MustParseAddr("203.0.113.9"), "BOB@Example.ORG") {
		t.Errorf("account not blocked from a new IP after failures from 3 IPs")
	}
	if !th.Allowed(netip.MustParseAddr("203.0.113.9"), "alice@example.org") {
		t.Errorf("other account blocked")
	}
}

func TestThrottleWindowExpiry(t *testing.T) {
	clk := newFakeClock()
	th := NewThrottle(ThrottleOptions{MaxPerIP: 3, MaxPerAccount: 3, Window: 10 * time.Minute, Now: clk.Now})
	th.Failed(ip1, "bob@example.org") // t=0
	clk.Advance(5 * time.Minute)
	th.Failed(ip1, "bob@example.org") // t=5
	th.Failed(ip1, "bob@example.org") // t=5
	if th.Allowed(ip1, "bob@example.org") {
		t.Fatal("not blocked after 3 failures within the window")
	}
	clk.Advance(5*time.Minute - time.Second) // t=9:59: all three still count
	if th.Allowed(ip1, "bob@example.org") {
		t.Fatal("unblocked before the window passed")
	}
	clk.Advance(time.Second) // t=10: the first failure leaves the window
	if !th.Allowed(ip1, "bob@example.org") {
		t.Fatal("still blocked once the first failure left the window")
	}
	th.Failed(ip1, "bob@example.org") // sliding: 3 within the window again
	if th.Allowed(ip1, "bob@example.org") {
		t.Fatal("not blocked again after one more failure")
	}
	clk.Advance(10 * time.Minute)
	if !th.Allowed(ip1, "bob@example.org") {
		t.Fatal("still blocked after a full window")
	}
	if ips, accts := th.tracked(); ips != 0 || accts != 0 {
		t.Errorf("expired entries kept: %d IPs, %d accounts", ips, accts)
	}
}

func TestThrottleIPv6Per64(t *testing.T) {
	th := NewThrottle(ThrottleOptions{MaxPerIP: 2, MaxPerAccount: 100, Now: newFakeClock().Now})
	th.Failed(netip.MustParseAddr("2001:db8:1:2::1"), "a@example.org")
	th.Failed(netip.MustParseAddr("2001:db8:1:2:ffff:ffff:ffff:ffff"), "b@example.org")
	if th.Allowed(netip.MustParseAddr("2001:db8:1:2:abcd::42"), "c@example.org") {
		t.Errorf("same /64 not blocked")
	}
	if !th.Allowed(netip.MustParseAddr("2001:db8:1:3::1"), "c@example.org") {
		t.Errorf("neighbouring /64 blocked")
	}
	// IPv4-mapped IPv6 counts as the IPv4 address.
	th.Failed(netip.MustParseAddr("::ffff:192.0.2.7"), "d@example.org")
	th.Failed(netip.MustParseAddr("192.0.2.7"), "e@example.org")
	if th.Allowed(netip.MustParseAddr("192.0.2.7"), "f@example.org") {
		t.Errorf("IPv4-mapped address counted apart from IPv4")
	}
}

func TestThrottleSucceededResetsAccountOnly(t *testing.T) {
	th := NewThrottle(ThrottleOptions{MaxPerIP: 3, MaxPerAccount: 2, Now: newFakeClock().Now})
	th.Failed(ip1, "bob@example.org")
	th.Failed(ip2, "bob@example.org")
	if th.Allowed(ip1, "bob@example.org") {
		t.Fatal("account not blocked")
	}
	th.Succeeded(ip2, "bob@example.org")
	if !th.Allowed(ip2, "bob@example.org") {
		t.Fatal("account still blocked after success")
	}
	// ip1's failure still counts: two more and it is blocked.
	th.Failed(ip1, "x@example.org")
	th.Failed(ip1, "y@example.org")
	if th.Allowed(ip1, "z@example.org") {
		t.Fatal("IP counter was reset by another IP's success")
	}
	th.Succeeded(ip1, "z@example.org")
	if th.Allowed(ip1, "z@example.org") {
		t.Fatal("success reset the IP counter")
	}
}

func TestThrottleDisabledLimits(t *testing.T) {
	th := NewThrottle(ThrottleOptions{MaxPerIP: -1, MaxPerAccount: 1, Now: newFakeClock().Now})
	for range 50 {
		th.Failed(ip1, "")
	}
	if !th.Allowed(ip1, "bob@example.org") {
		t.Errorf("IP limit off, yet blocked")
	}
	if ips, _ := th.tracked(); ips != 0 {
		t.Errorf("IP limit off, yet %d IPs tracked", ips)
	}
	th.Failed(ip1, "bob@example.org")
	if th.Allowed(ip2, "bob@example.org") {
		t.Errorf("account limit not applied")
	}
}

func TestThrottleEmptyAccountCountsIPOnly(t *testing.T) {
	th := NewThrottle(ThrottleOptions{MaxPerIP: 100, MaxPerAccount: 1, Now: newFakeClock().Now})
	th.Failed(ip1, "")
	if _, accts := th.tracked(); accts != 0 {
		t.Errorf("empty account tracked")
	}
	if !th.Allowed(ip2, "") {
		t.Errorf("empty account blocked")
	}
}

func TestThrottleBounded(t *testing.T) {
	clk := newFakeClock()
	th := NewThrottle(ThrottleOptions{MaxPerIP: 1, MaxPerAccount: 1, Window: time.Hour, Now: clk.Now})
	const n = 200_000
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		th.Failed(ip, "u"+strconv.Itoa(i)+"@example.org")
		if i%1000 == 0 {
			clk.Advance(time.Millisecond)
		}
	}
	ips, accts := th.tracked()
	if accts != DefaultMaxKeys {
		t.Errorf("tracking %d accounts, want the cap %d", accts, DefaultMaxKeys)
	}
	if ips > DefaultMaxKeys {
		t.Fatalf("tracking %d IPs and %d accounts, cap %d", ips, accts, DefaultMaxKeys)
	}
	if ips != DefaultMaxKeys {
		t.Errorf("tracking %d IPs, want the cap %d", ips, DefaultMaxKeys)
	}
	// The newest are kept, the oldest were evicted.
	const l = n - 1
	last := netip.AddrFrom4([4]byte{10, byte(l >> 16), byte(l >> 8 & 0xff), byte(l & 0xff)})
	if th.Allowed(last, "other@example.org") {
		t.Errorf("most recent IP was evicted")
	}
	if !th.Allowed(netip.AddrFrom4([4]byte{10, 0, 0, 0}), "other@example.org") {
		t.Errorf("oldest IP still tracked")
	}
}

func TestThrottleLongAccountBounded(t *testing.T) {
	th := NewThrottle(ThrottleOptions{MaxPerAccount: 1, Now: newFakeClock().Now})
	long := strings.Repeat("a", 1<<20)
	th.Failed(ip1, long)
	if th.Allowed(ip2, long) {
		t.Errorf("long account not blocked")
	}
	for k := range th.accounts.byKey {
		if len(k) > maxAccountKey {
			t.Errorf("account key of %d bytes stored", len(k))
		}
	}
}

func TestThrottleConcurrent(t *testing.T) {
	th := NewThrottle(ThrottleOptions{MaxPerIP: 1000, MaxPerAccount: 800})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(g)})
			for range 100 {
				th.Allowed(ip, "bob@example.org")
				th.Failed(ip, "bob@example.org")
				th.Succeeded(ip, "alice@example.org")
			}
		})
	}
	wg.Wait()
	if th.Allowed(ip1, "bob@example.org") {
		t.Errorf("800 concurrent failures did not block the account (limit 800)")
	}
}
