package auth

import (
	"container/list"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Throttle defaults, used for zero fields of ThrottleOptions.
const (
	DefaultMaxPerIP      = 20
	DefaultMaxPerAccount = 10
	DefaultWindow        = 15 * time.Minute
	DefaultMaxKeys       = 100_000

	// maxAccountKey bounds the memory one account key can take; longer names
	// are never valid addresses, so collisions between them do not matter.
	maxAccountKey = 320
)

// ThrottleOptions configure a Throttle. Zero fields take the defaults above; a
// negative MaxPerIP or MaxPerAccount turns that limit off.
type ThrottleOptions struct {
	MaxPerIP      int           // failures from one IPv4 address or IPv6 /64
	MaxPerAccount int           // failures against one account, from anywhere
	Window        time.Duration // how long a failure counts
	MaxKeys       int           // addresses and accounts tracked (each); the oldest are forgotten first
	Now           func() time.Time
}

// Throttle counts failed logins per client address and per account over a
// sliding window, and refuses further attempts once either count reaches its
// limit. Every protocol shares one Throttle, so guesses over SMTP, IMAP and
// POP3 add up. Loopback is not exempt.
//
// IPv6 clients are counted per /64, since one host usually holds a whole /64.
//
// A success (Succeeded) forgets the account's failures, so that its owner is
// not kept locked out by an attacker's earlier guesses once they got in, but
// keeps the address's failures: an address that guessed many accounts stays
// suspect even if one guess was right.
//
// An empty account (a SASL response that did not parse) counts against the
// address only.
//
// Attempts refused by the throttle are not counted as failures, otherwise an
// attacker who keeps trying would keep a victim's account locked for ever.
//
// Memory is bounded: at most MaxKeys addresses and MaxKeys accounts are
// tracked, each with at most Max timestamps; entries whose failures are all
// older than Window are dropped, and when the table is full the entry with the
// oldest last failure is dropped.
type Throttle struct {
	now  func() time.Time
	base time.Time // failure times are stored as offsets from base: 8 bytes each

	mu       sync.Mutex
	ips      *failures[netip.Prefix]
	accounts *failures[string]
}

// NewThrottle returns a Throttle configured by o.
func NewThrottle(o ThrottleOptions) *Throttle {
	if o.MaxPerIP == 0 {
		o.MaxPerIP = DefaultMaxPerIP
	}
	if o.MaxPerAccount == 0 {
		o.MaxPerAccount = DefaultMaxPerAccount
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Throttle{
		now:      o.Now,
		base:     o.Now(),
		ips:      newFailures[netip.Prefix](o.MaxPerIP, o.Window, o.MaxKeys),
		accounts: newFailures[string](o.MaxPerAccount, o.Window, o.MaxKeys),
	}
}

// Allowed reports whether a login from ip for account may be attempted: false
// once the address or the account has had the maximum number of failures
// within the window.
func (t *Throttle) Allowed(ip netip.Addr, account string) bool {
	now := t.now().Sub(t.base)
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ips.allowed(ipKey(ip), now) {
		return false
	}
	return account == "" || t.accounts.allowed(accountKey(account), now)
}

// Failed records a failed login from ip for account.
func (t *Throttle) Failed(ip netip.Addr, account string) {
	now := t.now().Sub(t.base)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ips.add(ipKey(ip), now)
	if account != "" {
		t.accounts.add(accountKey(account), now)
	}
}

// Succeeded records a successful login: the account's failures are forgotten,
// the address's are kept (see Throttle).
func (t *Throttle) Succeeded(ip netip.Addr, account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.accounts.forget(accountKey(account))
}

// tracked returns how many addresses and accounts are tracked (for tests).
func (t *Throttle) tracked() (ips, accounts int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ips.byKey), len(t.accounts.byKey)
}

// ipKey is the unit an address is counted in: the IPv4 address itself, or the
// IPv6 /64 that holds it. IPv4-mapped IPv6 addresses count as IPv4. All
// invalid addresses share the zero Prefix.
func ipKey(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

func accountKey(account string) string {
	account = strings.ToLower(account)
	if len(account) > maxAccountKey {
		// Copy, so a huge attacker-supplied string is not kept alive by a slice.
		account = strings.Clone(account[:maxAccountKey])
	}
	return account
}

// failures is a bounded table of recent failure times per key. Entries are
// kept in a list ordered by last failure (oldest first), which makes both
// expiry and eviction a look at the front.
type failures[K comparable] struct {
	max     int // ≤ 0: no limit, nothing tracked
	window  time.Duration
	maxKeys int
	byKey   map[K]*list.Element // of *entry[K]
	order   list.List
}

type entry[K comparable] struct {
	key   K
	times []time.Duration // since Throttle.base, ascending, at most max, none older than window when pruned
}

func newFailures[K comparable](max int, window time.Duration, maxKeys int) *failures[K] {
	return &failures[K]{max: max, window: window, maxKeys: maxKeys, byKey: make(map[K]*list.Element)}
}

func (f *failures[K]) allowed(k K, now time.Duration) bool {
	if f.max <= 0 {
		return true
	}
	f.expire(now)
	el, ok := f.byKey[k]
	if !ok {
		return true
	}
	e := el.Value.(*entry[K])
	e.prune(now - f.window)
	return len(e.times) < f.max
}

func (f *failures[K]) add(k K, now time.Duration) {
	if f.max <= 0 {
		return
	}
	f.expire(now)
	el, ok := f.byKey[k]
	if !ok {
		for len(f.byKey) >= f.maxKeys {
			f.remove(f.order.Front())
		}
		el = f.order.PushBack(&entry[K]{key: k})
		f.byKey[k] = el
	} else {
		f.order.MoveToBack(el)
	}
	e := el.Value.(*entry[K])
	e.prune(now - f.window)
	if len(e.times) == f.max {
		// Only the newest max failures can decide; drop the oldest.
		copy(e.times, e.times[1:])
		e.times = e.times[:f.max-1]
	}
	e.times = append(e.times, now)
}

func (f *failures[K]) forget(k K) {
	if el, ok := f.byKey[k]; ok {
		f.remove(el)
	}
}

// expire drops entries whose last failure is outside the window. The list is
// ordered by last failure, so it stops at the first entry still in the window.
func (f *failures[K]) expire(now time.Duration) {
	cutoff := now - f.window
	for el := f.order.Front(); el != nil; el = f.order.Front() {
		e := el.Value.(*entry[K])
		if len(e.times) > 0 && e.times[len(e.times)-1] > cutoff {
			return
		}
		f.remove(el)
	}
}

func (f *failures[K]) remove(el *list.Element) {
	e := f.order.Remove(el).(*entry[K])
	delete(f.byKey, e.key)
}

// prune drops failures at or before cutoff.
func (e *entry[K]) prune(cutoff time.Duration) {
	n := 0
	for n < len(e.times) && e.times[n] <= cutoff {
		n++
	}
	if n > 0 {
		e.times = append(e.times[:0], e.times[n:]...)
	}
}
