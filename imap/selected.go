package imap

import (
	"errors"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"pombo/storage"
)

// selected is a session's view of its selected mailbox.
//
// SELECT borrows uids, flags and kws from storage's view cache (CachedView)
// instead of copying them: the session copies each (own) before its first
// change in place. Appending needs no copy: borrowed slices are clipped.
type selected struct {
	id          int64
	name        string
	uidValidity uint32
	readOnly    bool
	uids        []uint32            // what the client knows: seq n is uids[n-1]
	flags       []storage.Flags     // system flags of uids[i] as of modseq
	kws         map[uint32][]string // keywords by UID, of messages that have some
	sharedUIDs  bool                // uids and flags are borrowed
	sharedKws   bool                // kws is borrowed
	sets        flagSets            // the distinct flag lists of the mailbox
	modseq      int64               // changes up to here are applied to the view
	gone        map[uint32]bool     // expunged in storage, not yet told (EXPUNGE)
	echoed      map[uint32]int64    // flag changes this session already sent, by MODSEQ
	dirty       bool                // events arrived that were not yet read
}

// seqOf returns the sequence number of uid in the view, or 0.
func (m *selected) seqOf(uid uint32) uint32 {
	i := sort.Search(len(m.uids), func(i int) bool { return m.uids[i] >= uid })
	if i < len(m.uids) && m.uids[i] == uid {
		return uint32(i + 1)
	}
	return 0
}

// ownUIDs makes uids and flags the session's own, before a change in place.
func (m *selected) ownUIDs() {
	if m.sharedUIDs {
		m.uids = slices.Clone(m.uids)
		m.flags = slices.Clone(m.flags)
		m.sharedUIDs = false
	}
}

func (m *selected) remove(seq uint32) {
	m.ownUIDs()
	if !m.sharedKws {
		delete(m.kws, m.uids[seq-1])
	} // else: a borrowed map keeps the UID, which the view no longer asks for
	m.uids = append(m.uids[:seq-1], m.uids[seq:]...)
	m.flags = append(m.flags[:seq-1], m.flags[seq:]...)
}

// keywords returns the keywords of uids[i].
func (m *selected) keywords(i int) []string {
	if len(m.kws) == 0 {
		return nil
	}
	return m.kws[m.uids[i]]
}

// setKeywords records the keywords of uid, interned so that equal lists are
// one list.
func (m *selected) setKeywords(uid uint32, f storage.Flags, kws []string) {
	if len(kws) == 0 && len(m.kws[uid]) == 0 {
		return
	}
	if m.sharedKws {
		m.kws = maps.Clone(m.kws)
		m.sharedKws = false
	}
	if len(kws) == 0 {
		delete(m.kws, uid)
		return
	}
	if m.kws == nil {
		m.kws = make(map[uint32][]string)
	}
	m.kws[uid] = m.sets.list[m.sets.internKey(f, kws)].kws
}

// flagsOf returns the flags of message seq as of m.modseq; the list is
// shared and must not be changed.
func (m *selected) flagsOf(seq uint32) []imap.Flag {
	return m.sets.list[m.sets.intern(m.flags[seq-1], m.keywords(int(seq-1)))].flags
}

// flagSets interns the flag lists of a view. A mailbox has few distinct
// combinations of flags and keywords, so FETCH FLAGS writes a shared list:
// answering it needs neither storage nor an allocation. Sets are never
// dropped while the mailbox is selected; a mailbox that sees every
// combination once would grow the table by one per change, which is bounded
// by the changes the session saw.
type flagSets struct {
	list  []flagSet
	plain [32]uint32         // index+1 of the set of system flags f (no keywords)
	other map[string]uint32  // index of the others, by flags and keywords
	byRef map[listRef]uint32 // the same, by the address of a keyword list
}

type flagSet struct {
	flags []imap.Flag
	kws   []string
}

// listRef names a keyword list by its address: the lists of a view are
// shared by the messages that have equal ones (storage interns them, and so
// does setKeywords), and never changed, so one lookup by address spares
// building a key for every message of a FETCH FLAGS.
type listRef struct {
	f storage.Flags
	p *string
	n int
}

// maxListRefs bounds byRef; past it, lookups build the key.
const maxListRefs = 4096

// intern returns the index of the set of f and kws, a list that lives as
// long as the view (one of storage's, or a set's own).
func (t *flagSets) intern(f storage.Flags, kws []string) uint32 {
	if len(kws) == 0 {
		return t.internKey(f, nil)
	}
	ref := listRef{f, &kws[0], len(kws)}
	if i, ok := t.byRef[ref]; ok {
		return i
	}
	i := t.internKey(f, kws)
	if len(t.byRef) < maxListRefs {
		if t.byRef == nil {
			t.byRef = make(map[listRef]uint32)
		}
		t.byRef[ref] = i
	}
	return i
}

// internKey is intern by value, for lists that are not kept.
func (t *flagSets) internKey(f storage.Flags, kws []string) uint32 {
	if len(kws) == 0 && f >= 0 && int(f) < len(t.plain) {
		if i := t.plain[f]; i != 0 {
			return i - 1
		}
		t.list = append(t.list, flagSet{flags: flagList(f, nil)})
		t.plain[f] = uint32(len(t.list))
		return uint32(len(t.list) - 1)
	}
	key := strconv.FormatInt(int64(f), 10) + " " + strings.Join(kws, " ")
	if i, ok := t.other[key]; ok {
		return i
	}
	if t.other == nil {
		t.other = make(map[string]uint32)
	}
	t.list = append(t.list, flagSet{flags: flagList(f, kws), kws: slices.Clip(append([]string(nil), kws...))})
	i := uint32(len(t.list) - 1)
	t.other[key] = i
	return i
}

// current reports whether the view's flags are those in storage: no change
// to the mailbox was committed since the view was last brought up to date.
// Storage publishes a commit's events before the writer returns, so a change
// any session has completed shows here. Events are drained as Poll does;
// Poll then finds the view dirty.
func (s *session) current() bool {
	sel := s.sel
	if s.sub != nil {
		events, lost := s.sub.Drain()
		if lost {
			sel.dirty = true
		}
		for _, e := range events {
			if e.MailboxID == sel.id {
				sel.dirty = true
				break
			}
		}
	}
	return !sel.dirty
}

var systemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

func (s *session) Select(name string, o *imap.SelectOptions) (*imap.SelectData, error) {
	if h := s.srv.testHook; h != nil {
		h(name)
	}
	s.sel = nil
	mb, err := s.mailbox(name)
	if err != nil {
		return nil, err
	}
	// Events before the view was read are part of it.
	s.sub.Drain()
	v, err := s.srv.opts.Store.CachedView(s.ctx, mb.ID)
	if err != nil {
		return nil, s.storeError("select", err)
	}
	sel := &selected{
		id:          v.ID,
		name:        v.Name,
		uidValidity: v.UIDValidity,
		readOnly:    o.ReadOnly,
		uids:        v.UIDs,
		flags:       v.Flags,
		kws:         v.Keywords,
		sharedUIDs:  true,
		sharedKws:   true,
		modseq:      v.HighestModSeq,
		gone:        make(map[uint32]bool),
		echoed:      make(map[uint32]int64),
	}
	s.sel = sel
	perm := append([]imap.Flag(nil), systemFlags...)
	perm = append(perm, imap.FlagWildcard)
	if o.ReadOnly {
		perm = []imap.Flag{}
	}
	d := &imap.SelectData{
		Flags:          systemFlags,
		PermanentFlags: perm,
		NumMessages:    uint32(len(v.UIDs)),
		UIDNext:        imap.UID(v.UIDNext),
		UIDValidity:    v.UIDValidity,
	}
	if v.FirstUnseenUID != 0 {
		d.FirstUnseenSeqNum = sel.seqOf(v.FirstUnseenUID)
	}
	return d, nil
}

func (s *session) Unselect() error {
	s.sel = nil
	return nil
}

// Poll tells the client what changed in the selected mailbox since it last
// heard (RFC 9051 §7): expunges first (when allowed), then flag changes,
// then new messages.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.sub == nil {
		return nil
	}
	events, lost := s.sub.Drain()
	sel := s.sel
	if sel == nil {
		return nil
	}
	for _, e := range events {
		if e.MailboxID == sel.id {
			sel.dirty = true
			break
		}
	}
	if lost {
		sel.dirty = true
	}
	if !sel.dirty && !(allowExpunge && len(sel.gone) > 0) {
		return nil
	}
	return s.sync(w, allowExpunge)
}

func (s *session) sync(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel := s.sel
	if sel.dirty {
		c, err := s.srv.opts.Store.ChangesSince(s.ctx, sel.id, sel.modseq)
		if errors.Is(err, storage.ErrNotFound) {
			// The mailbox was deleted or renamed away under us.
			s.sel = nil
			return s.conn.Bye("Selected mailbox was deleted")
		} else if err != nil {
			return s.storeError("poll", err)
		}
		sel.dirty = false
		sel.modseq = c.ModSeq
		for _, uid := range c.Expunged {
			if sel.seqOf(uid) != 0 {
				sel.gone[uid] = true
			}
		}
		var last uint32
		if n := len(sel.uids); n > 0 {
			last = sel.uids[n-1]
		}
		// The view's flags first, all of them, then what to tell.
		var added []uint32
		var addedFlags []storage.Flags
		changed := make([]uint32, len(c.Changed)) // seq of c.Changed[i], 0 if none
		for i := range c.Changed {
			m := &c.Changed[i]
			if m.UID > last {
				added = append(added, m.UID)
				addedFlags = append(addedFlags, m.Flags)
			} else if seq := sel.seqOf(m.UID); seq != 0 {
				sel.ownUIDs()
				sel.flags[seq-1] = m.Flags
				changed[i] = seq
			} else {
				continue
			}
			sel.setKeywords(m.UID, m.Flags, m.Keywords)
		}
		for i, seq := range changed {
			m := &c.Changed[i]
			if seq == 0 || sel.gone[m.UID] {
				continue
			}
			if ms, ok := sel.echoed[m.UID]; ok && ms >= m.ModSeq {
				continue
			}
			if err := w.WriteMessageFlags(seq, imap.UID(m.UID), sel.flagsOf(seq)); err != nil {
				return err
			}
		}
		clear(sel.echoed)
		if allowExpunge {
			if err := s.flushGone(w.WriteExpunge); err != nil {
				return err
			}
		}
		if len(added) > 0 {
			sel.uids = append(sel.uids, added...)
			sel.flags = append(sel.flags, addedFlags...)
			if err := w.WriteNumMessages(uint32(len(sel.uids))); err != nil {
				return err
			}
		}
		return nil
	}
	if allowExpunge {
		return s.flushGone(w.WriteExpunge)
	}
	return nil
}

// flushGone tells the client of the expunges held back, in ascending UID
// order, each sequence number as it stands when sent.
func (s *session) flushGone(write func(uint32) error) error {
	sel := s.sel
	if len(sel.gone) == 0 {
		return nil
	}
	uids := make([]uint32, 0, len(sel.gone))
	for u := range sel.gone {
		uids = append(uids, u)
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	for _, u := range uids {
		delete(sel.gone, u)
		seq := sel.seqOf(u)
		if seq == 0 {
			continue
		}
		sel.remove(seq)
		if err := write(seq); err != nil {
			return err
		}
	}
	return nil
}

// Idle sends changes as they happen until the client says DONE, or until
// the idle timeout, when the connection is closed.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if err := s.Poll(w, true); err != nil {
		return err
	}
	timer := time.NewTimer(s.srv.opts.IdleTimeout)
	defer timer.Stop()
	for {
		select {
		case <-s.sub.C:
			if err := s.Poll(w, true); err != nil {
				return err
			}
		case <-stop:
			return nil
		case <-timer.C:
			return s.conn.Bye("Idle for too long")
		case <-s.ctx.Done():
			return nil
		}
	}
}

// resolve turns a sequence or UID set into (seq, uid) pairs of the view, in
// ascending order, leaving out messages already expunged in storage.
func (s *session) resolve(set imap.NumSet) (seqs []uint32, uids []uint32) {
	sel := s.sel
	n := uint32(len(sel.uids))
	if n == 0 {
		return nil, nil
	}
	add := func(lo, hi uint32) { // sequence numbers, inclusive, 1-based
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo < 1 {
			lo = 1
		}
		if hi > n {
			hi = n
		}
		for q := lo; q <= hi; q++ {
			seqs = append(seqs, q)
		}
	}
	switch set := set.(type) {
	case imap.SeqSet:
		for _, r := range set {
			lo, hi := r.Start, r.Stop
			if lo == 0 {
				lo = n
			}
			if hi == 0 {
				hi = n
			}
			add(lo, hi)
		}
	case imap.UIDSet:
		maxUID := sel.uids[n-1]
		for _, r := range set {
			lo, hi := uint32(r.Start), uint32(r.Stop)
			if lo == 0 {
				lo = maxUID
			}
			if hi == 0 {
				hi = maxUID
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			i := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] >= lo })
			j := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] > hi })
			if i < j {
				add(uint32(i+1), uint32(j))
			}
		}
	}
	slices.Sort(seqs)
	out := seqs[:0]
	for i, q := range seqs {
		if i > 0 && q == seqs[i-1] {
			continue
		}
		if sel.gone[sel.uids[q-1]] {
			continue
		}
		out = append(out, q)
	}
	seqs = out
	uids = make([]uint32, len(seqs))
	for i, q := range seqs {
		uids[i] = sel.uids[q-1]
	}
	return seqs, uids
}

func (s *session) Expunge(w *imapserver.ExpungeWriter, set *imap.UIDSet) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	var uids []uint32
	if set != nil {
		_, uids = s.resolve(*set)
		if len(uids) == 0 {
			return nil
		}
	}
	done, err := s.srv.opts.Store.Expunge(s.ctx, sel.id, uids)
	if err != nil {
		return s.storeError("expunge", err)
	}
	for _, u := range done {
		if seq := sel.seqOf(u); seq != 0 {
			delete(sel.gone, u)
			sel.remove(seq)
			if err := w.WriteExpunge(seq); err != nil {
				return err
			}
		}
	}
	return nil
}
