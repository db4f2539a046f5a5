package storage

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FetchRowsWithHeaders gives the rows FetchRowsOf gives and the header
// sections of the messages, as a whole read of each message has them, in
// one query: over blobs of both layouts, with flags and keywords, a message
// expunged, a header over MaxHeaderSection, a message without a header, one
// whose chunk 0 is gone, for a range of UIDs, a list with gaps and a range
// past the end.
func TestFetchRowsWithHeaders(t *testing.T) {
	msgs := corpusMessages(t)[:40]
	msgs = append(msgs,
		[]byte("From: a@example.org\r\nX-Big: "+strings.Repeat("y", MaxHeaderSection)+"\r\nSubject: big\r\n\r\nbody\r\n"),
		[]byte("\r\nno header\r\n"),
		[]byte("Subject: no blank line"),
		[]byte("Subject: chunk 0 lost\r\n\r\nbody\r\n"))
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	var uids []uint32
	var mbox int64
	whole := map[uint32][]byte{} // each message as a client reads it
	for i, m := range msgs {
		d := deliverCase(t, s, u.ID, m)
		if i < 40 {
			blobID, _ := blobOf(t, s, d.MessageID)
			rewrite(t, s, blobID, readAll(t, s, d.MessageID)[len(testPrefix):], i%2 == 0)
		}
		uids = append(uids, d.UID)
		mbox = d.MailboxID
		whole[d.UID] = readAll(t, s, d.MessageID)
	}
	if _, err := s.SetFlags(ctx, mbox, uids[3:9], FlagsAdd, FlagSeen|FlagFlagged, []string{"$Label1", "Junk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetFlags(ctx, mbox, uids[5:6], FlagsAdd, FlagDeleted, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, mbox, uids[5:6]); err != nil {
		t.Fatal(err)
	}
	lost := uids[len(uids)-1]
	if err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.exec("DELETE FROM blob_chunks WHERE seq = 0 AND blob_id = (SELECT blob_id FROM messages WHERE mailbox_id = ? AND uid = ?)", mbox, lost)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	gaps, past := gapsAndPast(uids)
	served := 0
	for _, c := range []struct {
		name string
		uids []uint32
	}{{"range", uids}, {"gaps", gaps}, {"past the end", past}, {"one", uids[7:8]}} {
		for _, what := range []FetchFields{0, FetchInternalDate | FetchSize, FetchMessage | FetchEnvelope | FetchBody} {
			got, err := s.FetchRowsWithHeaders(ctx, mbox, c.uids, what)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := s.FetchRowsOf(ctx, mbox, c.uids, what|FetchContent)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(rows) {
				t.Fatalf("%s, %b: %d rows, want %d", c.name, what, len(got), len(rows))
			}
			for i := range got {
				g := &got[i]
				if !reflect.DeepEqual(g.FetchRow, rows[i]) {
					t.Fatalf("%s, %b: row %d:\n%+v\nwant\n%+v", c.name, what, i, g.FetchRow, rows[i])
				}
				// Served unless too large or chunk 0 is gone, and then the
				// start of the message, as long as its header section.
				h := whole[g.UID][:rows[i].HeaderSize]
				ok := len(h) <= MaxHeaderSection && g.UID != lost
				if !ok {
					h = nil
				}
				if g.HasHeader != ok || !bytes.Equal(g.Header, h) {
					t.Fatalf("%s, %b: UID %d: header %v %.100q, want %v %.100q", c.name, what, g.UID, g.HasHeader, g.Header, ok, h)
				}
				if ok {
					served++
				}
			}
		}
	}
	// The reference itself: all but the big header and the lost chunk are
	// served, and the expunged message is absent.
	all, err := s.FetchRowsWithHeaders(ctx, mbox, uids, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range all {
		if r.UID == uids[5] {
			t.Fatal("expunged message read")
		}
		if r.HasHeader {
			n++
		} else if r.UID != uids[40] && r.UID != lost {
			t.Errorf("UID %d: header not served", r.UID)
		}
	}
	if n != len(uids)-3 || served == 0 {
		t.Fatalf("%d headers served, want %d", n, len(uids)-3)
	}
}

// headerSections returns the header sections FetchRowsWithHeaders serves
// for uids, by UID: the tests of the header layouts check them against
// the bytes stored.
func (s *Store) headerSections(ctx context.Context, mailboxID int64, uids []uint32) (map[uint32][]byte, error) {
	rows, err := s.FetchRowsWithHeaders(ctx, mailboxID, uids, 0)
	if err != nil {
		return nil, err
	}
	out := make(map[uint32][]byte, len(rows))
	for _, r := range rows {
		if r.HasHeader {
			out[r.UID] = r.Header
		}
	}
	return out, nil
}

// gapsAndPast returns two batches made of the ascending uids, beside the
// plain range: every third one left out (read as a list), and all of them
// with two UIDs past the last (a range that runs past the end).
func gapsAndPast(uids []uint32) (gaps, past []uint32) {
	for i, u := range uids {
		if i%3 != 1 {
			gaps = append(gaps, u)
		}
	}
	last := uids[len(uids)-1]
	return gaps, append(slices.Clone(uids), last+1, last+2)
}
