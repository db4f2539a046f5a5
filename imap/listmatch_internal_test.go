package imap

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapserver"
)

// TestListMatcherAgreesWithMatchList compares the matcher with imapserver's
// MatchList (the reference, short inputs only: it backtracks) on random
// names, references and patterns over an alphabet that makes wildcards,
// the delimiter and literals meet in every order.
func TestListMatcherAgreesWithMatchList(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, max int) string {
		var b strings.Builder
		for n := rng.IntN(max + 1); n > 0; n-- {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	refs := []string{"", "a", "a/", "b/a", "/", "a//", "*"}
	matches := 0
	for i := 0; i < 200000; i++ {
		name := word("ab/é", 9)
		pattern := word("ab/*%", 7)
		ref := refs[rng.IntN(len(refs))]
		want := imapserver.MatchList(name, listDelim, ref, pattern)
		m := newListMatcher(ref, []string{pattern})
		got := m.match(name)
		if got != want {
			t.Fatalf("name %q ref %q pattern %q: matcher says %v, MatchList %v", name, ref, pattern, got, want)
		}
		if got {
			matches++
		}
	}
	if matches < 1000 {
		t.Fatalf("only %d of the random cases matched: the comparison says little", matches)
	}
}

// TestListMatcherBacktrackingPattern: a pattern that makes a backtracking
// matcher try every way to split the name (about 17 s at 12 pairs and
// 30 octets with MatchList, and five times more per pair) is decided at
// once, both ways.
func TestListMatcherBacktrackingPattern(t *testing.T) {
	name := strings.Repeat("a", 60)
	bad := strings.Repeat("*a", 25) + "b"
	good := strings.Repeat("%a", 25) + "*"
	m := newListMatcher("", []string{bad})
	if m.match(name) {
		t.Errorf("%q matched %q", bad, name)
	}
	m = newListMatcher("", []string{good})
	if !m.match(name) {
		t.Errorf("%q did not match %q", good, name)
	}
	// A pattern longer than any name, with wildcards between its octets.
	long := strings.Repeat("a%", 4000)
	m = newListMatcher("", []string{long})
	if m.match(name) {
		t.Errorf("a pattern of 4000 literals matched %q", name)
	}
}
