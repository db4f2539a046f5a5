package storage

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultViewCacheMessages bounds the messages held by the view cache of a
// Store, over all its mailboxes: about 12 bytes each (UID and flags), plus
// the keywords of those that have some.
const DefaultViewCacheMessages = 2_000_000

// viewCache keeps the MailboxView of recently selected mailboxes, shared by
// every session of the process, so that SELECT reads from the database only
// what changed since the mailbox was last selected (CachedView).
//
// An entry is kept exact by the MODSEQ machinery: every change to a mailbox
// takes its next HIGHESTMODSEQ and stamps the message with it, and an expunge
// leaves a tombstone with its MODSEQ. So the rows with a MODSEQ above the
// entry's HIGHESTMODSEQ are exactly those to apply to it.
//
// Locking: mu guards the map, the LRU list and the counts; an entry's own mu
// guards its view, and is held while it is brought up to date and copied,
// so SELECTs of different mailboxes do not wait for each other. mu is never
// taken while waiting for an entry's mu.
//
// The bound is checked once a view is read: mailboxes read for the first
// time at the same moment may hold more, until they are counted.
type viewCache struct {
	mu      sync.Mutex
	max     int // messages over all entries; 0 means DefaultViewCacheMessages
	total   int // messages counted in entries' size
	entries map[int64]*viewEntry
	lru     *list.List // of *viewEntry, most recently used first

	// repairs counts views read again because the database did not continue
	// them (rows changed without a MODSEQ, HIGHESTMODSEQ gone back): never,
	// unless something writes behind storage's back.
	repairs atomic.Int64
	// fromSnapshot counts views read cold from a saved view (view_snapshots).
	fromSnapshot atomic.Int64

	// snapMin is the size from which views are saved; 0 means
	// DefaultSnapshotMessages.
	snapMin int
}

type viewEntry struct {
	id   int64
	elem *list.Element // nil once evicted (guarded by viewCache.mu)
	size int           // messages counted in viewCache.total (guarded by viewCache.mu)

	mu sync.Mutex
	v  *cachedView // nil until loaded
}

// cachedView is a view and what checks it against the mailbox row.
//
// SELECT takes the view without a copy (share): from then on the view is
// lent, and a change that would write over what a borrower reads (a flag
// change, an expunge, keywords) first gives the cache its own copy (own). A
// new message without keywords is appended in place: borrowers' slices are
// clipped, so they never see past their own length, and an append of theirs
// copies.
type cachedView struct {
	MailboxView
	unseen int64 // messages of the view without \Seen
	lent   bool  // UIDs, Flags and Keywords are shared with callers

	// kwLists holds one list per distinct keywords column, shared by every
	// message that has it, so that a session can tell equal lists by their
	// address.
	kwLists map[string][]string
}

// CachedView returns what View returns for the same database state, from a
// process-wide cache that a call brings up to date from the changes made
// since the previous one, read in one transaction with the mailbox row.
//
// The view is shared, not copied: a SELECT of 100,000 messages would
// otherwise copy 1.2 MB. The caller must not change UIDs, Flags, Keywords or
// the keyword lists in place; appending to UIDs and Flags is safe (they are
// clipped, so append copies). Later changes to the mailbox never show in a
// view already returned.
func (s *Store) CachedView(ctx context.Context, mailboxID int64) (*MailboxView, error) {
	return s.cachedView(ctx, mailboxID, true)
}

// WarmView reads the view of a mailbox into the cache unless the cache
// already has it (or is reading it), so that a SELECT expected soon finds it
// there: the first read of a mailbox since start-up reads every message's
// row.
func (s *Store) WarmView(ctx context.Context, mailboxID int64) error {
	c := &s.views
	c.mu.Lock()
	_, ok := c.entries[mailboxID]
	c.mu.Unlock()
	if ok {
		return nil
	}
	_, err := s.cachedView(ctx, mailboxID, false)
	return err
}

// ViewCacheStats returns how many mailboxes, and messages in them, the view
// cache holds.
func (s *Store) ViewCacheStats() (mailboxes, messages int) { return s.views.stats() }

// cachedView is CachedView; without want it returns no view, only the error.
func (s *Store) cachedView(ctx context.Context, mailboxID int64, want bool) (*MailboxView, error) {
	c := &s.views
	e := c.acquire(mailboxID)
	e.mu.Lock()
	save, err := s.refreshView(ctx, e)
	var out *MailboxView
	size := -1 // dropped from the cache
	if e.v != nil {
		size = len(e.v.UIDs)
		if err == nil && want {
			out = e.v.share()
		}
	}
	e.mu.Unlock()
	c.account(e, size)
	if save != nil {
		// Saved even if the caller has gone: the work is done. A view that
		// could not be saved is read whole again next time.
		err := s.saveSnapshot(context.WithoutCancel(ctx), mailboxID, save.uidValidity, save.modseq, save.data)
		if err != nil && !s.closed.Load() {
			slog.Warn("storage: saving an IMAP view", "err", err)
		}
	}
	return out, err
}

// viewSave is a view to save, encoded while its entry was locked.
type viewSave struct {
	uidValidity uint32
	modseq      int64
	data        []byte
}

// acquire returns the entry of a mailbox, adding an empty one, and makes it
// the most recently used.
func (c *viewCache) acquire(id int64) *viewEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[int64]*viewEntry)
		c.lru = list.New()
	}
	e := c.entries[id]
	if e == nil {
		e = &viewEntry{id: id}
		e.elem = c.lru.PushFront(e)
		c.entries[id] = e
	} else {
		c.lru.MoveToFront(e.elem)
	}
	return e
}

// account records that e now holds size messages (size < 0: drop it), then
// evicts the least recently used entries while the cache holds too many. An
// entry larger than the whole cache is dropped at once, and others kept.
func (c *viewCache) account(e *viewEntry, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.elem == nil {
		return // evicted while it was in use: the cache no longer counts it
	}
	limit := c.max
	if limit <= 0 {
		limit = DefaultViewCacheMessages
	}
	if size < 0 || size > limit {
		c.evict(e)
		return
	}
	c.total += size - e.size
	e.size = size
	for c.total > limit {
		c.evict(c.lru.Back().Value.(*viewEntry))
	}
}

// evict removes e from the cache. A caller still holding e finishes with it
// and drops it.
func (c *viewCache) evict(e *viewEntry) {
	c.lru.Remove(e.elem)
	e.elem = nil
	delete(c.entries, e.id)
	c.total -= e.size
	e.size = 0
}

// stats returns how many mailboxes and messages the cache holds.
func (c *viewCache) stats() (mailboxes, messages int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.total
}

// refreshView brings e.v to the current state of its mailbox, in one read
// transaction. On an error e.v is either unchanged or nil. When the view was
// read cold and is worth saving (view_snapshots), it returns it encoded.
func (s *Store) refreshView(ctx context.Context, e *viewEntry) (*viewSave, error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	m, err := scanMailbox(s.txQueryRow(ctx, tx, "SELECT "+mailboxCols+" FROM mailboxes WHERE id = ?", e.id))
	if errors.Is(err, sql.ErrNoRows) {
		e.v = nil
		return nil, fmt.Errorf("mailbox %d: %w", e.id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	old := e.v
	if old == nil {
		// Cold: from the saved view when there is one that leads here.
		v, changes, err := s.viewFromSnapshot(ctx, tx, m)
		if err != nil {
			return nil, err
		}
		if v != nil {
			s.views.fromSnapshot.Add(1)
			e.v = v
			return s.views.saveOf(v, changes), nil
		}
		v, err = s.loadView(ctx, tx, m)
		if err != nil {
			return nil, err
		}
		e.v = v
		return s.views.saveOf(v, -1), nil
	}
	reload := func() error {
		e.v = nil
		v, err := s.loadView(ctx, tx, m)
		if err != nil {
			return err
		}
		e.v = v
		return nil
	}
	// Another mailbox may have taken the id of a deleted one (SQLite reuses
	// the largest rowid): its UIDVALIDITY differs, as UIDVALIDITY only grows.
	same := old.UIDValidity == m.UIDValidity && old.UserID == m.UserID
	if !same || m.HighestModSeq < old.HighestModSeq {
		if same {
			s.views.repairs.Add(1) // HIGHESTMODSEQ went back
		}
		return nil, reload()
	}
	if m.HighestModSeq == old.HighestModSeq {
		if old.fits(m) {
			old.Mailbox = *m // name, subscription, size
			return nil, nil
		}
	} else {
		changed, expunged, err := s.readChanges(ctx, tx, e.id, old.HighestModSeq)
		if err != nil {
			return nil, err
		}
		if old.apply(m, changed, expunged) {
			return nil, nil
		}
	}
	// The rows do not fit the view: read it again.
	s.views.repairs.Add(1)
	return nil, reload()
}

// saveOf returns v encoded for saving when it is large enough to be worth
// it and was read whole (changes < 0) or from a saved view followed by many
// changes.
func (c *viewCache) saveOf(v *cachedView, changes int) *viewSave {
	min := c.snapMin
	if min == 0 {
		min = DefaultSnapshotMessages
	}
	if len(v.UIDs) < min || (changes >= 0 && changes < snapshotChanges) {
		return nil
	}
	return &viewSave{uidValidity: v.UIDValidity, modseq: v.HighestModSeq, data: encodeView(v)}
}

// loadView reads the whole view of mailbox m in tx (View, and the cache).
func (s *Store) loadView(ctx context.Context, tx *sql.Tx, m *Mailbox) (*cachedView, error) {
	v := newCachedView(m, m.Messages)
	rows, err := s.txQuery(ctx, tx, "SELECT uid, flags, keywords FROM messages WHERE mailbox_id = ? ORDER BY uid", m.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var uid, flags intCol
	var kw string
	for rows.Next() {
		if err := rows.Scan(&uid, &flags, &kw); err != nil {
			return nil, err
		}
		v.push(uint32(uid.v), Flags(flags.v), kw)
	}
	return v, rows.Err()
}

// newCachedView returns an empty view of mailbox m with room for n
// messages.
func newCachedView(m *Mailbox, n int64) *cachedView {
	return &cachedView{MailboxView: MailboxView{Mailbox: *m, UIDs: make([]uint32, 0, n), Flags: make([]Flags, 0, n)}}
}

// push adds message u, above every UID of v, with its flags and keywords
// column, to a view being read.
func (v *cachedView) push(u uint32, f Flags, kw string) {
	if f&FlagSeen == 0 {
		v.unseen++
		if v.FirstUnseenUID == 0 {
			v.FirstUnseenUID = u
		}
	}
	if kw != "" {
		if l := v.keywordList(kw); len(l) > 0 {
			if v.Keywords == nil {
				v.Keywords = make(map[uint32][]string)
			}
			v.Keywords[u] = l
		}
	}
	v.UIDs = append(v.UIDs, u)
	v.Flags = append(v.Flags, f)
}

// fits reports whether the view agrees with the counters of its mailbox
// row, which triggers keep in the same transactions as the rows: a change
// made without a MODSEQ shows there.
func (v *cachedView) fits(m *Mailbox) bool {
	return int64(len(v.UIDs)) == m.Messages && v.unseen == m.Unseen
}

// viewRow is a message added or changed after the view's HIGHESTMODSEQ.
type viewRow struct {
	uid   uint32
	flags Flags
	kw    string
}

// readChanges reads, in tx, the messages and the tombstones of a mailbox
// with a MODSEQ above modseq, each in ascending UID order.
func (s *Store) readChanges(ctx context.Context, tx *sql.Tx, mailboxID, modseq int64) ([]viewRow, []uint32, error) {
	rows, err := s.txQuery(ctx, tx, "SELECT uid, flags, keywords FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid", mailboxID, modseq)
	if err != nil {
		return nil, nil, err
	}
	var changed []viewRow
	var uid, flags intCol
	var kw string
	for rows.Next() {
		if err := rows.Scan(&uid, &flags, &kw); err != nil {
			rows.Close()
			return nil, nil, err
		}
		changed = append(changed, viewRow{uid: uint32(uid.v), flags: Flags(flags.v), kw: kw})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	expunged, err := s.expungedSince(ctx, tx, mailboxID, modseq)
	if err != nil {
		return nil, nil, err
	}
	return changed, expunged, nil
}

// apply brings v to the state of m given the rows changed and the UIDs
// expunged after v's HIGHESTMODSEQ. It reports false when they do not fit v
// (v is then left half-changed, to be read again).
func (v *cachedView) apply(m *Mailbox, changed []viewRow, expunged []uint32) bool {
	// Messages before from were \Seen and are unchanged: the first unseen
	// one is not before it.
	from := ^uint32(0)
	if v.FirstUnseenUID != 0 {
		from = v.FirstUnseenUID
	}
	for _, r := range changed {
		from = min(from, r.uid)
		if n := len(v.UIDs); n == 0 || r.uid > v.UIDs[n-1] {
			// UIDs only grow: a new message comes after every other, past
			// the length of every borrower's slices.
			if r.kw != "" {
				v.own()
			}
			v.UIDs = append(v.UIDs, r.uid)
			v.Flags = append(v.Flags, r.flags)
		} else if i, ok := slices.BinarySearch(v.UIDs, r.uid); ok {
			v.own()
			v.unseen -= unseen(v.Flags[i])
			v.Flags[i] = r.flags
			if r.kw == "" {
				delete(v.Keywords, r.uid)
			}
		} else {
			return false
		}
		v.unseen += unseen(r.flags)
		if r.kw != "" {
			if v.Keywords == nil {
				v.Keywords = make(map[uint32][]string)
			}
			v.Keywords[r.uid] = v.keywordList(r.kw)
		}
	}
	v.remove(expunged)
	v.Mailbox = *m
	if !v.fits(m) {
		return false
	}
	v.FirstUnseenUID = 0
	if from != ^uint32(0) {
		i, _ := slices.BinarySearch(v.UIDs, from)
		for ; i < len(v.UIDs); i++ {
			if v.Flags[i]&FlagSeen == 0 {
				v.FirstUnseenUID = v.UIDs[i]
				break
			}
		}
	}
	return true
}

// remove takes the given UIDs (ascending) out of v in one pass; those not
// in v (added and expunged since) are skipped.
func (v *cachedView) remove(uids []uint32) {
	var at []int
	lo := 0
	for _, u := range uids {
		i, ok := slices.BinarySearch(v.UIDs[lo:], u)
		i += lo
		if ok {
			at = append(at, i)
			v.unseen -= unseen(v.Flags[i])
		}
		lo = i
	}
	if len(at) == 0 {
		return
	}
	v.own()
	for _, i := range at {
		delete(v.Keywords, v.UIDs[i])
	}
	n, w := len(v.UIDs), at[0]
	for k, i := range at {
		end := n
		if k+1 < len(at) {
			end = at[k+1]
		}
		copy(v.UIDs[w:], v.UIDs[i+1:end])
		copy(v.Flags[w:], v.Flags[i+1:end])
		w += end - (i + 1)
	}
	v.UIDs, v.Flags = v.UIDs[:w], v.Flags[:w]
}

// share lends v to a caller (CachedView).
func (v *cachedView) share() *MailboxView {
	v.lent = true
	out := &MailboxView{
		Mailbox:        v.Mailbox,
		UIDs:           slices.Clip(v.UIDs),
		Flags:          slices.Clip(v.Flags),
		FirstUnseenUID: v.FirstUnseenUID,
	}
	if len(v.Keywords) > 0 {
		out.Keywords = v.Keywords
	}
	return out
}

// own gives v copies of its own of what it lent, before a change in place.
// The keyword lists stay shared: they are never changed.
func (v *cachedView) own() {
	if !v.lent {
		return
	}
	v.UIDs = slices.Clone(v.UIDs)
	v.Flags = slices.Clone(v.Flags)
	v.Keywords = maps.Clone(v.Keywords)
	v.lent = false
}

// maxKeywordLists bounds the distinct keyword lists a view shares; past it,
// messages get lists of their own.
const maxKeywordLists = 1024

// keywordList returns the list of a keywords column, the same one for
// every message that has it.
func (v *cachedView) keywordList(kw string) []string {
	if l, ok := v.kwLists[kw]; ok {
		return l
	}
	l := slices.Clip(splitKeywords(kw))
	if len(v.kwLists) < maxKeywordLists {
		if v.kwLists == nil {
			v.kwLists = make(map[string][]string)
		}
		v.kwLists[kw] = l
	}
	return l
}

func unseen(f Flags) int64 {
	if f&FlagSeen == 0 {
		return 1
	}
	return 0
}

// txQuery runs a read in tx with the pool's prepared statement, which
// database/sql keeps prepared per connection.
func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if st := s.rstmts.get(s.rdb, q); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.rstmts.get(s.rdb, q); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}
