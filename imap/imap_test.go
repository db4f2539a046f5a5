package imap_test

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestFetchItems(t *testing.T) {
	e := start(t, nil)
	e.deliver(t, "INBOX", multipartMsg)
	c := e.client(t, nil)
	d := selectBox(t, c, "INBOX")
	if d.NumMessages != 1 {
		t.Fatalf("EXISTS %d", d.NumMessages)
	}
	peek := &imap.FetchItemBodySection{Peek: true}
	hdr := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}
	part1 := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	part3hdr := &imap.FetchItemBodySection{Part: []int{3}, Specifier: imap.PartSpecifierHeader, Peek: true}
	part3text := &imap.FetchItemBodySection{Part: []int{3}, Specifier: imap.PartSpecifierText, Peek: true}
	part2mime := &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierMIME, Peek: true}
	partial := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 9}}
	bin := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure:     &imap.FetchItemBodyStructure{Extended: true},
		BodySection:       []*imap.FetchItemBodySection{peek, hdr, part1, part3hdr, part3text, part2mime, partial},
		BinarySection:     []*imap.FetchItemBinarySection{bin},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{2}}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.UID != 1 || len(m.Flags) != 0 || m.RFC822Size != int64(len(multipartMsg)) || m.InternalDate.IsZero() {
		t.Errorf("uid %d flags %v size %d date %v", m.UID, m.Flags, m.RFC822Size, m.InternalDate)
	}
	if m.Envelope.Subject != "Café report" || m.Envelope.From[0].Host != "example.org" || m.Envelope.MessageID != "m1@example.org" {
		t.Errorf("envelope %+v", m.Envelope)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 3 || mp.Subtype != "mixed" {
		t.Fatalf("bodystructure %#v", m.BodyStructure)
	}
	checks := map[*imap.FetchItemBodySection]string{
		peek:      multipartMsg,
		hdr:       "Subject: =?utf-8?q?Caf=C3=A9?= report\r\n\r\n",
		part1:     "Hello the quarterly numbers are in.",
		part3hdr:  "Subject: inner\r\nFrom: carol@example.net\r\n\r\n",
		part3text: "inner body",
		part2mime: "Content-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\n",
		partial:   multipartMsg[6:15],
	}
	for sec, want := range checks {
		if got := string(m.FindBodySection(sec)); got != want {
			t.Errorf("section %+v: got %q want %q", sec, got, want)
		}
	}
	// Sizes of BODY[n] agree with BODYSTRUCTURE.
	sp := mp.Children[0].(*imap.BodyStructureSinglePart)
	if int(sp.Size) != len(checks[part1]) {
		t.Errorf("part 1 size %d, body %d", sp.Size, len(checks[part1]))
	}
	if got := m.FindBinarySection(bin); !bytes.Equal(got, []byte{0, 1, 2, 3, 4}) {
		t.Errorf("binary: %v", got)
	}
	if n, _ := m.FindBinarySectionSize([]int{2}); n != 5 {
		t.Errorf("binary size %d", n)
	}
	// PEEK left \Seen clear; BODY[] sets it and reports FLAGS unasked.
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Part: []int{1}}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("BODY[1] did not report \\Seen: %v", msgs[0].Flags)
	}
	msgs, _ = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	if !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("\\Seen not stored: %v", msgs[0].Flags)
	}
	// A part that does not exist reads as empty.
	nope := &imap.FetchItemBodySection{Part: []int{9}, Peek: true}
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{nope}}).Collect()
	if err != nil || len(msgs[0].FindBodySection(nope)) != 0 {
		t.Errorf("missing part: %v %q", err, msgs[0].FindBodySection(nope))
	}
}

func TestMailboxCommands(t *testing.T) {
	e := start(t, nil)
	c := e.client(t, nil)
	for _, name := range []string{"Work/Projects/2024", "Café"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	if err := c.Create("Work", nil).Wait(); err == nil {
		t.Error("create of an existing parent succeeded")
	}
	if err := c.Create("Archive2", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrArchive}}).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		attrs[l.Mailbox] = l.Attrs
		if l.Delim != '/' {
			t.Errorf("delim %q", l.Delim)
		}
	}
	if !slices.Contains(attrs["Work"], imap.MailboxAttrHasChildren) || !slices.Contains(attrs["Work/Projects/2024"], imap.MailboxAttrHasNoChildren) {
		t.Errorf("children attrs: %v", attrs)
	}
	if !slices.Contains(attrs["Sent"], imap.MailboxAttrSent) || !slices.Contains(attrs["Archive2"], imap.MailboxAttrArchive) {
		t.Errorf("special-use attrs: %v", attrs)
	}
	if _, ok := attrs["Café"]; !ok {
		t.Errorf("UTF-8 name missing: %v", attrs)
	}
	// % stops at the delimiter.
	list, _ = c.List("", "Work/%", nil).Collect()
	if len(list) != 1 || list[0].Mailbox != "Work/Projects" {
		t.Errorf("Work/%%: %+v", list)
	}
	// RENAME moves children along.
	if err := c.Rename("Work", "Job", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	list, _ = c.List("", "Job/*", nil).Collect()
	if len(list) != 2 {
		t.Errorf("after rename: %+v", list)
	}
	if err := c.Delete("Job/Projects/2024").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Error("DELETE INBOX succeeded")
	}
	if err := c.Delete("Nope").Wait(); err == nil {
		t.Error("DELETE of a missing mailbox succeeded")
	}
	// Subscriptions and LIST-EXTENDED.
	if err := c.Unsubscribe("Café").Wait(); err != nil {
		t.Fatal(err)
	}
	list, _ = c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	for _, l := range list {
		if l.Mailbox == "Café" {
			t.Error("unsubscribed mailbox listed as subscribed")
		}
	}
	if err := c.Subscribe("Café").Wait(); err != nil {
		t.Fatal(err)
	}
	list, _ = c.List("", "*", &imap.ListOptions{SelectSpecialUse: true}).Collect()
	for _, l := range list {
		if l.Mailbox == "INBOX" || l.Mailbox == "Café" {
			t.Errorf("SPECIAL-USE selection listed %s", l.Mailbox)
		}
	}
	// LIST-STATUS and STATUS with SIZE.
	e.deliver(t, "INBOX", simpleMsg("one", "hello"))
	list, _ = c.List("", "INBOX", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, Size: true}}).Collect()
	if len(list) != 1 || list[0].Status == nil || *list[0].Status.NumMessages != 1 {
		t.Fatalf("LIST-STATUS: %+v", list)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, Size: true, NumDeleted: true, AppendLimit: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 1 || *st.NumUnseen != 1 || st.UIDNext != 2 || *st.Size != int64(len(simpleMsg("one", "hello"))) || *st.NumDeleted != 0 {
		t.Errorf("status %+v", st)
	}
	ns, err := c.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Errorf("namespace %+v %v", ns, err)
	}
	// EXAMINE is read-only.
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err == nil {
		t.Error("STORE in EXAMINE succeeded")
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestAppendStoreCopyMoveExpunge(t *testing.T) {
	e := start(t, nil)
	c := e.client(t, nil)
	msg := simpleMsg("appended", "body text")
	date := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	ac := c.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft, "$Label1"}, Time: date})
	io.WriteString(ac, msg)
	ac.Close()
	ad, err := ac.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if ad.UID != 1 || ad.UIDValidity == 0 {
		t.Errorf("APPENDUID %+v", ad)
	}
	if err := c.Append("Nope", 1, nil).Close(); err == nil {
		t.Error("append to missing mailbox")
	}
	selectBox(t, c, "INBOX")
	e.deliver(t, "INBOX", simpleMsg("second", "more"))
	e.deliver(t, "INBOX", simpleMsg("third", "more"))
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if n := c.Mailbox().NumMessages; n != 3 {
		t.Fatalf("EXISTS after delivery: %d", n)
	}
	msgs, _ := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, InternalDate: true}).Collect()
	if !slices.Contains(msgs[0].Flags, imap.FlagDraft) || !slices.Contains(msgs[0].Flags, "$Label1") || !msgs[0].InternalDate.Equal(date) {
		t.Errorf("appended flags/date: %v %v", msgs[0].Flags, msgs[0].InternalDate)
	}
	// STORE +FLAGS, -FLAGS, keywords, .SILENT.
	msgs, err = c.Store(imap.SeqSetNum(2, 3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "Work"}}, nil).Collect()
	if err != nil || len(msgs) != 2 || !slices.Contains(msgs[1].Flags, "Work") {
		t.Fatalf("store: %v %+v", err, msgs)
	}
	msgs, _ = c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{"work"}}, nil).Collect()
	if len(msgs) != 0 {
		t.Errorf("silent store answered %+v", msgs)
	}
	msgs, _ = c.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{Flags: true}).Collect()
	if slices.Contains(msgs[0].Flags, "Work") || !slices.Contains(msgs[0].Flags, imap.FlagFlagged) {
		t.Errorf("after -FLAGS: %v", msgs[0].Flags)
	}
	// COPY with COPYUID.
	cd, err := c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := cd.DestUIDs.String(); got != "1:2" {
		t.Errorf("COPYUID dest %s", got)
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "Nope").Wait(); err == nil || !strings.Contains(err.Error(), "TRYCREATE") {
		t.Errorf("copy to missing: %v", err)
	}
	// MOVE: message 3 goes, and its EXPUNGE comes back.
	md, err := c.Move(imap.SeqSetNum(3), "Trash").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if md.DestUIDs.String() != "1" || c.Mailbox().NumMessages != 2 {
		t.Errorf("move: %+v, %d left", md, c.Mailbox().NumMessages)
	}
	// EXPUNGE and UID EXPUNGE.
	c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	uids, err := c.UIDExpunge(imap.UIDSetNum(2)).Collect()
	if err != nil || len(uids) != 1 || uids[0] != 2 {
		t.Errorf("UID EXPUNGE: %v %v", uids, err)
	}
	seqs, err := c.Expunge().Collect()
	if err != nil || len(seqs) != 1 || seqs[0] != 1 {
		t.Errorf("EXPUNGE: %v %v", seqs, err)
	}
	st, _ := c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()
	if *st.NumMessages != 2 {
		t.Errorf("Archive has %d", *st.NumMessages)
	}
}

func TestSearch(t *testing.T) {
	e := start(t, nil)
	e.deliver(t, "INBOX", simpleMsg("apples", "I like Green apples"))                    // 1
	e.deliver(t, "INBOX", multipartMsg)                                                  // 2
	e.deliver(t, "INBOX", simpleMsg("pears", "=?x?= nothing here; QUARTERLY mentioned")) // 3
	big := simpleMsg("big one", strings.Repeat("x", 5000))
	e.deliver(t, "INBOX", big) // 4
	c := e.client(t, nil)
	selectBox(t, c, "INBOX")
	c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "$Important"}}, nil).Close()
	cases := []struct {
		name string
		c    imap.SearchCriteria
		want []uint32
	}{
		{"all", imap.SearchCriteria{}, []uint32{1, 2, 3, 4}},
		{"subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "APPLES"}}}, []uint32{1}},
		{"decoded subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "café"}}}, []uint32{2}},
		{"from", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "Bob Example"}}}, []uint32{2}},
		{"header in another field does not count", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "To", Value: "bob"}}}, nil},
		{"header exists", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Mime-Version", Value: ""}}}, []uint32{2}},
		{"body", imap.SearchCriteria{Body: []string{"quarterly"}}, []uint32{2, 3}},
		{"body not header", imap.SearchCriteria{Body: []string{"apples"}}, []uint32{1}},
		{"text", imap.SearchCriteria{Text: []string{"pears"}}, []uint32{3}},
		{"flagged", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, []uint32{1}},
		{"keyword", imap.SearchCriteria{Flag: []imap.Flag{"$important"}}, []uint32{1}},
		{"unkeyword", imap.SearchCriteria{NotFlag: []imap.Flag{"$Important"}}, []uint32{2, 3, 4}},
		{"unseen", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []uint32{1, 2, 3, 4}},
		{"larger", imap.SearchCriteria{Larger: 4000}, []uint32{4}},
		{"smaller", imap.SearchCriteria{Smaller: 400}, []uint32{1, 3}},
		{"sentbefore", imap.SearchCriteria{SentBefore: time.Date(2006, 1, 3, 0, 0, 0, 0, time.UTC)}, []uint32{2}},
		{"senton", imap.SearchCriteria{SentSince: time.Date(2006, 1, 3, 0, 0, 0, 0, time.UTC), SentBefore: time.Date(2006, 1, 4, 0, 0, 0, 0, time.UTC)}, []uint32{1, 3, 4}},
		{"since today", imap.SearchCriteria{Since: time.Now().UTC().Add(-24 * time.Hour)}, []uint32{1, 2, 3, 4}},
		{"before 2000", imap.SearchCriteria{Before: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"not", imap.SearchCriteria{Not: []imap.SearchCriteria{{Body: []string{"quarterly"}}}}, []uint32{1, 4}},
		{"or with header", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "pears"}}}, {Flag: []imap.Flag{imap.FlagFlagged}}}}}, []uint32{1, 3}},
		{"not header", imap.SearchCriteria{Not: []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "apples"}}}}}, []uint32{2, 3, 4}},
		{"uid", imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(2, 4)}}, []uint32{2, 4}},
		{"seq", imap.SearchCriteria{SeqNum: []imap.SeqSet{{imap.SeqRange{Start: 3, Stop: 0}}}}, []uint32{3, 4}},
		{"recent", imap.SearchCriteria{Flag: []imap.Flag{`\Recent`}}, nil},
	}
	for _, tc := range cases {
		d, err := c.UIDSearch(&tc.c, nil).Wait()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []uint32
		for _, u := range d.AllUIDs() {
			got = append(got, uint32(u))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v want %v", tc.name, got, tc.want)
		}
	}
	// ESEARCH.
	d, err := c.Search(&imap.SearchCriteria{Body: []string{"quarterly"}}, &imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true}).Wait()
	if err != nil || d.Min != 2 || d.Max != 3 || d.Count != 2 {
		t.Errorf("ESEARCH: %+v %v", d, err)
	}
}

func TestTwoSessionsSeeEachOther(t *testing.T) {
	e := start(t, nil)
	for i := 0; i < 4; i++ {
		e.deliver(t, "INBOX", simpleMsg("m", "x"))
	}
	type upd struct {
		kind string
		n    uint32
	}
	updates := make(chan upd, 100)
	a := e.client(t, &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { updates <- upd{"expunge", seq} },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				updates <- upd{"exists", *d.NumMessages}
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			buf, _ := m.Collect()
			if buf != nil && slices.Contains(buf.Flags, imap.FlagFlagged) {
				updates <- upd{"flagged", buf.SeqNum}
			}
		},
	})
	b := e.client(t, nil)
	selectBox(t, a, "INBOX")
	selectBox(t, b, "INBOX")
	// B flags 3 and expunges 2: A must hear FETCH 3 then EXPUNGE 2.
	b.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
	b.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	if _, err := b.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	// A FETCH must not see the EXPUNGE (RFC 9051 §7.5.1), only NOOP does.
	if _, err := a.Fetch(imap.SeqSetNum(4), &imap.FetchOptions{UID: true}).Collect(); err != nil {
		t.Fatal(err)
	}
	if err := a.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, "INBOX", simpleMsg("new", "y"))
	if err := a.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	var got []upd
	for len(updates) > 0 {
		got = append(got, <-updates)
	}
	want := []upd{{"flagged", 3}, {"expunge", 2}, {"exists", 4}}
	if !slices.Equal(got, want) {
		t.Fatalf("A saw %v, want %v", got, want)
	}
	// A's numbering now matches B's: message 2 is UID 3, the flagged one.
	msgs, _ := a.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if msgs[0].UID != 3 || !slices.Contains(msgs[0].Flags, imap.FlagFlagged) {
		t.Errorf("A seq 2 = %+v", msgs[0])
	}
	// POP3-style removal (storage.Remove) also reaches A.
	mb, _ := e.srv.Store.MailboxByName(t.Context(), e.userID, "INBOX")
	if _, err := e.srv.Store.Remove(t.Context(), mb.ID, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	a.Noop().Wait()
	if u := <-updates; u != (upd{"expunge", 1}) {
		t.Errorf("after Remove: %v", u)
	}
}

func TestIdleGetsDeliveryWithinASecond(t *testing.T) {
	e := start(t, nil)
	c, exists := e.existsClient(t, 10)
	selectBox(t, c, "INBOX")
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	e.deliver(t, "INBOX", simpleMsg("pushed", "now"))
	select {
	case n := <-exists:
		if n != 1 {
			t.Errorf("EXISTS %d", n)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("EXISTS after %v", d)
		}
	case <-time.After(time.Second):
		t.Fatal("no EXISTS within one second of delivery")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}
