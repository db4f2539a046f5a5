package imap

import (
	"mime"
	"strings"

	"github.com/emersion/go-imap/v2"

	"pombo/storage"
)

// maxWords bounds the encoded names an envelopes keeps, and maxWordLen
// the length of a name it keeps: with both, a few MB at most whatever the
// mail. Real names are short; a longer one is left to imapserver.
const (
	maxWords   = 2048
	maxWordLen = 256
)

// envelopes converts the stored envelopes of one FETCH for imapserver,
// reusing its memory from one message to the next: imapserver writes an
// envelope out before the next is converted, and keeps nothing of it.
//
// It also Q-encodes the names of addresses (RFC 2047), once per name.
// imapserver passes every name through mime.QEncoding.Encode, which returns
// printable ASCII as it is, so a name encoded here goes out unchanged, byte
// for byte; but imapserver would encode it for each address list it is in
// (From, Sender and Reply-To are usually the same, RFC 3501 §7.4.2) and for
// each message, while names recur: one's correspondents are few. On the
// corpus, encoding was 29% of imapserver's ENVELOPE writing before, 10%
// after (the subjects, which seldom recur).
type envelopes struct {
	dec   storage.EnvelopeDecoder
	env   imap.Envelope
	addrs []imap.Address
	words map[string]string // names (not plain ASCII) and their encoding
}

// of returns the ENVELOPE of row, valid until the next call.
func (c *envelopes) of(row *storage.FetchRow) (*imap.Envelope, error) {
	e, err := c.dec.Decode(row)
	if err != nil {
		return nil, err
	}
	lists := [...][]storage.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc}
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	if cap(c.addrs) < n {
		c.addrs = make([]imap.Address, n)
	}
	all := c.addrs[:n]
	var out [len(lists)][]imap.Address
	k := 0
	for i, l := range lists {
		if len(l) == 0 {
			continue // nil: imapserver then writes NIL, or From for Sender and Reply-To
		}
		if (i == 1 || i == 2) && sameAddresses(l, e.From) {
			out[i] = out[0]
			continue
		}
		for j, a := range l {
			all[k+j] = imap.Address{Name: c.word(a.Name), Mailbox: a.Mailbox, Host: a.Host}
		}
		out[i] = all[k : k+len(l) : k+len(l)]
		k += len(l)
	}
	c.env = imap.Envelope{
		Date:      e.Date,
		Subject:   e.Subject,
		From:      out[0],
		Sender:    out[1],
		ReplyTo:   out[2],
		To:        out[3],
		Cc:        out[4],
		Bcc:       out[5],
		InReplyTo: e.InReplyTo,
		MessageID: e.MessageID,
	}
	return &c.env, nil
}

// word returns name as imapserver writes it: Q-encoded unless it is
// printable ASCII (or too long to keep; imapserver encodes it then).
func (c *envelopes) word(name string) string {
	if len(name) > maxWordLen || plainWord(name) {
		return name
	}
	if w, ok := c.words[name]; ok {
		return w
	}
	w := mime.QEncoding.Encode("utf-8", name)
	if c.words == nil {
		c.words = make(map[string]string)
	} else if len(c.words) >= maxWords {
		clear(c.words)
	}
	// The name shares the stored row's memory; the key must not keep it.
	c.words[strings.Clone(name)] = w
	return w
}

// plainWord reports whether mime.QEncoding.Encode returns s as it is
// (printable ASCII and tabs). Saying no to such a string would only cost
// a cache entry: Encode would return s unchanged.
func plainWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' || c > '~') && c != '\t' {
			return false
		}
	}
	return true
}

func sameAddresses(a, b []storage.Address) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
