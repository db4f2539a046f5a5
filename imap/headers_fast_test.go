package imap_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	goimap "github.com/emersion/go-imap/v2"

	"pombo/imap"
	"pombo/storage"
)

// hostileHeaders are header sections that a field filter could get wrong.
var hostileHeaders = []string{
	"Subject: folded\r\n  over two\r\n\tlines\r\nX-Other: 1\r\n continued other\r\nsubject: second one\r\n\r\nbody\r\n",
	"To: short\r\nTo-Do: prefix of nothing asked\r\nTo : spaced\r\nTox: longer\r\nT: shorter\r\n\r\n",
	"From: a@example.org\r\nSubject: no final line break",
	"From: a@example.org\nSubject: LF only\n folded LF\nTo: b@example.org\n\nbody\n",
	"From: a@example.org\r\nSubject: bare CR\rinside\r\n\r\r\nafter a CR CR LF line\r\n",
	"Subject: one\r\nSubject: two\r\nSUBJECT: three\r\nsubject:four\r\n\r\n",
	"no colon at all\r\n continued\r\nSubject: after\r\n: empty name\r\n :continuation with colon\r\n\r\n",
	"\tleading continuation\r\nSubject: s\r\n\r\n",
	"Subject\t \t: tabs before colon\r\nSubject \r\n\r\n",
	"\u212aeywords: kelvin sign\r\nKeywords: plain\r\n\u017fubject: long s\r\n\xff\xfe: invalid utf-8\r\n\r\n",
	"X-" + strings.Repeat("Long", 20) + ": name over 64 octets\r\nSubject: s\r\n\r\n",
	"From: a@example.org\r\nX-Big: " + strings.Repeat("y", 200<<10) + "\r\n" + strings.Repeat("X-Many: field\r\n", 5000) + "Subject: huge\r\n\r\n",
	"\r\nbody without a header\r\n",
	"",
	"\n",
	"Subject: ends with CR only\r",
}

// Field lists to filter hostileHeaders and the corpus with.
var hostileLists = [][]string{
	tbFields,
	{"to"},
	{"TO-DO", "tox"},
	{"Subject"},
	{"keywords"},
	{"\u212aeywords"},
	{"\xff\xfe"},
	{""},
	{"X-" + strings.Repeat("long", 20)},
	{"x-big", "X-MANY"},
}

// The field filter reads a header as RFC 9051 §6.4.5 (and expectFields)
// does, on hostile headers: folded fields, a field name that is a prefix
// of another, no final line break, LF-only lines, duplicate fields, no
// colon, non-ASCII names that fold to ASCII ones, a huge header.
func TestFilterHeaderHostile(t *testing.T) {
	for i, h := range hostileHeaders {
		for _, names := range hostileLists {
			for _, not := range []bool{false, true} {
				var got []byte
				if not {
					got = imap.FilterHeader([]byte(h), nil, names)
				} else {
					got = imap.FilterHeader([]byte(h), names, nil)
				}
				if want := expectFields([]byte(h), names, not); !bytes.Equal(got, want) {
					t.Errorf("header %d, fields %q, not %v:\ngot  %.300q\nwant %.300q", i, names, not, got, want)
				}
			}
		}
	}
	// Spot checks of the reference on what is easy to get wrong.
	for _, c := range []struct {
		h     int
		names []string
		want  string
	}{
		{1, []string{"to"}, "To: short\r\nTo : spaced\r\n\r\n"},
		{3, []string{"subject"}, "Subject: LF only\n folded LF\n\r\n"},
		{9, []string{"keywords"}, "\u212aeywords: kelvin sign\r\nKeywords: plain\r\n\r\n"},
		{9, []string{"subject"}, "\u017fubject: long s\r\n\r\n"},
	} {
		if got := imap.FilterHeader([]byte(hostileHeaders[c.h]), c.names, nil); string(got) != c.want {
			t.Errorf("header %d, fields %q: got %q, want %q", c.h, c.names, got, c.want)
		}
	}
}

// The header sections of a message list, read with its rows and filtered
// there, are byte for byte what the general way (the message opened) gives,
// for the corpus and hostile messages, over a range of UIDs and a list.
func TestHeaderFetchFastMatchesGeneral(t *testing.T) {
	e := start(t, nil)
	st := e.srv.Store
	ctx := context.Background()
	msgs := corpus(t, 300)
	for _, h := range hostileHeaders {
		msgs = append(msgs, []byte(h))
	}
	deliverAll(t, st, e.userID, "INBOX", msgs)
	if _, err := st.Deliver(ctx, strings.NewReader("From: e@example.org\r\nSubject: traced\r\n\r\nx\r\n"),
		[]storage.Recipient{{UserID: e.userID, Prefix: []byte("Delivered-To: alice@example.test\r\nSubject: trace line\r\n")}},
		storage.DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	mb, err := st.MailboxByName(ctx, e.userID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var all, some []uint32
	for u := uint32(1); u <= uint32(len(msgs)+1); u++ {
		all = append(all, u)
		if u%7 == 0 || u > uint32(len(msgs))-3 {
			some = append(some, u)
		}
	}
	secs := []*goimap.FetchItemBodySection{{Specifier: goimap.PartSpecifierHeader}}
	for _, names := range hostileLists {
		secs = append(secs,
			&goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierHeader, HeaderFields: names},
			&goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierHeader, HeaderFieldsNot: names})
	}
	// The huge header (over storage.MaxHeaderSection) goes the general
	// way, all others the fast way.
	_, whole, err := imap.HeaderSectionPaths(ctx, st, mb.ID, all, secs[0])
	if err != nil {
		t.Fatal(err)
	}
	big := map[uint32]bool{}
	for uid, h := range whole {
		if len(h) > storage.MaxHeaderSection {
			big[uid] = true
		}
	}
	if len(big) != 1 {
		t.Fatalf("%d headers over MaxHeaderSection, want 1", len(big))
	}
	for _, uids := range [][]uint32{all, some} {
		for _, sec := range secs {
			fast, general, err := imap.HeaderSectionPaths(ctx, st, mb.ID, uids, sec)
			if err != nil {
				t.Fatal(err)
			}
			if len(general) != len(uids) {
				t.Fatalf("%d messages read, want %d", len(general), len(uids))
			}
			for _, uid := range uids {
				if _, ok := fast[uid]; ok == big[uid] {
					t.Fatalf("UID %d: served the fast way %v, header of %d octets", uid, ok, len(whole[uid]))
				}
			}
			for uid, f := range fast {
				if g := general[uid]; !bytes.Equal(f, g) {
					t.Fatalf("UID %d, fields %q not %q:\nfast    %.300q\ngeneral %.300q", uid, sec.HeaderFields, sec.HeaderFieldsNot, f, g)
				}
			}
		}
	}
}
