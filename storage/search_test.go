package storage

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// searchBox is a mailbox of a few messages that differ in every searchable
// way: headers, body text (with LIKE's wildcards % and _ and a backslash),
// non-ASCII text, flags, keywords, dates and sizes.
func searchBox(t testing.TB) (*Store, int64) {
	t.Helper()
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	msgs := []struct {
		raw   string
		date  string
		flags Flags
		kw    []string
	}{
		{"From: Bob <bob@example.org>\nSubject: Quarterly Zebra report\nDate: Mon, 01 Jan 2024 10:00:00 +0000\nMessage-ID: <a1@x>\n\nThe ZEBRA numbers are in.\n", "2024-01-01", FlagSeen, nil},
		{"From: carol@example.org\nSubject: 100% done_now\nDate: Tue, 02 Jan 2024 10:00:00 +0000\nX-Path: C:\\temp\n\nprogress: 100% of task_a, path C:\\temp\n", "2024-01-02", FlagFlagged, []string{"$Work"}},
		{"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße aus München, ÄÖÜ\n", "2024-01-03", 0, []string{"$Label1", "Junk"}},
		{"From: dave@example.org\nTo: alice@example.test\nSubject: no date here\n\nplain body zebra\n" + string(bytes.Repeat([]byte("padding line\n"), 200)), "2024-01-04", FlagSeen | FlagAnswered, nil},
		{"Subject: multipart\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nalt text Quarterly\n--b\nContent-Type: text/html\n\n<p>alt <b>html</b></p>\n--b--\n", "2024-01-05", FlagDeleted, []string{"$work"}},
		{"Subject: folded\nX-Long: first part\n second part\nReferences: <a1@x>\n\n\n", "2024-01-06", 0, nil},
	}
	for _, m := range msgs {
		d, _ := time.Parse(time.DateOnly, m.date)
		if _, err := s.Deliver(ctx, bytes.NewReader(crlf(m.raw)), []Recipient{{UserID: u.ID}},
			DeliverOptions{InternalDate: d.Add(12 * time.Hour), Flags: m.flags, Keywords: m.kw}); err != nil {
			t.Fatal(err)
		}
	}
	mb, err := s.MailboxByName(ctx, u.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return s, mb.ID
}

// oracle evaluates c on every message in Go alone, as the exact half of
// Search does. The text of a message stored with text_is_body it makes
// itself, from the message as a client reads it.
func oracle(t testing.TB, s *Store, mailboxID int64, c *SearchCriteria) []uint32 {
	t.Helper()
	rows, err := s.rdb.Query(`SELECT m.uid, m.flags, m.keywords, m.internal_date, m.size, s.headers, s.text, `+sentDaySQL+`,
			s.text_is_body, m.id, b.header_size
		FROM messages m JOIN blob_search s ON s.blob_id = m.blob_id JOIN blobs b ON b.id = m.blob_id
		WHERE m.mailbox_id = ? ORDER BY m.uid`, mailboxID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var r searchRow
		var kw string
		var date int64
		var isBody bool
		var id, hsize int64
		if err := rows.Scan(&r.uid, &r.flags, &kw, &date, &r.size, &r.headers, &r.text, &r.sentDay, &isBody, &id, &hsize); err != nil {
			t.Fatal(err)
		}
		if isBody {
			if r.text != "" {
				t.Fatalf("UID %d: text_is_body with a text of its own", r.uid)
			}
			r.text = strings.ReplaceAll(string(readAll(t, s, id)[hsize:]), "\r\n", "\n")
		}
		r.keywords = splitKeywords(kw)
		r.day = time.Unix(date, 0).UTC().Format(time.DateOnly)
		if r.sentDay == "" {
			r.sentDay = r.day
		}
		if c.match(&r) {
			out = append(out, r.uid)
		}
	}
	return out
}

func day(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }

func TestSearchCriteria(t *testing.T) {
	s, mb := searchBox(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		c    SearchCriteria
		want []uint32
	}{
		{"all", SearchCriteria{}, []uint32{1, 2, 3, 4, 5, 6}},
		{"body folds ASCII case", SearchCriteria{Body: []string{"zebra"}}, []uint32{1, 4}},
		{"body is not the header", SearchCriteria{Body: []string{"report"}}, nil},
		{"body of a multipart", SearchCriteria{Body: []string{"QUARTERLY"}}, []uint32{5}},
		{"text is header or body", SearchCriteria{Text: []string{"quarterly"}}, []uint32{1, 5}},
		// LIKE's wildcards and escape character must match only themselves.
		{"percent is literal", SearchCriteria{Body: []string{"100%"}}, []uint32{2}},
		{"percent alone", SearchCriteria{Body: []string{"%"}}, []uint32{2}},
		{"underscore is literal", SearchCriteria{Body: []string{"task_a"}}, []uint32{2}},
		{"underscore is no wildcard", SearchCriteria{Body: []string{"task_b"}}, nil},
		{"underscore alone", SearchCriteria{Text: []string{"_"}}, []uint32{2}},
		{"backslash", SearchCriteria{Body: []string{`c:\temp`}}, []uint32{2}},
		{"backslash in a header", SearchCriteria{Header: []HeaderMatch{{"X-Path", `C:\TEMP`}}}, []uint32{2}},
		// i;ascii-casemap: only ASCII folds.
		{"non-ASCII as is", SearchCriteria{Body: []string{"München"}}, []uint32{3}},
		{"non-ASCII does not fold", SearchCriteria{Body: []string{"äöü"}}, nil},
		{"decoded header, non-ASCII does not fold", SearchCriteria{Header: []HeaderMatch{{"Subject", "grÜße"}}}, nil},
		{"decoded header exact", SearchCriteria{Header: []HeaderMatch{{"subject", "Grüße"}}}, []uint32{3}},
		{"header within one field", SearchCriteria{Header: []HeaderMatch{{"Subject", "bob"}}}, nil},
		{"header From", SearchCriteria{Header: []HeaderMatch{{"FROM", "BOB@"}}}, []uint32{1}},
		{"header present", SearchCriteria{Header: []HeaderMatch{{"References", ""}}}, []uint32{6}},
		{"folded header", SearchCriteria{Header: []HeaderMatch{{"X-Long", "second part"}}}, []uint32{6}},
		{"not header", SearchCriteria{Not: []SearchCriteria{{Header: []HeaderMatch{{"Subject", "e"}}}}}, []uint32{5}},
		{"or header body", SearchCriteria{Or: [][2]SearchCriteria{{{Header: []HeaderMatch{{"Subject", "folded"}}}, {Body: []string{"ZEBRA"}}}}}, []uint32{1, 4, 6}},
		{"flags", SearchCriteria{Flags: FlagSeen, NotFlags: FlagAnswered}, []uint32{1}},
		{"keyword folds", SearchCriteria{Keywords: []string{"$WORK"}}, []uint32{2, 5}},
		{"keyword wildcard is literal", SearchCriteria{Keywords: []string{"$%"}}, nil},
		{"not keyword", SearchCriteria{NotKeywords: []string{"junk", "$work"}}, []uint32{1, 4, 6}},
		{"since before", SearchCriteria{Since: day("2024-01-02"), Before: day("2024-01-04")}, []uint32{2, 3}},
		{"sent before uses Date", SearchCriteria{SentBefore: day("2024-01-02")}, []uint32{1}},
		{"larger", SearchCriteria{Larger: 2000}, []uint32{4}},
		{"uid sets", SearchCriteria{UIDSets: [][]UIDRange{{{1, 3}, {6, 6}}, {{3, 9}}}}, []uint32{3, 6}},
		{"empty uid set", SearchCriteria{UIDSets: [][]UIDRange{{}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Search(ctx, mb, &tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if o := oracle(t, s, mb, &tc.c); !slices.Equal(o, tc.want) {
				t.Fatalf("Go evaluation gives %v, want %v", o, tc.want)
			}
		})
	}
}

// Criteria nested past MaxSearchDepth are refused, not recursed into.
func TestSearchTooDeep(t *testing.T) {
	s, mb := searchBox(t)
	c := SearchCriteria{}
	for i := 0; i < MaxSearchDepth+5; i++ {
		c = SearchCriteria{Not: []SearchCriteria{c}}
	}
	if _, err := s.Search(context.Background(), mb, &c); !errors.Is(err, ErrSearchTooComplex) {
		t.Fatalf("got %v, want ErrSearchTooComplex", err)
	}
}

// A needle longer than SQLite's LIKE pattern limit still searches.
func TestSearchLongNeedle(t *testing.T) {
	s, mb := searchBox(t)
	long := string(bytes.Repeat([]byte("x"), maxLikePattern+10))
	got, err := s.Search(context.Background(), mb, &SearchCriteria{Body: []string{long}})
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want nothing, no error", got, err)
	}
}

// criteriaReader builds a criteria tree from fuzzed bytes.
type criteriaReader struct{ b []byte }

func (r *criteriaReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *criteriaReader) str() string {
	n := min(int(r.byte()%8), len(r.b))
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

var fuzzHeaders = []string{"subject", "from", "to", "x-path", "x-long", "references", "message-id", "date"}

func (r *criteriaReader) criteria(depth int) SearchCriteria {
	var c SearchCriteria
	for n := int(r.byte() % 4); n > 0 && len(r.b) > 0; n-- {
		switch op := r.byte() % 12; op {
		case 0:
			a, b := uint32(r.byte()%8), uint32(r.byte()%8)
			c.UIDSets = append(c.UIDSets, []UIDRange{{min(a, b), max(a, b)}})
		case 1:
			c.Since = day("2024-01-01").AddDate(0, 0, int(r.byte()%8))
		case 2:
			c.Before = day("2024-01-01").AddDate(0, 0, int(r.byte()%8))
		case 3:
			c.Header = append(c.Header, HeaderMatch{fuzzHeaders[r.byte()%8], r.str()})
		case 4:
			c.Body = append(c.Body, r.str())
		case 5:
			c.Text = append(c.Text, r.str())
		case 6:
			c.Flags |= Flags(1) << (r.byte() % 5)
		case 7:
			c.NotFlags |= Flags(1) << (r.byte() % 5)
		case 8:
			c.Keywords = append(c.Keywords, r.str())
		case 9:
			c.Larger = int64(r.byte()) * 16
		case 10:
			if depth < 6 {
				c.Not = append(c.Not, r.criteria(depth+1))
			}
		case 11:
			if depth < 6 {
				c.Or = append(c.Or, [2]SearchCriteria{r.criteria(depth + 1), r.criteria(depth + 1)})
			}
		}
	}
	return c
}

// FuzzSearch: any criteria tree gives the same messages through Search's
// SQL (pre-filter and exact evaluation) as through the Go evaluation alone
// on every message; in particular the SQL pre-filter keeps every match.
func FuzzSearch(f *testing.F) {
	for _, s := range []string{
		"", "\x01\x04\x05zebra", "\x01\x04\x01%", "\x01\x04\x01_", "\x01\x05\x02\\t",
		"\x02\x03\x00\x03bob\x0a\x01\x03\x01\x02e", "\x01\x0b\x01\x04\x03ZEB\x01\x03\x04\x03fol",
		"\x03\x06\x00\x07\x01\x08\x05$work", "\x01\x04\x04M\xc3\xbcn", "\x01\x03\x05\x00",
	} {
		f.Add([]byte(s))
	}
	s, mb := searchBox(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &criteriaReader{b: data}
		c := r.criteria(0)
		got, err := s.Search(context.Background(), mb, &c)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if want := oracle(t, s, mb, &c); !slices.Equal(got, want) {
			t.Fatalf("%+v: Search gives %v, Go evaluation %v", c, got, want)
		}
	})
}
