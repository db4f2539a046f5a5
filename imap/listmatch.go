package imap

import (
	"strings"

	"pombo/storage"
)

// listMatcher matches mailbox names against the reference and patterns of
// one LIST command (RFC 9051 §6.3.9), as imapserver.MatchList does, but in
// time bounded by the product of the lengths: MatchList backtracks, and a
// pattern like "*a*a*a*a*a*a*a*a*a*a*a*a*b" against a name of 30 a's keeps
// it busy for minutes. The reference and patterns are prepared once per
// command, not once per mailbox.
type listMatcher struct {
	plain, inbox []listPattern // as given; with INBOX in its canonical case
	all          bool          // some pattern matches every name
	cur, next    []bool        // scratch of glob
}

// listPattern is a pattern with its reference: a name matches when it
// starts with prefix and the rest matches glob.
type listPattern struct {
	prefix string
	glob   string // runs of wildcards reduced to one
}

const listDelim = storage.MailboxDelim

func newListMatcher(ref string, patterns []string) *listMatcher {
	m := &listMatcher{}
	for _, p := range patterns {
		lp := compileListPattern(ref, p)
		if lp.prefix == "" && lp.glob == "*" {
			m.all = true
		}
		m.plain = append(m.plain, lp)
		m.inbox = append(m.inbox, compileListPattern(canonicalInboxPrefix(ref), canonicalInboxPrefix(p)))
	}
	return m
}

// canonicalInboxPrefix writes a leading "INBOX", in any case, as INBOX.
func canonicalInboxPrefix(s string) string {
	if len(s) >= 5 && s[:5] != "INBOX" && strings.EqualFold(s[:5], "INBOX") {
		return "INBOX" + s[5:]
	}
	return s
}

// compileListPattern joins ref and pattern as imapserver.MatchList does: a
// pattern that starts with the delimiter ignores the reference, and a
// reference is a hierarchy level (it ends with the delimiter).
func compileListPattern(ref, pattern string) listPattern {
	if strings.HasPrefix(pattern, string(listDelim)) {
		ref, pattern = "", pattern[1:]
	}
	if ref != "" && !strings.HasSuffix(ref, string(listDelim)) {
		ref += string(listDelim)
	}
	// "**", "*%" and "%*" match what "*" does, "%%" what "%" does.
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '*' && c != '%' {
			b.WriteByte(c)
			continue
		}
		j := i
		for j < len(pattern) && (pattern[j] == '*' || pattern[j] == '%') {
			if pattern[j] == '*' {
				c = '*'
			}
			j++
		}
		b.WriteByte(c)
		i = j - 1
	}
	return listPattern{prefix: ref, glob: b.String()}
}

func (m *listMatcher) match(name string) bool {
	if m.all {
		return true
	}
	// INBOX is case-insensitive (RFC 9051 §5.1), and so is the INBOX part
	// of its children's names, which storage keeps as "INBOX/...": these
	// match the patterns with INBOX in that case. Other names match as
	// they are.
	pats := m.plain
	if name == "INBOX" || strings.HasPrefix(name, "INBOX"+string(listDelim)) {
		pats = m.inbox
	}
	for _, p := range pats {
		if rest, ok := strings.CutPrefix(name, p.prefix); ok && m.glob(rest, p.glob) {
			return true
		}
	}
	return false
}

// glob reports whether name matches pattern, where * matches any run of
// octets and % any run without the delimiter. It follows the pattern
// through the set of name positions reachable so far: O(len(name) *
// len(pattern)), and a pattern with more literal octets than the name has
// fails at once.
func (m *listMatcher) glob(name, pattern string) bool {
	switch pattern {
	case "*":
		return true
	case "%":
		return strings.IndexByte(name, listDelim) < 0
	}
	if strings.IndexAny(pattern, "*%") < 0 {
		return name == pattern
	}
	literals := 0
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != '*' && pattern[i] != '%' {
			literals++
		}
	}
	if literals > len(name) {
		return false
	}
	n := len(name)
	if cap(m.cur) < n+1 {
		m.cur, m.next = make([]bool, n+1), make([]bool, n+1)
	}
	cur, next := m.cur[:n+1], m.next[:n+1]
	// cur[i]: the pattern so far matches name[:i].
	clear(cur)
	cur[0] = true
	for k := 0; k < len(pattern); k++ {
		c := pattern[k]
		alive := false
		switch c {
		case '*':
			run := false
			for j := 0; j <= n; j++ {
				run = run || cur[j]
				next[j] = run
			}
			alive = run
		case '%':
			run := false
			for j := 0; j <= n; j++ {
				if j > 0 && name[j-1] == listDelim {
					run = false
				}
				run = run || cur[j]
				next[j] = run
				alive = alive || run
			}
		default:
			next[0] = false
			for j := 1; j <= n; j++ {
				next[j] = cur[j-1] && name[j-1] == c
				alive = alive || next[j]
			}
		}
		if !alive {
			return false
		}
		cur, next = next, cur
	}
	return cur[n]
}
