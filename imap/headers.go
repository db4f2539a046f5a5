package imap

import (
	"github.com/emersion/go-imap/v2"

	"pombo/storage"
)

// headerCache serves BODY[HEADER], BODY[HEADER.FIELDS (...)] and
// BODY[HEADER.FIELDS.NOT (...)] of whole messages (no part number) for one
// FETCH: the message list of every client asks for these over many messages
// at once (Thunderbird: the newest 50 at each folder check). Header sections
// are read a batch at a time with one query, instead of opening each message
// and reading its first chunk. What it cannot serve (a part's header, a
// header over storage.MaxHeaderSection) goes the general way.
type headerCache struct {
	s    *session
	uids []uint32 // of the FETCH, in the order rows come
	next int      // where in uids the next batch starts
	got  map[uint32][]byte
	err  error
}

// newHeaderCache returns a cache for the FETCH of uids with options o, or
// nil when o asks for no header section of a whole message.
func (s *session) newHeaderCache(o *imap.FetchOptions, uids []uint32) *headerCache {
	for _, sec := range o.BodySection {
		if wholeHeader(sec) {
			return &headerCache{s: s, uids: uids}
		}
	}
	return nil
}

func wholeHeader(sec *imap.FetchItemBodySection) bool {
	return len(sec.Part) == 0 && sec.Specifier == imap.PartSpecifierHeader
}

// region returns what sec designates for row when the cache can tell; ok
// false sends the caller the general way (sectionRegion).
func (h *headerCache) region(row *storage.FetchRow, sec *imap.FetchItemBodySection) (reg region, ok bool) {
	if h == nil || !wholeHeader(sec) || h.err != nil {
		return region{}, false
	}
	raw, ok := h.got[row.UID]
	if !ok {
		h.load(row.UID)
		if raw, ok = h.got[row.UID]; !ok {
			return region{}, false
		}
	}
	// RFC 9051 §6.4.5: HEADER is the header section with its blank line.
	if len(sec.HeaderFields) == 0 && len(sec.HeaderFieldsNot) == 0 {
		return region{isData: true, data: raw}, true
	}
	return region{isData: true, data: filterHeader(raw, sec.HeaderFields, sec.HeaderFieldsNot)}, true
}

// load reads the header sections of the batch of UIDs that starts at uid.
// An error is kept and makes every later message go the general way, which
// reports it.
func (h *headerCache) load(uid uint32) {
	i := h.next
	for i < len(h.uids) && h.uids[i] != uid {
		i++
	}
	if i == len(h.uids) { // not where rows were expected: look everywhere
		for i = 0; i < len(h.uids) && h.uids[i] != uid; i++ {
		}
		if i == len(h.uids) {
			return
		}
	}
	j := min(i+fetchBatch, len(h.uids))
	h.next = j
	h.got, h.err = h.s.srv.opts.Store.HeaderSections(h.s.ctx, h.s.sel.id, h.uids[i:j])
}
