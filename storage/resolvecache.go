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

// resolveCache keeps successful Resolve answers (and users' quotas): every inbound RCPT asks
// the same few addresses, and each lookup costs two or three queries whose
// read transactions start cold after each delivery's commit.
type resolveCache struct {
	mu  sync.Mutex
	gen uint64 // bumped by every change to domains, users or aliases
	m   map[string]resolved
	q   map[int64]resolvedQuota
}

type resolvedQuota struct {
	bytes int64
	at    time.Time
}

type resolved struct {
	targets []Target
	at      time.Time
}

// cacheable: a plus-address may resolve to a folder, which depends on the
// user's mailboxes; those change too often to be worth tracking here.
func cacheable(addr string) bool { return !strings.Contains(addr, "+") }

// get returns the cached targets of addr, or the generation a lookup made
// now must present to put.
func (c *resolveCache) get(addr string) ([]Target, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[addr]; ok && time.Since(e.at) < resolveTTL {
		return append([]Target(nil), e.targets...), c.gen, true
	}
	return nil, c.gen, false
}

// put stores a lookup unless the accounts changed since it began.
func (c *resolveCache) put(addr string, targets []Target, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= resolveMax {
		c.m = make(map[string]resolved)
	}
	c.m[addr] = resolved{targets: append([]Target(nil), targets...), at: time.Now()}
}

func (c *resolveCache) invalidate() {
	c.mu.Lock()
	c.gen++
	c.m = nil
	c.q = nil
	c.mu.Unlock()
}

// quota returns a user's cached quota, or the generation for putQuota.
func (c *resolveCache) quota(userID int64) (int64, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.q[userID]; ok && time.Since(e.at) < resolveTTL {
		return e.bytes, c.gen, true
	}
	return 0, c.gen, false
}

func (c *resolveCache) putQuota(userID, bytes int64, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.q == nil || len(c.q) >= resolveMax {
		c.q = make(map[int64]resolvedQuota)
	}
	c.q[userID] = resolvedQuota{bytes: bytes, at: time.Now()}
}

// writeAccounts is write for changes that can alter what Resolve answers.
// The cache is dropped before (so no lookup begun earlier is stored) and
// after (so none that read the old rows survives the commit).
func (s *Store) writeAccounts(ctx context.Context, fn func(*Tx) error) error {
	s.resolved.invalidate()
	defer s.resolved.invalidate()
	return s.write(ctx, fn)
}
