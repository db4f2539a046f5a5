package imap

import (
	"errors"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"pombo/storage"
)

func (s *session) Store(w *imapserver.FetchWriter, set imap.NumSet, f *imap.StoreFlags, _ *imap.StoreOptions) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	seqs, uids := s.resolve(set)
	if len(uids) == 0 {
		return nil
	}
	flags, kws := splitFlags(f.Flags)
	op := storage.FlagsReplace
	switch f.Op {
	case imap.StoreFlagsAdd:
		op = storage.FlagsAdd
	case imap.StoreFlagsDel:
		op = storage.FlagsRemove
	}
	ups, err := s.srv.opts.Store.SetFlags(s.ctx, sel.id, uids, op, flags, kws)
	if err != nil {
		return s.storeError("store", err)
	}
	for _, u := range ups {
		sel.echoed[u.UID] = u.ModSeq
	}
	if f.Silent {
		return nil
	}
	// RFC 9051 §6.4.6: the new flags of every message named.
	_, isUID := set.(imap.UIDSet)
	return s.eachRow(sel.id, uids, seqs, storage.FetchFlags, "store", func(seq uint32, row *storage.FetchRow) error {
		rw := w.CreateMessage(seq)
		if isUID {
			rw.WriteUID(imap.UID(row.UID))
		}
		rw.WriteFlags(flagList(row.Flags, row.Keywords))
		return rw.Close()
	})
}

func (s *session) destination(name string) (*storage.Mailbox, error) {
	mb, err := s.srv.opts.Store.MailboxByName(s.ctx, s.userID, name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}
	} else if err != nil {
		return nil, s.storeError("copy", err)
	}
	return mb, nil
}

func copyData(uv uint32, pairs []storage.UIDPair) *imap.CopyData {
	if len(pairs) == 0 {
		return nil
	}
	d := &imap.CopyData{UIDValidity: uv}
	for _, p := range pairs {
		d.SourceUIDs.AddNum(imap.UID(p.Src))
		d.DestUIDs.AddNum(imap.UID(p.Dst))
	}
	return d
}

func (s *session) Copy(set imap.NumSet, dest string) (*imap.CopyData, error) {
	dst, err := s.destination(dest)
	if err != nil {
		return nil, err
	}
	_, uids := s.resolve(set)
	if len(uids) == 0 {
		return nil, nil
	}
	uv, pairs, err := s.srv.opts.Store.Copy(s.ctx, s.sel.id, uids, dst.ID)
	if err != nil {
		return nil, s.storeError("copy", err)
	}
	return copyData(uv, pairs), nil
}

// Move is RFC 6851 MOVE: COPYUID first, then the expunges.
func (s *session) Move(w *imapserver.MoveWriter, set imap.NumSet, dest string) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	dst, err := s.destination(dest)
	if err != nil {
		return err
	}
	_, uids := s.resolve(set)
	if len(uids) == 0 {
		return nil
	}
	uv, pairs, err := s.srv.opts.Store.Move(s.ctx, sel.id, uids, dst.ID)
	if err != nil {
		return s.storeError("move", err)
	}
	if d := copyData(uv, pairs); d != nil {
		if err := w.WriteCopyData(d); err != nil {
			return err
		}
	}
	for _, p := range pairs {
		if seq := sel.seqOf(p.Src); seq != 0 {
			delete(sel.gone, p.Src)
			sel.remove(seq)
			if err := w.WriteExpunge(seq); err != nil {
				return err
			}
		}
	}
	return nil
}

var errSearchRes = &imap.Error{Type: imap.StatusResponseTypeBad, Text: "SEARCHRES ($) is not supported"}

func (s *session) Search(kind imapserver.NumKind, c *imap.SearchCriteria, o *imap.SearchOptions) (*imap.SearchData, error) {
	sel := s.sel
	if o.ReturnSave {
		return nil, errSearchRes
	}
	sc, err := s.criteria(c, 0)
	if err != nil {
		return nil, err
	}
	var found []uint32
	switch {
	case len(sel.uids) == 0:
	case sc.FlagsOnly() && s.current():
		// UNSEEN and the like, at every folder check: the view holds the
		// flags of every message it shows, as storage has them.
		for i, u := range sel.uids {
			if sc.MatchFlags(u, sel.flags[i], sel.keywords(i)) {
				found = append(found, u)
			}
		}
	default:
		found, err = s.srv.opts.Store.Search(s.ctx, sel.id, sc)
		if err != nil {
			return nil, s.storeError("search", err)
		}
	}
	d := &imap.SearchData{}
	var seqSet imap.SeqSet
	var uidSet imap.UIDSet
	for _, u := range found {
		seq := sel.seqOf(u)
		if seq == 0 || sel.gone[u] {
			continue // not (or no longer) in the client's view
		}
		num := seq
		if kind == imapserver.NumKindUID {
			num = u
			uidSet.AddNum(imap.UID(u))
		} else {
			seqSet.AddNum(seq)
		}
		if d.Count == 0 {
			d.Min = num
		}
		d.Max = num
		d.Count++
	}
	if kind == imapserver.NumKindUID {
		if uidSet == nil {
			uidSet = imap.UIDSet{}
		}
		d.All = uidSet
	} else {
		if seqSet == nil {
			seqSet = imap.SeqSet{}
		}
		d.All = seqSet
	}
	return d, nil
}

// criteria translates go-imap search criteria to storage's, turning
// sequence numbers into UIDs of this session's view.
func (s *session) criteria(c *imap.SearchCriteria, depth int) (*storage.SearchCriteria, error) {
	if depth > storage.MaxSearchDepth {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeLimit, Text: "Search criteria nested too deeply"}
	}
	out := &storage.SearchCriteria{
		Since: c.Since, Before: c.Before, SentSince: c.SentSince, SentBefore: c.SentBefore,
		Body: c.Body, Text: c.Text, Larger: c.Larger, Smaller: c.Smaller,
	}
	for _, set := range c.SeqNum {
		_, uids := s.resolve(set)
		out.UIDSets = append(out.UIDSets, nonNil(storage.ToRanges(uids)))
	}
	for _, set := range c.UID {
		if imap.IsSearchRes(set) {
			return nil, errSearchRes
		}
		var rs []storage.UIDRange
		var maxUID uint32
		if n := len(s.sel.uids); n > 0 {
			maxUID = s.sel.uids[n-1]
		}
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
			rs = append(rs, storage.UIDRange{Start: lo, Stop: hi})
		}
		out.UIDSets = append(out.UIDSets, nonNil(rs))
	}
	for _, h := range c.Header {
		out.Header = append(out.Header, storage.HeaderMatch{Name: h.Key, Value: h.Value})
	}
	for _, f := range c.Flag {
		if f == imap.Flag(`\Recent`) {
			// No message is \Recent in pombo (RFC 9051 drops it).
			out.UIDSets = append(out.UIDSets, []storage.UIDRange{})
			continue
		}
		if b, ok := storage.ParseFlag(string(f)); ok {
			out.Flags |= b
		} else {
			out.Keywords = append(out.Keywords, string(f))
		}
	}
	for _, f := range c.NotFlag {
		if f == imap.Flag(`\Recent`) {
			continue
		}
		if b, ok := storage.ParseFlag(string(f)); ok {
			out.NotFlags |= b
		} else {
			out.NotKeywords = append(out.NotKeywords, string(f))
		}
	}
	for i := range c.Not {
		n, err := s.criteria(&c.Not[i], depth+1)
		if err != nil {
			return nil, err
		}
		out.Not = append(out.Not, *n)
	}
	for i := range c.Or {
		l, err := s.criteria(&c.Or[i][0], depth+1)
		if err != nil {
			return nil, err
		}
		r, err := s.criteria(&c.Or[i][1], depth+1)
		if err != nil {
			return nil, err
		}
		out.Or = append(out.Or, [2]storage.SearchCriteria{*l, *r})
	}
	if c.ModSeq != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "MODSEQ search needs CONDSTORE, which is not offered"}
	}
	return out, nil
}

func nonNil(rs []storage.UIDRange) []storage.UIDRange {
	if rs == nil {
		return []storage.UIDRange{}
	}
	return rs
}
