package imap

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"mime/quotedprintable"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"pombo/storage"
)

// fetchBatch bounds the rows read at once with their header sections
// (eachHeaderRow): up to storage.MaxHeaderSection each.
const fetchBatch = 256

// rowBatch bounds the rows eachRow reads from storage at once. Each batch
// is a query to set up: with 256, that was ~18% of storage's share of
// FETCH 1:* (ENVELOPE) on 100,000 messages, ~5% with 1024; 1024 rows of
// stored ENVELOPE and BODYSTRUCTURE stay within a few MB.
const rowBatch = 1024

// maxHeaderRead bounds a header section read whole (HEADER.FIELDS).
const maxHeaderRead = 1 << 20

func (s *session) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	sel := s.sel
	seqs, uids := s.resolve(set)
	if len(uids) == 0 {
		return nil
	}
	// BODY[...] without PEEK sets \Seen (RFC 9051 §6.4.5), before the data
	// goes out; the response then carries the new FLAGS.
	seen := map[uint32]storage.FlagUpdate{}
	if !sel.readOnly && setsSeen(o) {
		ups, err := s.srv.opts.Store.SetFlags(s.ctx, sel.id, uids, storage.FlagsAdd, storage.FlagSeen, nil)
		if err != nil {
			return s.storeError("fetch", err)
		}
		for _, u := range ups {
			seen[u.UID] = u
			sel.echoed[u.UID] = u.ModSeq
		}
	}
	// FLAGS come from the view when no change is pending for it (the common
	// case, and always for a session alone on its mailbox); otherwise from
	// storage, which is newer.
	viewFlags := len(seen) == 0 && s.current()
	what := fetchFields(o)
	if (o.Flags || len(seen) > 0) && !viewFlags {
		what |= storage.FetchFlags
	}
	if what == 0 {
		// UID and FLAGS only: the view has them all.
		for i, seq := range seqs {
			rw := w.CreateMessage(seq)
			if o.UID {
				rw.WriteUID(imap.UID(uids[i]))
			}
			if o.Flags {
				rw.WriteFlags(sel.flagsOf(seq))
			}
			if err := rw.Close(); err != nil {
				return err
			}
		}
		return nil
	}
	f := &fetchState{o: o, hc: newHeaderCache(o)}
	if o.Envelope {
		f.envs = new(envelopes)
	}
	one := func(seq uint32, row *storage.FetchRow) error {
		_, changed := seen[row.UID]
		withFlags := o.Flags || changed
		var flags []imap.Flag
		if withFlags && viewFlags {
			flags = sel.flagsOf(seq)
		} else if withFlags {
			flags = flagList(row.Flags, row.Keywords)
		}
		return s.fetchOne(w, seq, row, f, withFlags, flags)
	}
	if f.hc != nil {
		return s.eachHeaderRow(f.hc, sel.id, uids, seqs, what, one)
	}
	return s.eachRow(sel.id, uids, seqs, what, "fetch", one)
}

// fetchState is what the messages of one FETCH share.
type fetchState struct {
	o    *imap.FetchOptions
	hc   *headerCache
	envs *envelopes // nil without ENVELOPE
}

// fetchFields returns what storage must read for the items of o, FLAGS
// left out.
func fetchFields(o *imap.FetchOptions) storage.FetchFields {
	var what storage.FetchFields
	if o.InternalDate {
		what |= storage.FetchInternalDate
	}
	if o.RFC822Size {
		what |= storage.FetchSize
	}
	if o.Envelope {
		what |= storage.FetchEnvelope
	}
	if o.BodyStructure != nil {
		what |= storage.FetchBody
	}
	if len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 {
		what |= storage.FetchContent
	}
	return what
}

// eachRow reads the rows of uids from storage in batches, with the fields
// in what, and calls fn with each row and its sequence number (seqs[i] is
// that of uids[i]); UIDs expunged meanwhile are skipped.
func (s *session) eachRow(mailboxID int64, uids, seqs []uint32, what storage.FetchFields, op string, fn func(seq uint32, row *storage.FetchRow) error) error {
	read := func(batch []uint32) ([]storage.FetchRow, error) {
		rows, err := s.srv.opts.Store.FetchRowsOf(s.ctx, mailboxID, batch, what)
		if err != nil {
			return nil, s.storeError(op, err)
		}
		return rows, nil
	}
	uidOf := func(r *storage.FetchRow) uint32 { return r.UID }
	return inBatches(uids, seqs, rowBatch, read, uidOf, fn)
}

// inBatches reads the rows of uids (ascending) batch by batch with read,
// and calls fn with each and its sequence number (seqs[i] is that of
// uids[i]). Rows read must be in the order of uids; those of UIDs expunged
// meanwhile are missing, and skipped.
func inBatches[R any](uids, seqs []uint32, batch int, read func([]uint32) ([]R, error), uidOf func(*R) uint32, fn func(seq uint32, row *R) error) error {
	for i := 0; i < len(uids); i += batch {
		j := min(i+batch, len(uids))
		rows, err := read(uids[i:j])
		if err != nil {
			return err
		}
		k := i
		for r := range rows {
			row := &rows[r]
			for k < j && uids[k] != uidOf(row) {
				k++
			}
			if k == j {
				break
			}
			if err := fn(seqs[k], row); err != nil {
				return err
			}
		}
	}
	return nil
}

func setsSeen(o *imap.FetchOptions) bool {
	for _, b := range o.BodySection {
		if !b.Peek {
			return true
		}
	}
	for _, b := range o.BinarySection {
		if !b.Peek {
			return true
		}
	}
	return false
}

// fetchOne writes the items of f.o for one message, and FLAGS (flags) when
// withFlags.
func (s *session) fetchOne(w *imapserver.FetchWriter, seq uint32, row *storage.FetchRow, f *fetchState, withFlags bool, flags []imap.Flag) error {
	o := f.o
	rw := w.CreateMessage(seq)
	if o.UID {
		rw.WriteUID(imap.UID(row.UID))
	}
	if withFlags {
		rw.WriteFlags(flags)
	}
	if o.InternalDate {
		rw.WriteInternalDate(row.InternalDate)
	}
	if o.RFC822Size {
		rw.WriteRFC822Size(row.Size)
	}
	if o.Envelope {
		env, err := f.envs.of(row)
		if err != nil {
			rw.Close()
			return s.storeError("fetch", err)
		}
		rw.WriteEnvelope(env)
	}
	if o.BodyStructure != nil {
		body, err := row.Body()
		if err != nil {
			rw.Close()
			return s.storeError("fetch", err)
		}
		rw.WriteBodyStructure(toBodyStructure(body))
	}
	if len(o.BodySection) > 0 || len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0 {
		if err := s.writeSections(rw, row, f); err != nil {
			rw.Close()
			return err
		}
	}
	return rw.Close()
}

// writeSections writes the body sections of f.o for one message, opening
// the message when one needs it.
func (s *session) writeSections(rw *imapserver.FetchResponseWriter, row *storage.FetchRow, f *fetchState) error {
	var msg *storage.BlobReader
	open := func() (*storage.BlobReader, error) {
		if msg == nil {
			var err error
			msg, err = s.srv.opts.Store.OpenMessage(s.ctx, row.ID)
			if err != nil {
				return nil, err
			}
		}
		return msg, nil
	}
	defer func() {
		if msg != nil {
			msg.Close()
		}
	}()
	for _, sec := range f.o.BodySection {
		if err := s.writeSection(rw, sec, row, open, f.hc); err != nil {
			return err
		}
	}
	for _, sec := range f.o.BinarySection {
		if err := s.writeBinary(rw, sec, row, open); err != nil {
			return err
		}
	}
	for _, sec := range f.o.BinarySectionSize {
		m, err := open()
		if err != nil {
			return s.storeError("fetch", err)
		}
		n, err := binarySize(m, row, sec.Part)
		if err != nil {
			return s.storeError("fetch", err)
		}
		rw.WriteBinarySectionSize(sec, uint32(min(n, 1<<32-1)))
	}
	return nil
}

// region is a byte range of the message, or literal bytes when data is set.
type region struct {
	start, end int64
	data       []byte
	isData     bool
}

var errNoPart = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such message part"}

// sectionRegion finds what BODY[section] designates.
func sectionRegion(m *storage.BlobReader, row *storage.FetchRow, sec *imap.FetchItemBodySection) (region, error) {
	size := row.Size
	hs := min(row.HeaderSize, size)
	var hdr, text, whole region
	if len(sec.Part) == 0 {
		hdr, text, whole = region{start: 0, end: hs}, region{start: hs, end: size}, region{start: 0, end: size}
		if sec.Specifier == imap.PartSpecifierMIME {
			return region{}, errNoPart
		}
	} else {
		if _, err := m.Seek(0, io.SeekStart); err != nil {
			return region{}, err
		}
		span, err := storage.LocatePart(m, sec.Part)
		if errors.Is(err, storage.ErrNotFound) {
			return region{}, errNoPart
		} else if err != nil {
			return region{}, err
		}
		switch sec.Specifier {
		case imap.PartSpecifierNone:
			return region{start: span.BodyStart, end: span.End}, nil
		case imap.PartSpecifierMIME:
			return region{start: span.HeaderStart, end: span.BodyStart}, nil
		}
		if span.MessageBodyStart < 0 {
			return region{}, errNoPart // HEADER and TEXT need a message/rfc822 part
		}
		hdr = region{start: span.BodyStart, end: span.MessageBodyStart}
		text = region{start: span.MessageBodyStart, end: span.End}
	}
	switch sec.Specifier {
	case imap.PartSpecifierNone:
		return whole, nil
	case imap.PartSpecifierText:
		return text, nil
	}
	// HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT
	if len(sec.HeaderFields) == 0 && len(sec.HeaderFieldsNot) == 0 {
		return hdr, nil
	}
	if _, err := m.Seek(hdr.start, io.SeekStart); err != nil {
		return region{}, err
	}
	raw, err := io.ReadAll(io.LimitReader(m, min(hdr.end-hdr.start, maxHeaderRead)))
	if err != nil {
		return region{}, err
	}
	return region{isData: true, data: filterHeader(raw, sec.HeaderFields, sec.HeaderFieldsNot)}, nil
}

func (s *session) writeSection(rw *imapserver.FetchResponseWriter, sec *imap.FetchItemBodySection, row *storage.FetchRow, open func() (*storage.BlobReader, error), hc *headerCache) error {
	// The header sections of a message list come from hc, read a batch at
	// a time; the rest from the message.
	var m *storage.BlobReader
	reg, ok := hc.region(row, sec)
	if !ok {
		var err error
		if m, err = open(); err != nil {
			return s.storeError("fetch", err)
		}
		reg, err = sectionRegion(m, row, sec)
		if err == errNoPart {
			// A part the message does not have reads as empty, as in Dovecot.
			reg = region{isData: true}
		} else if err != nil {
			return s.storeError("fetch", err)
		}
	}
	var err error
	var length int64
	if reg.isData {
		length = int64(len(reg.data))
	} else {
		length = max(reg.end-reg.start, 0)
	}
	off, n := int64(0), length
	if p := sec.Partial; p != nil {
		off = min(p.Offset, length)
		n = min(p.Size, length-off)
	}
	wc := rw.WriteBodySection(hc.section(sec), n)
	if reg.isData {
		_, err = wc.Write(reg.data[off : off+n])
	} else {
		if _, err = m.Seek(reg.start+off, io.SeekStart); err == nil {
			err = copyExactly(wc, m, n)
		}
	}
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyExactly writes n bytes from r; if r ends early (a message changed
// under us, which storage forbids) it pads, so the literal stays well-formed.
func copyExactly(w io.Writer, r io.Reader, n int64) error {
	c, err := io.CopyN(w, r, n)
	if err != nil && !errors.Is(err, io.EOF) {
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) {
			return err
		}
	}
	for c < n {
		k := min(n-c, 4096)
		if _, err := w.Write(make([]byte, k)); err != nil {
			return err
		}
		c += k
	}
	return nil
}

// decoded returns a reader of a part's content with its transfer encoding
// undone (RFC 3516 BINARY).
func decoded(m *storage.BlobReader, row *storage.FetchRow, part []int) (io.Reader, error) {
	if _, err := m.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if len(part) == 0 {
		return m, nil
	}
	span, err := storage.LocatePart(m, part)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoPart
	} else if err != nil {
		return nil, err
	}
	if _, err := m.Seek(span.BodyStart, io.SeekStart); err != nil {
		return nil, err
	}
	body := io.LimitReader(m, span.End-span.BodyStart)
	switch span.Part.Encoding {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &skipSpace{r: bufio.NewReader(body)}), nil
	case "quoted-printable":
		return quotedprintable.NewReader(body), nil
	case "", "7bit", "8bit", "binary":
		return body, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnknownCTE, Text: "Unknown Content-Transfer-Encoding"}
}

// skipSpace drops the line breaks and spaces of base64 text.
type skipSpace struct{ r *bufio.Reader }

func (s *skipSpace) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := s.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if c == '\r' || c == '\n' || c == ' ' || c == '\t' {
			continue
		}
		p[n] = c
		n++
	}
	return n, nil
}

// binarySize counts the decoded octets of a part; a decoding error ends
// the content where it happens, the same way for the count and the data.
func binarySize(m *storage.BlobReader, row *storage.FetchRow, part []int) (int64, error) {
	r, err := decoded(m, row, part)
	if err != nil {
		return 0, err
	}
	n, _ := io.Copy(io.Discard, r)
	return n, nil
}

func (s *session) writeBinary(rw *imapserver.FetchResponseWriter, sec *imap.FetchItemBinarySection, row *storage.FetchRow, open func() (*storage.BlobReader, error)) error {
	m, err := open()
	if err != nil {
		return s.storeError("fetch", err)
	}
	length, err := binarySize(m, row, sec.Part)
	if err == errNoPart {
		rw.WriteBinarySection(sec, 0).Close()
		return nil
	} else if err != nil {
		return s.storeError("fetch", err)
	}
	off, n := int64(0), length
	if p := sec.Partial; p != nil {
		off = min(p.Offset, length)
		n = min(p.Size, length-off)
	}
	r, err := decoded(m, row, sec.Part)
	if err != nil {
		return s.storeError("fetch", err)
	}
	wc := rw.WriteBinarySection(sec, n)
	if _, err = io.CopyN(io.Discard, r, off); err == nil || errors.Is(err, io.EOF) {
		err = copyExactly(wc, r, n)
	}
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}
