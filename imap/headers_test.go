package imap_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"pombo/storage"
)

// expectFields is an independent reading of RFC 9051 §6.4.5: the fields of
// the header section hdr whose names are (or, with not, are not) among
// names, each with its continuation lines, then a blank line.
func expectFields(hdr []byte, names []string, not bool) []byte {
	var out []byte
	keep := false
	for _, line := range bytes.SplitAfter(hdr, []byte("\n")) {
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the blank line, or the end
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, ok := strings.Cut(string(line), ":")
			name = strings.TrimRight(name, " \t")
			in := slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) })
			keep = ok && in != not
		}
		if keep {
			out = append(out, line...)
		}
	}
	return append(out, "\r\n"...)
}

// Thunderbird's message list asks for these.
var tbFields = []string{"From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "Priority", "X-Priority",
	"References", "Newsgroups", "In-Reply-To", "Content-Type", "Reply-To"}

// BODY[HEADER], BODY[HEADER.FIELDS (...)] and BODY[HEADER.FIELDS.NOT (...)]
// of whole messages are the exact bytes of the message, over more messages
// than one storage batch: corpus mail, folded fields, odd spacing before the
// colon, a message without a blank line, one with an empty header, one whose
// header is too large for the batched read, one with a trace prefix, and
// partial fetches.
func TestHeaderFieldsExact(t *testing.T) {
	e := start(t, nil)
	st := e.srv.Store
	msgs := corpus(t, 280)
	odd := []string{
		"From: a@example.org\r\nSubject: folded\r\n  over two\r\n\tlines\r\nX-Other: 1\r\nsubject: second one\r\n\r\nbody\r\n",
		"Subject : space before colon\r\nFrom:no space\r\nTo: t@example.test\r\n\r\n",
		"From: nobody@example.org\r\nSubject: no body and no blank line",
		"From: b@example.org\r\nSubject: header only\r\n",
		"\r\nbody without any header\r\n",
		"From: c@example.org\r\nX-Big: " + strings.Repeat("y", storage.MaxHeaderSection+100) + "\r\nSubject: big header\r\n\r\nbody\r\n",
		"From: d@example.org\r\nCONTENT-TYPE: text/plain\r\nMessage-Id: <x@y>\r\n\r\n\r\nbody after two blank lines\r\n",
	}
	for _, m := range odd {
		msgs = append(msgs, []byte(m))
	}
	deliverAll(t, st, e.userID, "INBOX", msgs)
	if _, err := st.Deliver(context.Background(), strings.NewReader("From: e@example.org\r\nSubject: traced\r\n\r\nx\r\n"),
		[]storage.Recipient{{UserID: e.userID, Prefix: []byte("Delivered-To: alice@example.test\r\nSubject: trace line\r\n")}},
		storage.DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	total := uint32(len(msgs) + 1)

	c := e.client(t, nil)
	selectBox(t, c, "INBOX")
	// The reference: each message whole, read the general way.
	whole := &imap.FetchItemBodySection{Peek: true}
	all, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != int(total) {
		t.Fatalf("%d messages, want %d", len(all), total)
	}
	// Where each header section ends is the parser's call (a line that is
	// no field ends it too); storage says where.
	mb, err := st.MailboxByName(context.Background(), e.userID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var uids []uint32
	for _, m := range all {
		uids = append(uids, uint32(m.UID))
	}
	rows, err := st.FetchRowsOf(context.Background(), mb.ID, uids, storage.FetchMessage)
	if err != nil || len(rows) != len(all) {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	hdrs, full := map[uint32][]byte{}, map[uint32][]byte{}
	for i, m := range all {
		msg := m.FindBodySection(whole)
		full[m.SeqNum] = msg
		if rows[i].UID != uint32(m.UID) || rows[i].HeaderSize > int64(len(msg)) {
			t.Fatalf("row %d: UID %d, header %d octets of %d", i, rows[i].UID, rows[i].HeaderSize, len(msg))
		}
		hdrs[m.SeqNum] = msg[:rows[i].HeaderSize]
	}
	if !bytes.HasPrefix(hdrs[total], []byte("Delivered-To: alice@example.test")) {
		t.Fatal("the trace prefix is not in the message")
	}

	secs := []*imap.FetchItemBodySection{
		{Specifier: imap.PartSpecifierHeader, Peek: true},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: tbFields, Peek: true},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"subject", "X-BIG"}, Peek: true},
		{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Received", "subject", "x-big"}, Peek: true},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Partial: &imap.SectionPartial{Offset: 3, Size: 10}, Peek: true},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"No-Such-Field"}, Peek: true},
	}
	for _, set := range []imap.NumSet{imap.SeqSet{{Start: 1, Stop: 0}}, imap.UIDSetNum(3, 7, 260, 261, imap.UID(total))} {
		got, err := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: secs}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			msg := hdrs[m.SeqNum]
			want := [][]byte{
				msg,
				expectFields(msg, tbFields, false),
				expectFields(msg, []string{"subject", "X-BIG"}, false),
				expectFields(msg, []string{"Received", "subject", "x-big"}, true),
				nil,
				[]byte("\r\n"),
			}
			subj := expectFields(msg, []string{"Subject"}, false)
			want[4] = subj[min(3, len(subj)):min(13, len(subj))]
			for i, sec := range secs {
				if g := m.FindBodySection(sec); !bytes.Equal(g, want[i]) {
					t.Fatalf("message %d, section %d: got %q\nwant %q", m.SeqNum, i, g, want[i])
				}
			}
		}
		if len(got) == 0 {
			t.Fatal("no messages fetched")
		}
	}
	// Spot checks that the reference itself is right (deliveries ran
	// concurrently: find the messages by their content).
	for marker, want := range map[string]string{
		"folded":                  "Subject: folded\r\n  over two\r\n\tlines\r\nsubject: second one\r\n\r\n",
		"space before colon":      "Subject : space before colon\r\n\r\n",
		"no blank line":           "Subject: no body and no blank line\r\n",
		"body without any header": "\r\n",
		"traced":                  "Subject: trace line\r\nSubject: traced\r\n\r\n",
	} {
		n := 0
		for seq, msg := range full {
			if bytes.Contains(msg, []byte(marker)) {
				n++
				if got := expectFields(hdrs[seq], []string{"Subject"}, false); string(got) != want {
					t.Errorf("%s: reference gives %q, want %q", marker, got, want)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: in %d messages", marker, n)
		}
	}
}

// UID SEARCH UNSEEN, SEEN and NOT SEEN follow \Seen as another session sets
// and clears it, and leave out what it expunged.
func TestSearchUnseenAcrossSessions(t *testing.T) {
	e := start(t, nil)
	for i := 0; i < 30; i++ {
		e.deliver(t, "INBOX", simpleMsg(fmt.Sprintf("m%d", i), "x"))
	}
	e.deliver(t, "Archive", simpleMsg("elsewhere", "unseen in another mailbox"))
	a, b := e.client(t, nil), e.client(t, nil)
	selectBox(t, a, "INBOX")
	selectBox(t, b, "INBOX")
	search := func(c *imap.SearchCriteria) []uint32 {
		t.Helper()
		d, err := a.UIDSearch(c, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		var out []uint32
		for _, u := range d.AllUIDs() {
			out = append(out, uint32(u))
		}
		return out
	}
	// The truth, as session b sees it.
	truth := func() (seen, unseen []uint32) {
		t.Helper()
		got, err := b.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			if slices.Contains(m.Flags, imap.FlagSeen) {
				seen = append(seen, uint32(m.UID))
			} else {
				unseen = append(unseen, uint32(m.UID))
			}
		}
		return seen, unseen
	}
	check := func(step string) {
		t.Helper()
		seen, unseen := truth()
		for _, tc := range []struct {
			name string
			c    imap.SearchCriteria
			want []uint32
		}{
			{"UNSEEN", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, unseen},
			{"SEEN", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, seen},
			{"NOT SEEN", imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}, unseen},
		} {
			if got := search(&tc.c); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %s: got %v, want %v", step, tc.name, got, tc.want)
			}
		}
	}
	store := func(set imap.UIDSet, op imap.StoreFlagsOp, f imap.Flag) {
		t.Helper()
		if err := b.Store(set, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{f}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	check("fresh")
	store(imap.UIDSetNum(1, 2, 3, 10, 30), imap.StoreFlagsAdd, imap.FlagSeen)
	check("seen by another session")
	store(imap.UIDSetNum(2, 10), imap.StoreFlagsDel, imap.FlagSeen)
	check("unseen again")
	store(imap.UIDSetNum(1, 4, 10, 11), imap.StoreFlagsAdd, imap.FlagDeleted)
	if err := b.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	check("expunged by another session")
	var rest imap.UIDSet
	rest.AddRange(1, 0)
	store(rest, imap.StoreFlagsAdd, imap.FlagSeen)
	check("all seen")
	if got := search(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}); len(got) != 0 {
		t.Fatalf("UNSEEN with all seen: %v", got)
	}
}
