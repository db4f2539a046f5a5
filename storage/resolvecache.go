package storage

import (
	"context"
	"strings"
	"sync"
	"time"
)

// resolveTTL bounds how long a recipient lookup is reused. Changes made
// through this Store drop the cache at once; changes made by another
// process (the CLI) are seen within this time.
const resolveTTL = time.Second

// resolveMax bounds the cache; when full it starts over.
const resolveMax = 10000

// resolveCache keeps successful Resolve answers and users' quotas: every
// inbound RCPT asks the same few addresses, and each lookup costs two or
// three queries whose read transactions start cold after each delivery's
// commit.
type resolveCache struct {
	mu  sync.Mutex
	gen uint64 // bumped by every change to domains, users or aliases
	m   map[string]cached[[]Target]
	q   map[int64]cached[int64] // quota in bytes, 0: none
}

type cached[V any] struct {
	v  V
	at time.Time
}

// lookup returns m[k] if it is younger than resolveTTL.
func lookup[K comparable, V any](m map[K]cached[V], k K) (V, bool) {
	e, ok := m[k]
	if !ok || time.Since(e.at) >= resolveTTL {
		var zero V
		return zero, false
	}
	return e.v, true
}

// keep sets (*m)[k], starting the map over when it is full.
func keep[K comparable, V any](m *map[K]cached[V], k K, v V) {
	if *m == nil || len(*m) >= resolveMax {
		*m = make(map[K]cached[V])
	}
	(*m)[k] = cached[V]{v: v, at: time.Now()}
}

// cacheable: a plus-address may resolve to a folder, which depends on the
// user's mailboxes; those change too often to be worth tracking here.
func cacheable(addr string) bool { return !strings.Contains(addr, "+") }

// get returns the cached targets of addr, or the generation a lookup made
// now must present to put.
func (c *resolveCache) get(addr string) ([]Target, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := lookup(c.m, addr)
	return append([]Target(nil), t...), c.gen, ok
}

// put stores a lookup unless the accounts changed since it began.
func (c *resolveCache) put(addr string, targets []Target, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		keep(&c.m, addr, append([]Target(nil), targets...))
	}
}

func (c *resolveCache) invalidate() {
	c.mu.Lock()
	c.gen++
	c.m = nil
	c.q = nil
	c.mu.Unlock()
}

// quotaUsage returns a user's quota (0: none) and, when there is one, the
// bytes in use, which load reads. A quota of 0 is taken from the cache, so
// that an unlimited user costs no query.
func (c *resolveCache) quotaUsage(userID int64, load func() (quota, used int64, err error)) (quota, used int64, err error) {
	c.mu.Lock()
	quota, ok := lookup(c.q, userID)
	gen := c.gen
	c.mu.Unlock()
	if ok && quota == 0 {
		return 0, 0, nil
	}
	if quota, used, err = load(); err != nil {
		return 0, 0, err
	}
	c.mu.Lock()
	if gen == c.gen {
		keep(&c.q, userID, quota)
	}
	c.mu.Unlock()
	return quota, used, nil
}

// writeAccounts is write for changes that can alter what Resolve answers.
// The cache is dropped before (so no lookup begun earlier is stored) and
// after (so none that read the old rows survives the commit).
func (s *Store) writeAccounts(ctx context.Context, fn func(*Tx) error) error {
	s.resolved.invalidate()
	defer s.resolved.invalidate()
	return s.write(ctx, fn)
}
