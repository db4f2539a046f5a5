package storage

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// EnvelopeDecoder decodes the stored envelopes of FETCH rows one after the
// other, reusing its memory: FETCH ENVELOPE on a large mailbox decodes one
// per message, and a decoder per command saves the allocations of each.
type EnvelopeDecoder struct {
	env   Envelope
	addrs []Address
	ids   []string
}

// Decode decodes the stored ENVELOPE of r. The Envelope and its slices are
// valid until the next call, and are not to be changed: its strings share
// the row's memory, and Sender or Reply-To may share From's addresses.
func (d *EnvelopeDecoder) Decode(r *FetchRow) (*Envelope, error) {
	e, err := d.decode(r.envJS)
	if err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	return e, nil
}

// decode decodes blobs.envelope. The column holds what json.Marshal wrote
// for an Envelope, and FETCH ENVELOPE decodes one per message: with
// encoding/json that was a fifth of the server's CPU on a large mailbox. So
// the shape json.Marshal writes is decoded by hand, with the strings sharing
// js's memory where they need no unescaping; any other input (whitespace,
// other keys, duplicates, null, invalid UTF-8, lone surrogates...) goes to
// encoding/json, so that the result is always exactly json.Unmarshal's
// (FuzzDecodeEnvelope checks it).
func (d *EnvelopeDecoder) decode(js string) (*Envelope, error) {
	if e, ok := d.fast(js); ok {
		return e, nil
	}
	var e Envelope
	if err := json.Unmarshal([]byte(js), &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Keys of the Envelope object, as bits for the duplicate check.
const (
	envDate = 1 << iota
	envSubject
	envFrom
	envSender
	envReplyTo
	envTo
	envCc
	envBcc
	envInReplyTo
	envMessageID
)

// envLists are the address-list keys, in Envelope's field order.
var envLists = [...]struct {
	key string
	bit int
}{
	{"f", envFrom}, {"se", envSender}, {"r", envReplyTo},
	{"t", envTo}, {"c", envCc}, {"b", envBcc},
}

// listIndex returns the index in envLists of an address-list key, or -1.
func listIndex(key string) int {
	switch key {
	case "f":
		return 0
	case "se":
		return 1
	case "r":
		return 2
	case "t":
		return 3
	case "c":
		return 4
	case "b":
		return 5
	}
	return -1
}

// envReader reads JSON from s at i. Each method reports false for anything
// outside the subset the fast path accepts.
type envReader struct {
	s string
	i int
}

func (r *envReader) next(c byte) bool {
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return true
	}
	return false
}

// plainByte marks the bytes a JSON string holds as they are: printable
// ASCII but the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plain8 reports whether the 8 bytes of w are all plain (plainByte), with
// the bit tricks that find a byte below a bound in a word: a byte below
// 0x20, a quote, a backslash or a byte from 0x80 up sets its high bit in
// special. They can flag a plain byte (after a flagged one), never miss one:
// a flagged word just goes the byte-by-byte way.
func plain8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, b := w^(ones*'"'), w^(ones*'\\')
	special := (w-ones*0x20)&^w | (q-ones)&^q | (b-ones)&^b | w
	return special&highs == 0
}

// load8 reads s[i:i+8] as a little-endian word (one load: the compiler
// combines the byte loads).
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// rawString returns the JSON string at r.i, quotes included, and whether it
// has escapes. Invalid UTF-8 (which encoding/json replaces) is refused.
// Plain bytes go 8 at a time; after a word with a special byte, that byte
// and the rest of the word go one by one. This scan was half of the
// decoding.
func (r *envReader) rawString() (raw string, escapes, ok bool) {
	s, i := r.s, r.i
	if i >= len(s) || s[i] != '"' {
		return "", false, false
	}
	start := i
	i++
	for {
		for i+8 <= len(s) && plain8(load8(s, i)) {
			i += 8
		}
		for end := min(i+8, len(s)); i < end; {
			c := s[i]
			if plainByte[c] {
				i++
				continue
			}
			switch {
			case c == '"':
				r.i = i + 1
				return s[start : i+1], escapes, true
			case c == '\\':
				escapes = true
				i += 2 // the escape is checked by unquote
			case c < 0x20:
				return "", false, false
			default:
				_, n := utf8.DecodeRuneInString(s[i:])
				if n == 1 {
					return "", false, false
				}
				i += n
			}
		}
		if i >= len(s) {
			return "", false, false
		}
	}
}

// str reads a JSON string and returns its value.
func (r *envReader) str() (string, bool) {
	raw, escapes, ok := r.rawString()
	if !ok {
		return "", false
	}
	if !escapes {
		return raw[1 : len(raw)-1], true
	}
	return unquote(raw[1 : len(raw)-1])
}

// unquote undoes the escapes of a JSON string's content, which is valid
// UTF-8.
func unquote(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		switch s[i+1] {
		case '"', '\\', '/':
			b.WriteByte(s[i+1])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// Only a well-formed pair; json.Unmarshal turns the rest
				// into U+FFFD, which the slow path does.
				if i+12 > len(s) || s[i+6] != '\\' || s[i+7] != 'u' {
					return "", false
				}
				r2, ok := hex4(s, i+8)
				if !ok {
					return "", false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			b.WriteRune(r)
			i += 6
			continue
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// key reads an object key and its colon. The keys of an Envelope and an
// Address are one or two plain bytes: any other key, or one written with
// escapes, is left to encoding/json.
func (r *envReader) key() (string, bool) {
	s, i := r.s, r.i
	if i+4 <= len(s) && s[i] == '"' && plainByte[s[i+1]] && s[i+2] == '"' && s[i+3] == ':' {
		r.i = i + 4
		return s[i+1 : i+2], true
	}
	if i+5 <= len(s) && s[i] == '"' && plainByte[s[i+1]] && plainByte[s[i+2]] && s[i+3] == '"' && s[i+4] == ':' {
		r.i = i + 5
		return s[i+1 : i+3], true
	}
	return "", false
}

// more is called after a member of an object or array: it reads the comma
// (more is true) or the closing byte (done is true).
func (r *envReader) more(closing byte) (more, ok bool) {
	if r.next(',') {
		return true, true
	}
	return false, r.next(closing)
}

// address reads an address object, appending it to addrs.
func (r *envReader) address(addrs []Address) ([]Address, bool) {
	if !r.next('{') {
		return addrs, false
	}
	var a Address
	if r.next('}') {
		return append(addrs, a), true
	}
	var seen int
	for {
		key, ok := r.key()
		if !ok {
			return addrs, false
		}
		var dst *string
		var bit int
		switch key {
		case "n":
			dst, bit = &a.Name, 1
		case "m":
			dst, bit = &a.Mailbox, 2
		case "h":
			dst, bit = &a.Host, 4
		default:
			return addrs, false
		}
		if seen&bit != 0 {
			return addrs, false
		}
		seen |= bit
		if *dst, ok = r.str(); !ok {
			return addrs, false
		}
		more, ok := r.more('}')
		if !ok {
			return addrs, false
		}
		if !more {
			return append(addrs, a), true
		}
	}
}

// addressList reads an array of addresses, appending them to addrs.
func (r *envReader) addressList(addrs []Address) ([]Address, bool) {
	if !r.next('[') {
		return addrs, false
	}
	if r.next(']') {
		return addrs, true
	}
	for {
		var ok bool
		if addrs, ok = r.address(addrs); !ok {
			return addrs, false
		}
		more, ok := r.more(']')
		if !ok {
			return addrs, false
		}
		if !more {
			return addrs, true
		}
	}
}

// stringList reads an array of strings, appending them to out.
func (r *envReader) stringList(out []string) ([]string, bool) {
	if !r.next('[') {
		return out, false
	}
	if out == nil {
		out = []string{}
	}
	if r.next(']') {
		return out, true
	}
	for {
		v, ok := r.str()
		if !ok {
			return out, false
		}
		out = append(out, v)
		more, ok := r.more(']')
		if !ok {
			return out, false
		}
		if !more {
			return out, true
		}
	}
}

// fast decodes the subset of JSON described at decode into d.env; ok is
// false for anything else. The address lists share d.addrs.
func (d *EnvelopeDecoder) fast(js string) (*Envelope, bool) {
	r := envReader{s: js}
	if !r.next('{') {
		return nil, false
	}
	e := &d.env
	*e = Envelope{}
	if r.next('}') {
		return e, r.i == len(js)
	}
	addrs := d.addrs[:0]
	var spans [len(envLists)]struct{ start, end int } // in addrs
	var seen, present int
	var from string // the From list as written, once read
	for {
		key, ok := r.key()
		if !ok {
			return nil, false
		}
		var bit int
		switch key {
		case "d":
			bit = envDate
			raw, _, ok := r.rawString()
			// As encoding/json does: the literal, quotes and escapes
			// included, goes to time.Time's UnmarshalJSON.
			if !ok || e.Date.UnmarshalJSON([]byte(raw)) != nil {
				return nil, false
			}
		case "s":
			bit = envSubject
			if e.Subject, ok = r.str(); !ok {
				return nil, false
			}
		case "mi":
			bit = envMessageID
			if e.MessageID, ok = r.str(); !ok {
				return nil, false
			}
		case "i":
			bit = envInReplyTo
			if d.ids, ok = r.stringList(d.ids[:0]); !ok {
				return nil, false
			}
			// "[]" decodes to an empty slice, not nil.
			e.InReplyTo = d.ids[:len(d.ids):len(d.ids)]
		default:
			k := listIndex(key)
			if k < 0 {
				return nil, false
			}
			bit = envLists[k].bit
			present |= bit
			// Sender and Reply-To are most often From again, written
			// the same (the parser copies it, RFC 3501 §7.4.2): the same
			// text decodes to the same addresses, shared.
			if from != "" && strings.HasPrefix(js[r.i:], from) {
				r.i += len(from)
				spans[k] = spans[0]
				break
			}
			start := r.i
			spans[k].start = len(addrs)
			if addrs, ok = r.addressList(addrs); !ok {
				d.addrs = addrs[:0]
				return nil, false
			}
			spans[k].end = len(addrs)
			if k == 0 {
				from = js[start:r.i]
			}
		}
		if seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		more, ok := r.more('}')
		if !ok {
			return nil, false
		}
		if !more {
			break
		}
	}
	d.addrs = addrs[:0]
	if r.i != len(js) {
		return nil, false
	}
	dsts := [len(envLists)]*[]Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc}
	for k, l := range envLists {
		if present&l.bit == 0 {
			continue
		}
		if sp := spans[k]; sp.start == sp.end {
			*dsts[k] = []Address{} // "[]" decodes to an empty slice, not nil
		} else {
			*dsts[k] = addrs[sp.start:sp.end:sp.end]
		}
	}
	return e, true
}
