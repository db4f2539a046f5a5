package imap

import (
	"context"
	"io"

	"github.com/emersion/go-imap/v2"

	"pombo/storage"
)

// FilterHeader is filterHeader, for the tests of package imap_test.
func FilterHeader(raw []byte, fields, not []string) []byte { return filterHeader(raw, fields, not) }

// HeaderSectionPaths returns what BODY[sec] of the messages uids of a
// mailbox is, the two ways FETCH may find it: fast, from the header the
// rows of a message list come with (eachHeaderRow and headerCache); and
// general, from the message opened (sectionRegion), as for a message the
// fast way cannot serve. A message the fast way did not serve is absent
// from fast.
func HeaderSectionPaths(ctx context.Context, st *storage.Store, mailboxID int64, uids []uint32, sec *imap.FetchItemBodySection) (fast, general map[uint32][]byte, err error) {
	fast, general = map[uint32][]byte{}, map[uint32][]byte{}
	h := newHeaderCache(&imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}})
	rows, err := st.FetchRowsWithHeaders(ctx, mailboxID, uids, 0)
	if err != nil {
		return nil, nil, err
	}
	for i := range rows {
		row := &rows[i]
		h.uid, h.raw, h.hasRaw = row.UID, row.Header, row.HasHeader
		if reg, ok := h.region(&row.FetchRow, sec); ok {
			fast[row.UID] = append([]byte(nil), reg.data...)
		}
		m, err := st.OpenMessage(ctx, row.ID)
		if err != nil {
			return nil, nil, err
		}
		reg, err := sectionRegion(m, &row.FetchRow, sec)
		if err == nil && !reg.isData {
			_, err = m.Seek(reg.start, io.SeekStart)
			if err == nil {
				reg.data, err = io.ReadAll(io.LimitReader(m, reg.end-reg.start))
			}
		}
		m.Close()
		if err != nil {
			return nil, nil, err
		}
		general[row.UID] = reg.data
	}
	return fast, general, nil
}

// FieldFilter is the filter a FETCH compiles once for its HEADER.FIELDS
// (or, with not, HEADER.FIELDS.NOT) and applies to each message.
func FieldFilter(fields, not []string) func(dst, raw []byte) []byte {
	return newFieldSet(fields, not).filter
}
