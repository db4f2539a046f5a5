package imap

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"pombo/storage"
)

// headerCache serves BODY[HEADER], BODY[HEADER.FIELDS (...)] and
// BODY[HEADER.FIELDS.NOT (...)] of whole messages (no part number) for one
// FETCH: the message list of every client asks for these over many messages
// at once (Thunderbird: the newest 50 at each folder check). The rows of
// such a FETCH are read with their header sections, in one query per batch
// (eachHeaderRow), instead of opening each message and reading its first
// chunk. What it cannot serve (a part's header, a header over
// storage.MaxHeaderSection) goes the general way.
type headerCache struct {
	// The header of the message being written, set by eachHeaderRow.
	uid    uint32
	raw    []byte
	hasRaw bool
	// The field lists of the FETCH, compiled once for all its messages.
	sets []secFields
	// buf holds the last filtered header: region's data is written out
	// before region is called again.
	buf []byte
}

type secFields struct {
	sec *imap.FetchItemBodySection
	fs  *fieldSet
	// wire is sec as WriteBodySection is to name it, or nil (see
	// wireSection).
	wire *imap.FetchItemBodySection
}

// newHeaderCache returns a cache for a FETCH with options o, or nil when o
// asks for no header section of a whole message.
func newHeaderCache(o *imap.FetchOptions) *headerCache {
	var h *headerCache
	for _, sec := range o.BodySection {
		if !wholeHeader(sec) {
			continue
		}
		if h == nil {
			h = &headerCache{}
		}
		if len(sec.HeaderFields) > 0 || len(sec.HeaderFieldsNot) > 0 {
			h.sets = append(h.sets, secFields{sec, newFieldSet(sec.HeaderFields, sec.HeaderFieldsNot), wireSection(sec)})
		}
	}
	return h
}

func wholeHeader(sec *imap.FetchItemBodySection) bool {
	return len(sec.Part) == 0 && sec.Specifier == imap.PartSpecifierHeader
}

// section returns the section to name in the response for sec: go-imap
// writes a HEADER.FIELDS section with its field names quoted one by one,
// once per message; one compiled by newHeaderCache, named once for the
// whole FETCH, writes the same octets.
func (h *headerCache) section(sec *imap.FetchItemBodySection) *imap.FetchItemBodySection {
	if h != nil {
		if s := h.setOf(sec); s != nil && s.wire != nil {
			return s.wire
		}
	}
	return sec
}

// setOf returns what newHeaderCache compiled for sec, or nil.
func (h *headerCache) setOf(sec *imap.FetchItemBodySection) *secFields {
	for i := range h.sets {
		if h.sets[i].sec == sec {
			return &h.sets[i]
		}
	}
	return nil
}

// wireSection returns a section that go-imap's writeItemBodySection writes
// as it does sec, a HEADER.FIELDS (or .NOT) section of a whole message, its
// field list included in its Specifier, which is written as is; nil when a
// field name is not what it would write as a plain quoted string (it would
// write a literal, or the choice would depend on UTF8=ACCEPT). Part is
// empty, and Partial and Peek are kept: the writer reads them as for sec.
// An obsolete form (RFC822.HEADER), which go-imap knows by its pointer, has
// no field list and is never replaced.
func wireSection(sec *imap.FetchItemBodySection) *imap.FetchItemBodySection {
	names, kw := sec.HeaderFields, ".FIELDS ("
	if len(names) == 0 {
		names, kw = sec.HeaderFieldsNot, ".FIELDS.NOT ("
	}
	if len(sec.Part) != 0 || len(names) == 0 {
		return nil
	}
	b := append([]byte(sec.Specifier), kw...)
	for i, n := range names {
		if len(n) > 4096 {
			return nil
		}
		if i > 0 {
			b = append(b, ' ')
		}
		// RFC 9051 §4.3: a quoted string escapes DQUOTE and backslash.
		b = append(b, '"')
		for j := 0; j < len(n); j++ {
			switch c := n[j]; {
			case c == 0 || c == '\r' || c == '\n' || c >= utf8.RuneSelf:
				return nil
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			default:
				b = append(b, c)
			}
		}
		b = append(b, '"')
	}
	w := *sec
	w.Specifier = imap.PartSpecifier(append(b, ')'))
	w.HeaderFields, w.HeaderFieldsNot = nil, nil
	return &w
}

// region returns what sec designates for row when the cache can tell; ok
// false sends the caller the general way (sectionRegion). The data is valid
// until the next call.
func (h *headerCache) region(row *storage.FetchRow, sec *imap.FetchItemBodySection) (reg region, ok bool) {
	if h == nil || !wholeHeader(sec) || !h.hasRaw || h.uid != row.UID {
		return region{}, false
	}
	// RFC 9051 §6.4.5: HEADER is the header section with its blank line.
	if len(sec.HeaderFields) == 0 && len(sec.HeaderFieldsNot) == 0 {
		return region{isData: true, data: h.raw}, true
	}
	var fs *fieldSet
	if s := h.setOf(sec); s != nil {
		fs = s.fs
	} else {
		fs = newFieldSet(sec.HeaderFields, sec.HeaderFieldsNot)
	}
	h.buf = fs.filter(h.buf[:0], h.raw)
	return region{isData: true, data: h.buf}, true
}

// eachHeaderRow is eachRow for a FETCH that h serves: each batch of rows
// comes with the header sections of its messages, from one query, and h
// holds the header of the row fn is called with.
func (s *session) eachHeaderRow(h *headerCache, mailboxID int64, uids, seqs []uint32, what storage.FetchFields, fn func(seq uint32, row *storage.FetchRow) error) error {
	read := func(batch []uint32) ([]storage.HeaderRow, error) {
		rows, err := s.srv.opts.Store.FetchRowsWithHeaders(s.ctx, mailboxID, batch, what)
		if err != nil {
			return nil, s.storeError("fetch", err)
		}
		return rows, nil
	}
	uidOf := func(r *storage.HeaderRow) uint32 { return r.UID }
	err := inBatches(uids, seqs, fetchBatch, read, uidOf, func(seq uint32, row *storage.HeaderRow) error {
		h.uid, h.raw, h.hasRaw = row.UID, row.Header, row.HasHeader
		return fn(seq, &row.FetchRow)
	})
	h.raw, h.hasRaw = nil, false
	return err
}

// fieldSet is the field names of one HEADER.FIELDS or HEADER.FIELDS.NOT,
// matched as strings.EqualFold does. Field names are ASCII, and so is
// nearly every name a message has: those compare byte by byte, ASCII
// letters folded, without building a string; any other name goes through
// strings.EqualFold (which folds more than ASCII, e.g. the Kelvin sign
// with K).
type fieldSet struct {
	names []string // as asked
	not   bool
	ascii bool // every name is ASCII
	// When ascii: the names in lower case by their length, those of 64
	// octets and more in long.
	byLen [64][]string
	long  []string
}

func newFieldSet(fields, not []string) *fieldSet {
	fs := &fieldSet{names: fields, ascii: true}
	if len(fields) == 0 {
		fs.names, fs.not = not, true
	}
	for _, n := range fs.names {
		if !isASCII(n) {
			fs.ascii = false
		}
		if l := strings.ToLower(n); len(n) < len(fs.byLen) {
			fs.byLen[len(n)] = append(fs.byLen[len(n)], l)
		} else {
			fs.long = append(fs.long, l)
		}
	}
	return fs
}

func isASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// has reports whether name is one of the names, folding case.
func (fs *fieldSet) has(name []byte) bool {
	if fs.ascii && isASCII(name) {
		cands := fs.long
		if len(name) < len(fs.byLen) {
			cands = fs.byLen[len(name)]
		}
		for _, n := range cands {
			if len(n) == len(name) && equalLowerASCII(n, name) {
				return true
			}
		}
		return false
	}
	s := string(name)
	for _, n := range fs.names {
		if strings.EqualFold(n, s) {
			return true
		}
	}
	return false
}

// equalLowerASCII reports whether b, its ASCII letters in lower case, is
// lower, an ASCII string in lower case of the same length.
func equalLowerASCII(lower string, b []byte) bool {
	for i := 0; i < len(lower); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// filter appends to dst the fields of the header section raw that fs keeps
// (named, or with not, not named), each with its continuation lines, and
// the blank line that ends a header section (RFC 9051 §6.4.5). A line that
// is no field (no colon) is dropped with its continuation lines. The
// header ends at its first line made only of CR and LF, or at its end.
func (fs *fieldSet) filter(dst, raw []byte) []byte {
	keep := false
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i+1], raw[i+1:]
		} else {
			raw = nil
		}
		if blankLine(line) {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			// A colon is never among the CR and LF that end line.
			c := bytes.IndexByte(line, ':')
			keep = c >= 0 && fs.has(trimSpaceRight(line[:c])) != fs.not
		}
		if keep {
			dst = append(dst, line...)
		}
	}
	return append(dst, '\r', '\n')
}

// trimSpaceRight is bytes.TrimRight(b, " \t"), without building a set.
func trimSpaceRight(b []byte) []byte {
	n := len(b)
	for n > 0 && (b[n-1] == ' ' || b[n-1] == '\t') {
		n--
	}
	return b[:n]
}

// blankLine reports whether line is only CR and LF octets.
func blankLine(line []byte) bool {
	for _, c := range line {
		if c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// filterHeader keeps (or drops, with not) the named fields of a header
// section, each with its continuation lines, and ends with the blank line
// (RFC 9051 §6.4.5).
func filterHeader(raw []byte, fields, not []string) []byte {
	return newFieldSet(fields, not).filter(nil, raw)
}
