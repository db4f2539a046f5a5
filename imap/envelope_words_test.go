package imap

import (
	"fmt"
	"mime"
	"strings"
	"testing"
)

// The encoded-name cache gives what imapserver would write, and stays
// small however many and however long the names: a hostile mailbox of
// distinct long names must not make FETCH hold them all.
func TestEnvelopeWordsBounded(t *testing.T) {
	var c envelopes
	long := strings.Repeat("Ω", maxWordLen)
	for i := 0; i < 3*maxWords; i++ {
		for _, name := range []string{fmt.Sprintf("Zoë %d", i), fmt.Sprintf("plain %d", i), long + fmt.Sprint(i), ""} {
			if got, want := c.word(name), mime.QEncoding.Encode("utf-8", name); got != want && got != name {
				t.Fatalf("word(%q) = %q, want %q or the name itself", name, got, want)
			}
		}
		if len(c.words) > maxWords {
			t.Fatalf("%d names kept, at most %d wanted", len(c.words), maxWords)
		}
	}
	for name := range c.words {
		if len(name) > maxWordLen || plainWord(name) {
			t.Fatalf("kept %.40q (%d octets)", name, len(name))
		}
	}
	if got := c.word("Zoë 1"); got != mime.QEncoding.Encode("utf-8", "Zoë 1") {
		t.Fatalf("cached word = %q", got)
	}
}
