package storage

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// decodeEnvelope decodes js with a new decoder, into a new Envelope.
func decodeEnvelope(js string) (*Envelope, error) {
	return new(EnvelopeDecoder).decode(js)
}

// decodeEnvelopeFast decodes js with the fast path alone.
func decodeEnvelopeFast(js string) (*Envelope, bool) {
	return new(EnvelopeDecoder).fast(js)
}

// sameAsJSON checks that decodeEnvelope gives exactly what json.Unmarshal
// gives for js: the same value, or an error when it errs.
func sameAsJSON(t *testing.T, js string) {
	t.Helper()
	var want Envelope
	werr := json.Unmarshal([]byte(js), &want)
	got, err := decodeEnvelope(js)
	if (err != nil) != (werr != nil) {
		t.Fatalf("%q: error %v, encoding/json's %v", js, err, werr)
	}
	if err == nil && !reflect.DeepEqual(*got, want) {
		t.Fatalf("%q:\ngot  %#v\nwant %#v", js, *got, want)
	}
	// A decoder that decoded another envelope before gives the same.
	var d EnvelopeDecoder
	if _, err := d.decode(fullEnvelope); err != nil {
		t.Fatal(err)
	}
	got, err = d.decode(js)
	if (err != nil) != (werr != nil) {
		t.Fatalf("%q: reused decoder: error %v, encoding/json's %v", js, err, werr)
	}
	if err == nil && !reflect.DeepEqual(*got, want) {
		t.Fatalf("%q: reused decoder:\ngot  %#v\nwant %#v", js, *got, want)
	}
	// The fast path never accepts what encoding/json rejects or reads
	// differently.
	if fast, ok := decodeEnvelopeFast(js); ok {
		if werr != nil {
			t.Fatalf("%q: fast path accepted what encoding/json rejects: %v", js, werr)
		}
		if !reflect.DeepEqual(*fast, want) {
			t.Fatalf("%q: fast path\ngot  %#v\nwant %#v", js, *fast, want)
		}
	}
}

// fullEnvelope has every field, and more addresses than most.
const fullEnvelope = `{"d":"2024-06-04T10:00:00+05:30","s":"full","f":[{"n":"F","m":"f","h":"x"},{"m":"g"}],` +
	`"se":[{"n":"S","m":"s","h":"x"}],"r":[{"n":"F","m":"f","h":"x"},{"m":"g"}],"t":[{"m":"t1"},{"m":"t2"},{"m":"t3"}],` +
	`"c":[{"n":"C"}],"b":[{"h":"b"}],"i":["a@b","c@d","e@f"],"mi":"m@x"}`

// envelopes returns the envelopes of a parsed message, nested ones
// (message/rfc822 parts) included.
func envelopes(pm *ParsedMessage) []*Envelope {
	out := []*Envelope{&pm.Envelope}
	var walk func(p *BodyPart)
	walk = func(p *BodyPart) {
		if p.Envelope != nil {
			out = append(out, p.Envelope)
		}
		if p.Message != nil {
			walk(p.Message)
		}
		for i := range p.Children {
			walk(&p.Children[i])
		}
	}
	walk(&pm.Body)
	return out
}

// Every envelope of the corpus, stored as delivery stores it, decodes by
// the fast path to what encoding/json decodes, and back to the same JSON.
func TestDecodeEnvelopeCorpus(t *testing.T) {
	n := 0
	for _, raw := range corpusMessages(t) {
		for _, env := range envelopes(parse(t, raw)) {
			js, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			sameAsJSON(t, string(js))
			got, ok := decodeEnvelopeFast(string(js))
			if !ok {
				t.Fatalf("fast path refused what json.Marshal wrote: %s", js)
			}
			back, _ := json.Marshal(got)
			if string(back) != string(js) {
				t.Fatalf("round trip:\n%s\n%s", js, back)
			}
			n++
		}
	}
	t.Logf("%d envelopes", n)
}

// Values json.Marshal escapes (HTML characters, controls, U+2028, astral
// runes) and every field at once.
func TestDecodeEnvelopeEscapes(t *testing.T) {
	env := Envelope{
		Date:      time.Date(2024, 6, 4, 10, 0, 0, 500, time.FixedZone("", 5*3600+1800)),
		Subject:   "<b>&amp;</b> \"q\" \\ \t\n\r\x01 \u2028\u2029 😀 Zoë 日本",
		From:      []Address{{Name: "A & B", Mailbox: "a", Host: "x.example"}},
		Sender:    []Address{{Mailbox: "s", Host: "y"}},
		ReplyTo:   []Address{{Name: "R"}},
		To:        []Address{{Name: "T1", Mailbox: "t1", Host: "h"}, {Mailbox: "t2"}, {Host: "h3"}},
		Cc:        []Address{{Name: "\u00e9\U0001F600", Mailbox: "c", Host: "h"}},
		Bcc:       []Address{{Name: "b"}},
		InReplyTo: []string{"a@b", "<c@d>"},
		MessageID: "id@example",
	}
	js, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decodeEnvelopeFast(string(js)); !ok {
		t.Fatalf("fast path refused %s", js)
	}
	sameAsJSON(t, string(js))
	sameAsJSON(t, "{}")
}

// Input the fast path leaves to encoding/json, and broken input: the result
// (or the error) is still encoding/json's.
func TestDecodeEnvelopeHostile(t *testing.T) {
	for _, js := range hostileEnvelopes {
		sameAsJSON(t, js)
	}
}

var hostileEnvelopes = []string{
	``, `{`, `}`, `[]`, `null`, `{} `, ` {}`, `{}{}`, `{"s":"x"}x`,
	`{"s":"a","s":"b"}`,
	`{"f":[{"n":"a","m":"b"}],"f":[{"n":"c"}]}`,
	`{"f":[{"n":"a","n":"b"}]}`,
	`{"S":"upper key"}`, `{"SE":[{"N":"x"}]}`, `{"\u0073":"escaped key"}`,
	`{"zz":1,"s":"unknown key"}`,
	`{"s":null}`, `{"f":null}`, `{"f":[null]}`, `{"i":null}`, `{"i":[null]}`, `{"d":null}`,
	`{"f":[]}`, `{"i":[]}`, `{"f":[{}]}`, `{"f":[],"t":[{"m":"x"}],"c":[]}`,
	`{"s":1}`, `{"s":true}`, `{"f":{}}`, `{"f":[1]}`, `{"i":["a",2]}`,
	`{ "s" : "spaces" }`, "{\"s\":\"a\"\n}",
	`{"d":"2024-06-04T10:00:00Z"}`, `{"d":"2024-06-04T10:00:00.123+02:00"}`,
	`{"d":"2024-06-04T10:00:00+24:00"}`, `{"d":"0001-01-01T00:00:00Z"}`,
	`{"d":"2024-06-04 10:00:00Z"}`, `{"d":"2024-06-04T10:00:00\u005a"}`, `{"d":""}`, `{"d":5}`,
	`{"s":"\ud83d\ude00"}`, `{"s":"\ud83d"}`, `{"s":"\ude00\ud83d"}`, `{"s":"\ud83dx"}`,
	`{"s":"\ud83d\u0041"}`, `{"s":"\u00"}`, `{"s":"\uZZZZ"}`, `{"s":"\x"}`, `{"s":"\"}`,
	`{"s":"\/\b\f\n\r\t\"\\"}`, `{"s":"\u0000"}`, "{\"s\":\"tab\there\"}",
	"{\"s\":\"\xff\"}", "{\"s\":\"a\\n\xc3\"}", "{\"s\":\"\xed\xa0\x80\"}",
	`{"mi":"a","mi":"b"}`, `{"mi":""}`, `{"f":[{"n":""}]}`,
	`{"f":[{"n":"a"},]}`, `{"f":[,]}`, `{"s":"a",}`, `{,}`, `{"s"}`, `{"s":}`,
}

// FuzzDecodeEnvelope: on any input, decodeEnvelope agrees with
// encoding/json (value or error), and the fast path accepts nothing that
// encoding/json would read otherwise.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, js := range hostileEnvelopes {
		f.Add(js)
	}
	f.Add(`{"d":"2023-10-02T14:41:54+01:00","s":"Fwd: Weekly summary","f":[{"n":"Zoë Miller","m":"zomiller11","h":"example.net"}],"se":[{"n":"Zoë Miller","m":"zomiller11","h":"example.net"}],"r":[{"n":"Zoë Miller","m":"zomiller11","h":"example.net"}],"t":[{"n":"Ольга Nuñez","m":"nuez1","h":"corp.example"}],"i":["231.897c06f2785e892c@mail.example.com"],"mi":"bench-0@example.test"}`)
	f.Add(`{"d":"0001-01-01T00:00:00Z","s":"\u003cb\u003e \u0026 \u2028","t":[{"m":"a","h":"b"},{"n":"\ud83d\ude00"}],"c":[],"b":[{"n":"x"}]}`)
	f.Fuzz(func(t *testing.T, js string) {
		sameAsJSON(t, js)
	})
}

// One decoder decoding many envelopes in a row (as FETCH does) leaves
// nothing of one in the next: each result is what encoding/json gives for
// its input alone, fast path or not, full envelope after empty and after
// broken input.
func TestEnvelopeDecoderReuse(t *testing.T) {
	var inputs []string
	for _, raw := range corpusMessages(t) {
		for _, env := range envelopes(parse(t, raw)) {
			js, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, string(js))
		}
	}
	// Each hostile input between two corpus envelopes.
	var seq []string
	for i, js := range hostileEnvelopes {
		seq = append(seq, inputs[i%len(inputs)], js)
	}
	seq = append(seq, inputs...)
	var d EnvelopeDecoder
	for _, js := range seq {
		var want Envelope
		werr := json.Unmarshal([]byte(js), &want)
		got, err := d.decode(js)
		if (err != nil) != (werr != nil) {
			t.Fatalf("%q: error %v, encoding/json's %v", js, err, werr)
		}
		if err == nil && !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q:\ngot  %#v\nwant %#v", js, *got, want)
		}
	}
}

// BenchmarkEnvelopeDecoder decodes the corpus envelopes with one decoder,
// as FETCH ENVELOPE does.
func BenchmarkEnvelopeDecoder(b *testing.B) {
	var inputs []string
	for _, raw := range corpusMessages(b) {
		js, err := json.Marshal(parse(b, raw).Envelope)
		if err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, string(js))
	}
	b.ReportAllocs()
	b.ResetTimer()
	var d EnvelopeDecoder
	for i := 0; i < b.N; i++ {
		if _, err := d.decode(inputs[i%len(inputs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// plain8 says a word is plain exactly when its 8 bytes are: every byte
// value at every position among plain neighbours, then words of random
// bytes (where it may refuse a plain word after a special byte, but never
// accept a special one).
func TestPlain8(t *testing.T) {
	word := func(b [8]byte) uint64 { return load8(string(b[:]), 0) }
	for pos := 0; pos < 8; pos++ {
		for v := 0; v < 256; v++ {
			b := [8]byte{'a', 'Z', ' ', '~', '0', '{', '}', 'x'}
			b[pos] = byte(v)
			if got := plain8(word(b)); got != plainByte[v] {
				t.Fatalf("byte %#x at %d: plain8 %v", v, pos, got)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1_000_000; i++ {
		var b [8]byte
		all := true
		for j := range b {
			b[j] = byte(rng.Uint32())
			if rng.IntN(2) == 0 {
				b[j] = byte(0x20 + rng.IntN(0x60))
			}
			all = all && plainByte[b[j]]
		}
		if plain8(word(b)) && !all {
			t.Fatalf("%q: plain8 accepts a special byte", b)
		}
	}
}

// Sender and Reply-To written as From was decode to From's addresses; the
// same text elsewhere, or From given twice, does not fool the decoder.
func TestDecodeEnvelopeSharedFrom(t *testing.T) {
	for _, js := range []string{
		`{"f":[{"n":"A","m":"a","h":"x"}],"se":[{"n":"A","m":"a","h":"x"}],"r":[{"n":"A","m":"a","h":"x"}]}`,
		`{"f":[{"n":"A","m":"a","h":"x"}],"se":[{"n":"A","m":"a","h":"x"},{"m":"b"}],"r":[{"n":"A","m":"a","h":"x"}],"t":[{"n":"A","m":"a","h":"x"}]}`,
		`{"f":[],"se":[],"r":[{"m":"r"}]}`,
		`{"f":[{"m":"a"}],"f":[{"m":"a"}]}`,
		`{"se":[{"m":"a"}],"f":[{"m":"a"}],"r":[{"m":"a"}]}`,
		`{"f":[{"m":"a"}],"se":[{"m":"a"}]x}`,
		`{"f":[{"m":"a"}],"se":[{"m":"a"}],"se":[{"m":"a"}]}`,
	} {
		sameAsJSON(t, js)
	}
	e, ok := decodeEnvelopeFast(`{"f":[{"n":"A","m":"a","h":"x"}],"se":[{"n":"A","m":"a","h":"x"}],"r":[{"n":"A","m":"a","h":"x"},{"m":"b"}]}`)
	if !ok || len(e.Sender) != 1 || len(e.ReplyTo) != 2 || e.ReplyTo[1].Mailbox != "b" {
		t.Fatalf("got %#v", e)
	}
}

func TestListIndex(t *testing.T) {
	for i, l := range envLists {
		if got := listIndex(l.key); got != i {
			t.Errorf("listIndex(%q) = %d, want %d", l.key, got, i)
		}
	}
	for _, k := range []string{"", "d", "s", "i", "mi", "F", "ff", "x"} {
		if got := listIndex(k); got != -1 {
			t.Errorf("listIndex(%q) = %d, want -1", k, got)
		}
	}
}
