package storage

// SEARCH (RFC 9051 §6.4.4) over the columns of messages and the text that
// delivery extracted into blob_search: no message is re-parsed.
//
// Matching of strings is by substring with the i;ascii-casemap comparator
// (RFC 4790), the IMAP default: ASCII letters fold, other characters compare
// as they are. Header and body text were decoded (RFC 2047, charsets,
// transfer encodings) at delivery.
//
// The criteria become one SQL query. A HEADER criterion must match within one
// field, which SQL cannot say cheaply on the stored "name: value\n" lines:
// where one appears, SQL only pre-filters (with conditions every match
// satisfies) and the whole criteria are then evaluated exactly in Go on the
// remaining rows.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// SearchCriteria is a conjunction of conditions (all must hold). The zero
// value matches every message.
type SearchCriteria struct {
	// UIDSets: the UID must be in each set. An empty (non-nil) set matches
	// nothing.
	UIDSets [][]UIDRange

	// Internal date, compared by calendar day (UTC): Since is inclusive,
	// Before exclusive. Zero means no bound.
	Since, Before time.Time
	// Date header, compared by the calendar day written in it; a message
	// without a usable Date uses its internal date.
	SentSince, SentBefore time.Time

	Header []HeaderMatch // field name and substring of its value
	Body   []string      // substrings of the decoded body text
	Text   []string      // substrings of the header or the body text

	Flags       Flags // all must be set
	NotFlags    Flags // all must be clear
	Keywords    []string
	NotKeywords []string

	Larger  int64 // size > Larger, when > 0
	Smaller int64 // size < Smaller, when > 0

	Not []SearchCriteria
	Or  [][2]SearchCriteria
}

// HeaderMatch is one HEADER criterion. An empty Value matches every message
// that has the field.
type HeaderMatch struct {
	Name, Value string
}

// MaxSearchDepth bounds the nesting of NOT and OR.
const MaxSearchDepth = 64

// ErrSearchTooComplex is returned for criteria nested beyond MaxSearchDepth.
var ErrSearchTooComplex = errors.New("search criteria nested too deeply")

// Search returns the UIDs of the messages of a mailbox that match c, in
// ascending order.
func (s *Store) Search(ctx context.Context, mailboxID int64, c *SearchCriteria) ([]uint32, error) {
	if c.depth() > MaxSearchDepth {
		return nil, ErrSearchTooComplex
	}
	var b sqlBuilder
	exactSQL := !c.hasHeader()
	where := b.conj(c, true)
	need := c.needs()
	cols := "m.uid"
	from := " FROM messages m"
	if !exactSQL {
		cols += ", m.flags, m.keywords, m.internal_date, m.size"
	}
	if need.search || (!exactSQL && need.text) {
		from += " JOIN blob_search s ON s.blob_id = m.blob_id"
		if !exactSQL {
			cols += ", s.headers"
			if need.text {
				cols += ", " + searchTextSQL
			} else {
				cols += ", ''"
			}
		}
	} else if !exactSQL {
		cols += ", '', ''"
	}
	if need.sent {
		from += " JOIN blobs b ON b.id = m.blob_id"
		if !exactSQL {
			cols += ", " + sentDaySQL
		}
	} else if !exactSQL {
		cols += ", ''"
	}
	q := "SELECT " + cols + from + " WHERE m.mailbox_id = ?"
	args := append([]any{mailboxID}, b.args...)
	if where != "" {
		q += " AND " + where
	}
	q += " ORDER BY m.uid"
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		if exactSQL {
			var u uint32
			if err := rows.Scan(&u); err != nil {
				return nil, err
			}
			out = append(out, u)
			continue
		}
		var r searchRow
		var kw string
		var date int64
		if err := rows.Scan(&r.uid, &r.flags, &kw, &date, &r.size, &r.headers, &r.text, &r.sentDay); err != nil {
			return nil, err
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
	return out, rows.Err()
}

// searchTextSQL is a message's search text: blob_search.text, or its body
// where delivery found the two the same (text_is_body, schema 6).
var searchTextSQL = "(CASE WHEN s.text_is_body THEN " + bodyTextSQL("m.blob_id") + " ELSE s.text END)"

// bodyTextSQL is the body of the blob whose id is the SQL expression blobID,
// CRLF read as LF as a search text has it, for a blob stored with
// text_is_body. Such a blob was held in memory, so it has at most two chunks
// and the last one holds the whole body: after the header when it is chunk
// 0 (flat), alone when the header is chunk 0 (header first). substr counts
// bytes in a BLOB, before the cast.
func bodyTextSQL(blobID string) string {
	return `(SELECT replace(CAST(substr(c.data, CASE c.seq WHEN 0 THEN (SELECT header_size FROM blobs WHERE id = ` + blobID + `) + 1 ELSE 1 END) AS TEXT),
		char(13, 10), char(10))
	FROM blob_chunks c WHERE c.blob_id = ` + blobID + ` ORDER BY c.seq DESC LIMIT 1)`
}

// sentDaySQL is the calendar day of the Date header as written (the first
// ten characters of its JSON time), or "" when missing.
const sentDaySQL = `(CASE WHEN coalesce(json_extract(b.envelope, '$.d'), '0001') LIKE '0001%' THEN ''
	ELSE substr(json_extract(b.envelope, '$.d'), 1, 10) END)`

// needs says what a search reads besides UIDs, flags and keywords: the
// search table (and its text), the Date header, the internal date or size.
type needs struct{ search, text, sent, dateOrSize bool }

func (c *SearchCriteria) needs() needs {
	var n needs
	if !c.Since.IsZero() || !c.Before.IsZero() || c.Larger != 0 || c.Smaller != 0 {
		n.dateOrSize = true
	}
	if len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 {
		n.search = true
	}
	if len(c.Body) > 0 || len(c.Text) > 0 {
		n.text = true
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		n.sent = true
	}
	merge := func(o needs) {
		n.search = n.search || o.search
		n.text = n.text || o.text
		n.sent = n.sent || o.sent
		n.dateOrSize = n.dateOrSize || o.dateOrSize
	}
	for i := range c.Not {
		merge(c.Not[i].needs())
	}
	for i := range c.Or {
		merge(c.Or[i][0].needs())
		merge(c.Or[i][1].needs())
	}
	return n
}

func (c *SearchCriteria) hasHeader() bool {
	if len(c.Header) > 0 {
		return true
	}
	for i := range c.Not {
		if c.Not[i].hasHeader() {
			return true
		}
	}
	for i := range c.Or {
		if c.Or[i][0].hasHeader() || c.Or[i][1].hasHeader() {
			return true
		}
	}
	return false
}

func (c *SearchCriteria) depth() int {
	d := 0
	for i := range c.Not {
		d = max(d, c.Not[i].depth())
	}
	for i := range c.Or {
		d = max(d, c.Or[i][0].depth(), c.Or[i][1].depth())
	}
	return d + 1
}

type sqlBuilder struct{ args []any }

func (b *sqlBuilder) arg(v any) string { b.args = append(b.args, v); return "?" }

// asciiLower folds ASCII letters only (i;ascii-casemap), like SQLite's lower().
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// conj translates c to a SQL condition. With exact false (inside a header
// criterion's reach) it may return a weaker condition that every match
// satisfies, or "" for none; the Go evaluation then decides.
func (b *sqlBuilder) conj(c *SearchCriteria, positive bool) string {
	var parts []string
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	for _, set := range c.UIDSets {
		if len(set) == 0 {
			add("0")
			continue
		}
		var or []string
		for _, r := range set {
			if r.Start == r.Stop {
				or = append(or, "m.uid = "+b.arg(r.Start))
			} else {
				or = append(or, "m.uid BETWEEN "+b.arg(r.Start)+" AND "+b.arg(r.Stop))
			}
		}
		add("(" + strings.Join(or, " OR ") + ")")
	}
	day := "date(m.internal_date, 'unixepoch')"
	if !c.Since.IsZero() {
		add(day + " >= " + b.arg(c.Since.Format(time.DateOnly)))
	}
	if !c.Before.IsZero() {
		add(day + " < " + b.arg(c.Before.Format(time.DateOnly)))
	}
	sent := "coalesce(nullif(" + sentDaySQL + ", ''), " + day + ")"
	if !c.SentSince.IsZero() {
		add(sent + " >= " + b.arg(c.SentSince.Format(time.DateOnly)))
	}
	if !c.SentBefore.IsZero() {
		add(sent + " < " + b.arg(c.SentBefore.Format(time.DateOnly)))
	}
	for _, h := range c.Header {
		// Necessary, not sufficient: exact matching happens in Go. Only
		// valid where the condition is used positively.
		if positive {
			add(b.contains("s.headers", h.Value))
		}
	}
	for _, v := range c.Body {
		add(b.contains(searchTextSQL, v))
	}
	for _, v := range c.Text {
		add("(" + b.contains("s.headers", v) + " OR " + b.contains(searchTextSQL, v) + ")")
	}
	if c.Flags != 0 {
		add(fmt.Sprintf("m.flags & %d = %d", c.Flags, c.Flags))
	}
	if c.NotFlags != 0 {
		add(fmt.Sprintf("m.flags & %d = 0", c.NotFlags))
	}
	for _, k := range c.Keywords {
		add(keywordSQL(b, k))
	}
	for _, k := range c.NotKeywords {
		add("NOT " + keywordSQL(b, k))
	}
	if c.Larger > 0 {
		add("m.size > " + b.arg(c.Larger))
	}
	if c.Smaller > 0 {
		add("m.size < " + b.arg(c.Smaller))
	}
	for i := range c.Not {
		n := &c.Not[i]
		if n.hasHeader() {
			continue // decided in Go
		}
		s := b.conj(n, positive)
		if s == "" {
			s = "1"
		}
		add("NOT (" + s + ")")
	}
	for i := range c.Or {
		o := &c.Or[i]
		if (o[0].hasHeader() || o[1].hasHeader()) && !positive {
			continue
		}
		l, r := b.conj(&o[0], positive), b.conj(&o[1], positive)
		if l == "" || r == "" {
			continue // one side matches anything as far as SQL knows
		}
		add("((" + l + ") OR (" + r + "))")
	}
	return strings.Join(parts, " AND ")
}

// maxLikePattern stays under SQLite's default LIKE pattern limit (50,000
// bytes); longer needles use instr over a lowered copy.
const maxLikePattern = 40000

// contains is a substring test with the i;ascii-casemap comparator. SQLite's
// LIKE folds ASCII letters only (without ICU, and case_sensitive_like is
// never set), which is that comparator, and it scans the text in place:
// lower() would copy every text searched (gigabytes for a BODY search of a
// large mailbox).
func (b *sqlBuilder) contains(col, v string) string {
	if !searchable(v) {
		return "0" // see containsFold
	}
	if len(v) > maxLikePattern {
		return "instr(lower(" + col + "), " + b.arg(asciiLower(v)) + ") > 0"
	}
	return col + " LIKE " + b.arg("%"+escapeLike(v)+"%") + ` ESCAPE '\'`
}

// keywordSQL matches one keyword in the space-separated list,
// case-insensitively (keywords are atoms: no spaces, no wildcards to escape
// beyond LIKE's own, which the ESCAPE clause handles).
func keywordSQL(b *sqlBuilder, k string) string {
	if !validKeyword(k) {
		return "0"
	}
	return "(' ' || lower(m.keywords) || ' ') LIKE " + b.arg("% "+escapeLike(asciiLower(k))+" %") + " ESCAPE '\\'"
}

type searchRow struct {
	uid      uint32
	flags    Flags
	keywords []string
	size     int64
	headers  string
	text     string
	day      string // internal date, YYYY-MM-DD (UTC)
	sentDay  string // Date header day, or day
}

// searchable: a needle that is not valid UTF-8 (a broken client, a wrong
// CHARSET) or holds a NUL (no IMAP string can; SQLite would end the
// pattern there) matches nothing, in SQL as in Go, rather than parts of
// characters.
func searchable(needle string) bool {
	return utf8.ValidString(needle) && !strings.Contains(needle, "\x00")
}

// containsFold is the substring test of the Go evaluation.
func containsFold(hay, needle string) bool {
	if !searchable(needle) {
		return false
	}
	return strings.Contains(asciiLower(hay), asciiLower(needle))
}

// FlagsOnly reports whether c looks at nothing but UIDs, flags and
// keywords: what a selected IMAP view holds in memory, so MatchFlags can
// answer it without the database.
func (c *SearchCriteria) FlagsOnly() bool { return c.needs() == needs{} }

// MatchFlags evaluates c, for which FlagsOnly holds, on one message, exactly
// as Search does.
func (c *SearchCriteria) MatchFlags(uid uint32, flags Flags, keywords []string) bool {
	return c.match(&searchRow{uid: uid, flags: flags, keywords: keywords})
}

// match is the exact evaluation of c on one row.
func (c *SearchCriteria) match(r *searchRow) bool {
	for _, set := range c.UIDSets {
		in := false
		for _, rg := range set {
			if rg.Start <= r.uid && r.uid <= rg.Stop {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	if !c.Since.IsZero() && r.day < c.Since.Format(time.DateOnly) {
		return false
	}
	if !c.Before.IsZero() && r.day >= c.Before.Format(time.DateOnly) {
		return false
	}
	if !c.SentSince.IsZero() && r.sentDay < c.SentSince.Format(time.DateOnly) {
		return false
	}
	if !c.SentBefore.IsZero() && r.sentDay >= c.SentBefore.Format(time.DateOnly) {
		return false
	}
	for _, h := range c.Header {
		if !headerHas(r.headers, h) {
			return false
		}
	}
	for _, v := range c.Body {
		if !containsFold(r.text, v) {
			return false
		}
	}
	for _, v := range c.Text {
		if !containsFold(r.headers, v) && !containsFold(r.text, v) {
			return false
		}
	}
	if r.flags&c.Flags != c.Flags || r.flags&c.NotFlags != 0 {
		return false
	}
	for _, k := range c.Keywords {
		if !hasKeyword(r.keywords, k) {
			return false
		}
	}
	for _, k := range c.NotKeywords {
		if hasKeyword(r.keywords, k) {
			return false
		}
	}
	if c.Larger > 0 && r.size <= c.Larger {
		return false
	}
	if c.Smaller > 0 && r.size >= c.Smaller {
		return false
	}
	for i := range c.Not {
		if c.Not[i].match(r) {
			return false
		}
	}
	for i := range c.Or {
		if !c.Or[i][0].match(r) && !c.Or[i][1].match(r) {
			return false
		}
	}
	return true
}

// validKeyword: no stored keyword is empty or holds a space or control
// character (keywords are atoms), so such a criterion matches nothing.
func validKeyword(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] == 0x7f {
			return false
		}
	}
	return true
}

func hasKeyword(kws []string, k string) bool {
	if !validKeyword(k) {
		return false
	}
	for _, x := range kws {
		if asciiLower(x) == asciiLower(k) { // as keywordSQL: ASCII only
			return true
		}
	}
	return false
}

// headerHas reports whether one field named h.Name has h.Value in its value.
func headerHas(headers string, h HeaderMatch) bool {
	name := asciiLower(h.Name)
	for len(headers) > 0 {
		line := headers
		if i := strings.IndexByte(headers, '\n'); i >= 0 {
			line, headers = headers[:i], headers[i+1:]
		} else {
			headers = ""
		}
		n, v, ok := strings.Cut(line, ":")
		if !ok || n != name {
			continue
		}
		if containsFold(strings.TrimPrefix(v, " "), h.Value) {
			return true
		}
	}
	return false
}
