package storage

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeOutTexts gives the blobs stored with text_is_body a text of their
// own, as schema 5 stored it.
var writeOutTexts = "UPDATE blob_search SET text = " + bodyTextSQL("blob_search.blob_id") + ", text_is_body = 0 WHERE text_is_body"

// schema6to5 turns a database of schema 6 back into one of schema 5.
var schema6to5 = writeOutTexts + `;
ALTER TABLE blob_search DROP COLUMN text_is_body;
PRAGMA user_version = 5;`

func downgradeTo5(t testing.TB, db *sql.DB) {
	t.Helper()
	if _, err := db.Exec(schema6to5); err != nil {
		t.Fatalf("back to schema 5: %v", err)
	}
}

// textCase is a message and whether delivery may store it with
// text_is_body: one plain UTF-8 part without transfer encoding.
type textCase struct {
	name   string
	raw    string
	isBody bool
}

func textCases() []textCase {
	long := strings.Repeat("Grüße aus Köln, line after line of body text.\r\n", 200) // header first: over smallBody
	return []textCase{
		{"plain ascii, flat", "Subject: one\r\n\r\nThe zebra crossed the road.\r\nSecond line.\r\n", true},
		{"plain utf-8, header first", "Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nzebra\r\n" + long, true},
		{"utf-8 header, flat", "Subject: Ünïcödé ßubject\r\nFrom: Jöhn <j@example.org>\r\n\r\nzebra in the body\r\n", true},
		{"quoted-printable", "Content-Transfer-Encoding: quoted-printable\r\n\r\nze=\r\nbra and M=C3=BCnchen\r\n", false},
		{"html", "Content-Type: text/html\r\n\r\n<p>zebra <b>bold</b></p>\r\n", false},
		{"latin-1", "Content-Type: text/plain; charset=iso-8859-1\r\n\r\nzebra M\xfcnchen\r\n", false},
		{"multipart", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nzebra part\r\n--b--\r\n", false},
		{"no text", "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n", false},
		{"empty body", "Subject: nothing\r\n\r\n", false},
	}
}

// A plain message's search text is its body (text_is_body, no second
// copy); search finds in it what it found in the copy, and nothing of its
// header. Every other message keeps a text of its own.
func TestTextIsBody(t *testing.T) {
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	var mbox int64
	uidOf := map[string]uint32{}
	for _, c := range textCases() {
		ds, err := s.Deliver(ctx, strings.NewReader(c.raw), []Recipient{{UserID: u.ID}}, DeliverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d := ds[0]
		mbox, uidOf[c.name] = d.MailboxID, d.UID
		var isBody bool
		var text string
		if err := s.rdb.QueryRow(`SELECT s.text_is_body, s.text FROM blob_search s JOIN messages m ON m.blob_id = s.blob_id WHERE m.id = ?`,
			d.MessageID).Scan(&isBody, &text); err != nil {
			t.Fatal(err)
		}
		if isBody != c.isBody || (isBody && text != "") {
			t.Errorf("%s: text_is_body %v with %d octets of text, want %v", c.name, isBody, len(text), c.isBody)
		}
		if got := readAll(t, s, d.MessageID); !bytes.Equal(got, []byte(c.raw)) {
			t.Errorf("%s: read back %q", c.name, got)
		}
	}
	uids := func(names ...string) []uint32 {
		var out []uint32
		for _, n := range names {
			out = append(out, uidOf[n])
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		c    SearchCriteria
		want []uint32
	}{
		{SearchCriteria{Body: []string{"ZEBRA"}}, uids("plain ascii, flat", "plain utf-8, header first", "utf-8 header, flat", "quoted-printable", "html", "latin-1", "multipart")},
		{SearchCriteria{Body: []string{"köln, line after line"}}, uids("plain utf-8, header first")},
		{SearchCriteria{Body: []string{"crossed the road.\nsecond"}}, uids("plain ascii, flat")}, // CRLF read as LF
		{SearchCriteria{Body: []string{"road.\r\nsecond"}}, nil},                                 // as in the copy it replaces
		{SearchCriteria{Body: []string{"subject"}}, nil},                                         // the header is not the body
		{SearchCriteria{Body: []string{"ßubject"}}, nil},
		{SearchCriteria{Text: []string{"ßubject"}}, uids("utf-8 header, flat")},
		{SearchCriteria{Text: []string{"in the body"}}, uids("utf-8 header, flat")},
		{SearchCriteria{Not: []SearchCriteria{{Body: []string{"zebra"}}}}, uids("no text", "empty body")},
		// A header criterion sends the text to the Go evaluation.
		{SearchCriteria{Header: []HeaderMatch{{Name: "subject", Value: "one"}}, Body: []string{"zebra crossed"}}, uids("plain ascii, flat")},
		{SearchCriteria{Header: []HeaderMatch{{Name: "from", Value: "jöhn"}}, Body: []string{"zebra in"}}, uids("utf-8 header, flat")},
	} {
		got, err := s.Search(ctx, mbox, &tc.c)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.c, got, tc.want)
		}
		if o := oracle(t, s, mbox, &tc.c); !slices.Equal(o, tc.want) {
			t.Errorf("%+v: oracle %v, want %v", tc.c, o, tc.want)
		}
	}
}

// A database of schema 5 keeps its texts; messages delivered after the
// migration to 6 are stored with text_is_body, and search finds both.
func TestMigrationTo6(t *testing.T) {
	s, dir := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	deliver := func(s *Store, i int) Delivery {
		raw := fmt.Sprintf("Subject: m%d\r\n\r\nword%d in a plain body\r\n", i, i)
		ds, err := s.Deliver(ctx, strings.NewReader(raw), []Recipient{{UserID: u.ID}}, DeliverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ds[0]
	}
	old := []Delivery{deliver(s, 0), deliver(s, 1)}
	s.Close()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "pombo.db"))
	if err != nil {
		t.Fatal(err)
	}
	downgradeTo5(t, db)
	var texts int
	if err := db.QueryRow(`SELECT count(*) FROM blob_search WHERE text LIKE '%plain body%'`).Scan(&texts); err != nil || texts != 2 {
		t.Fatalf("schema 5 holds %d texts (%v), want 2", texts, err)
	}
	db.Close()

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all := append(old, deliver(s, 2))
	var flagged int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM blob_search WHERE text_is_body`).Scan(&flagged); err != nil || flagged != 1 {
		t.Fatalf("%d blobs with text_is_body after the migration (%v), want the new one only", flagged, err)
	}
	for i, d := range all {
		got, err := s.Search(ctx, d.MailboxID, &SearchCriteria{Body: []string{fmt.Sprintf("word%d in", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []uint32{d.UID}) {
			t.Errorf("message %d (UID %d): search found %v", i, d.UID, got)
		}
	}
}

func TestTextIsBodyCompare(t *testing.T) {
	for _, tc := range []struct {
		body, text string
		want       bool
	}{
		{"a\r\nb\r\n", "a\nb\n", true},
		{"a\r\nb", "a\nb", true},
		{"a\r\nb\r\n", "a\nb", false},
		{"a\r\nb", "a\nb\n", false},
		{"a\rb", "a\rb", true}, // a bare CR stays, in SQL's replace too
		{"a\r\n", "a\r\n", false},
		{"", "", false},
		{"abc", "abd", false},
		{"\r\n\r\n", "\n\n", true},
	} {
		if got := textIsBody([]byte(tc.body), tc.text); got != tc.want {
			t.Errorf("textIsBody(%q, %q) = %v", tc.body, tc.text, got)
		}
	}
}

// BenchmarkSearchBody scans the bodies of 2,000 plain 4 KB messages for a
// word none has: read from the body (text_is_body, as delivered), and from
// a copy of its own (as schema 5 stored them, written out by
// writeOutTexts).
func BenchmarkSearchBody(b *testing.B) {
	s, _ := openTest(b)
	u := addUser(b, s, "alice@example.test")
	ctx := context.Background()
	var mbox int64
	for i := 0; i < 2000; i++ {
		ds, err := s.Deliver(ctx, bytes.NewReader(testMessage(i, 4096)), []Recipient{{UserID: u.ID}}, DeliverOptions{})
		if err != nil {
			b.Fatal(err)
		}
		mbox = ds[0].MailboxID
	}
	run := func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			uids, err := s.Search(ctx, mbox, &SearchCriteria{Body: []string{"nowhere to be found"}})
			if err != nil || len(uids) != 0 {
				b.Fatal(uids, err)
			}
		}
	}
	b.Run("from=body", run)
	err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.exec(writeOutTexts)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("from=copy", run)
}
