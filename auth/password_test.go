package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashPasswordFormat(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(h) {
		t.Fatalf("hash %q does not match %v", h, phcRE)
	}
	if NeedsRehash(h) {
		t.Errorf("NeedsRehash(fresh hash) = true")
	}
}

func TestHashPasswordSalted(t *testing.T) {
	a, err := HashPassword("same password")
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPassword("same password")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two hashes of the same password are equal: %q", a)
	}
	if strings.Split(a, "$")[4] == strings.Split(b, "$")[4] {
		t.Fatalf("two hashes share a salt: %q %q", a, b)
	}
}

func TestVerifyPassword(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pw   string
		want bool
	}{
		{"s3cret", true},
		{"s3cret ", false},
		{"S3cret", false},
		{"", false},
		{"s3cre", false},
	} {
		got, err := VerifyPassword(h, c.pw)
		if err != nil {
			t.Fatalf("VerifyPassword(%q): %v", c.pw, err)
		}
		if got != c.want {
			t.Errorf("VerifyPassword(%q) = %v, want %v", c.pw, got, c.want)
		}
	}
}

// TestVerifyPasswordInterop checks hashes made by another implementation
// (argon2-cffi, on the reference C code), including other parameters and a
// 16-byte key: parameters are read from the string, in the right order.
func TestVerifyPasswordInterop(t *testing.T) {
	for _, c := range []struct{ phc, pw string }{
		{"$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg", "correct horse battery staple"},
		{"$argon2id$v=19$m=102400,t=2,p=8$tSm+JOWigOgPZx/g44K5fQ$WDyus6py50bVFIPkjA28lQ", "s3kr3tp4ssw0rd"},
	} {
		ok, err := VerifyPassword(c.phc, c.pw)
		if err != nil || !ok {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v; want true", c.phc, c.pw, ok, err)
		}
		if ok, _ := VerifyPassword(c.phc, c.pw+"x"); ok {
			t.Errorf("VerifyPassword(%q, wrong) = true", c.phc)
		}
		if !NeedsRehash(c.phc) {
			t.Errorf("NeedsRehash(%q) = false", c.phc)
		}
	}
}

// replaceField returns phc with its $-separated field i replaced.
func replaceField(phc string, i int, v string) string {
	f := strings.Split(phc, "$")
	f[i] = v
	return strings.Join(f, "$")
}

// flipChar changes the base64 character at position i of s to another valid one.
func flipChar(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestVerifyPasswordTampered(t *testing.T) {
	const pw = "tamper me"
	h, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(h, "$")
	for name, bad := range map[string]string{
		"key":    replaceField(h, 5, flipChar(f[5], 10)),
		"salt":   replaceField(h, 4, flipChar(f[4], 3)),
		"memory": replaceField(h, 3, "m=19457,t=2,p=1"),
		"time":   replaceField(h, 3, "m=19456,t=3,p=1"),
	} {
		ok, err := VerifyPassword(bad, pw)
		if err != nil {
			t.Errorf("%s: VerifyPassword(%q): %v", name, bad, err)
		}
		if ok {
			t.Errorf("%s: tampered hash %q verifies", name, bad)
		}
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good, err := HashPassword("x")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(good, "$")
	salt, key := f[4], f[5]
	for _, c := range []struct {
		name, phc string
		want      error
	}{
		{"empty", "", ErrMalformedHash},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", ErrUnsupportedHash},
		{"argon2i", replaceField(good, 1, "argon2i"), ErrUnsupportedHash},
		{"version 16", replaceField(good, 2, "v=16"), ErrUnsupportedHash},
		{"no version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"trailing $", good + "$", ErrMalformedHash},
		{"no leading $", good[1:], ErrMalformedHash},
		{"memory 4 GiB", replaceField(good, 3, "m=4194304,t=2,p=1"), ErrMalformedHash},
		{"memory 1 GiB + 1", replaceField(good, 3, "m=1048577,t=2,p=1"), ErrMalformedHash},
		{"memory below 8p", replaceField(good, 3, "m=7,t=2,p=1"), ErrMalformedHash},
		{"memory overflow", replaceField(good, 3, "m=99999999999,t=2,p=1"), ErrMalformedHash},
		{"time 0", replaceField(good, 3, "m=19456,t=0,p=1"), ErrMalformedHash},
		{"time 21", replaceField(good, 3, "m=19456,t=21,p=1"), ErrMalformedHash},
		{"time 1e9", replaceField(good, 3, "m=19456,t=1000000000,p=1"), ErrMalformedHash},
		{"threads 0", replaceField(good, 3, "m=19456,t=2,p=0"), ErrMalformedHash},
		{"threads 17", replaceField(good, 3, "m=19456,t=2,p=17"), ErrMalformedHash},
		{"threads 256", replaceField(good, 3, "m=19456,t=2,p=256"), ErrMalformedHash},
		{"negative", replaceField(good, 3, "m=-1,t=2,p=1"), ErrMalformedHash},
		{"plus sign", replaceField(good, 3, "m=+19456,t=2,p=1"), ErrMalformedHash},
		{"leading zero", replaceField(good, 3, "m=019456,t=2,p=1"), ErrMalformedHash},
		{"order", replaceField(good, 3, "t=2,m=19456,p=1"), ErrMalformedHash},
		{"extra param", replaceField(good, 3, "m=19456,t=2,p=1,keyid=x"), ErrMalformedHash},
		{"missing param", replaceField(good, 3, "m=19456,t=2"), ErrMalformedHash},
		{"spaces", replaceField(good, 3, "m=19456, t=2, p=1"), ErrMalformedHash},
		{"padded salt", replaceField(good, 4, salt+"=="), ErrMalformedHash},
		{"bad base64", replaceField(good, 5, "!!!!"+key[4:]), ErrMalformedHash},
		{"short salt", replaceField(good, 4, "AAAA"), ErrMalformedHash},
		{"empty key", replaceField(good, 5, ""), ErrMalformedHash},
		{"short key", replaceField(good, 5, key[:16]), ErrMalformedHash},
		{"long key", replaceField(good, 5, strings.Repeat("A", 100)), ErrMalformedHash},
		{"huge", good + strings.Repeat("A", 1000), ErrMalformedHash},
	} {
		ok, err := VerifyPassword(c.phc, "x")
		if ok || !errors.Is(err, c.want) {
			t.Errorf("%s: VerifyPassword(%q) = %v, %v; want error %v", c.name, c.phc, ok, err, c.want)
		}
	}
}

func TestHashPasswordRefusesInvalid(t *testing.T) {
	for _, c := range []struct {
		pw   string
		want error
	}{
		{"", ErrEmptyPassword},
		{"a\x00b", ErrPasswordHasNUL},
		{strings.Repeat("x", MaxPasswordLen+1), ErrPasswordTooLong},
	} {
		if h, err := HashPassword(c.pw); !errors.Is(err, c.want) || h != "" {
			t.Errorf("HashPassword(%.20q) = %q, %v; want %v", c.pw, h, err, c.want)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	for _, c := range []struct {
		pw   string
		want error
	}{
		{"a", nil},
		{"pässwörd with spaces", nil},
		{strings.Repeat("x", MaxPasswordLen), nil},
		{"", ErrEmptyPassword},
		{strings.Repeat("x", MaxPasswordLen+1), ErrPasswordTooLong},
		{"\x00", ErrPasswordHasNUL},
		{"abc\x00", ErrPasswordHasNUL},
	} {
		if err := ValidatePassword(c.pw); !errors.Is(err, c.want) {
			t.Errorf("ValidatePassword(%.20q) = %v, want %v", c.pw, err, c.want)
		}
	}
}

func TestDummyHashIsDefault(t *testing.T) {
	// The unknown-user path must cost what a real default hash costs.
	if NeedsRehash(dummyHash) {
		t.Fatalf("dummyHash %q does not use the default parameters", dummyHash)
	}
	if !phcRE.MatchString(dummyHash) {
		t.Fatalf("dummyHash %q does not match %v", dummyHash, phcRE)
	}
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := VerifyPassword(h, "correct horse battery staple"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func FuzzParsePHC(f *testing.F) {
	f.Add(dummyHash)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Add("$argon2id$v=19$m=019456,t=2,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$t=2,m=19456,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA==")
	f.Add("$$$$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrUnsupportedHash) {
				t.Fatalf("parsePHC(%q): unexpected error kind %v", s, err)
			}
			if _, verr := VerifyPassword(s, "x"); verr == nil {
				t.Fatalf("parsePHC(%q) fails but VerifyPassword accepts it", s)
			}
			return
		}
		// One spelling per hash: what is accepted re-encodes to itself.
		if got := encodePHC(h.params, h.salt, h.key); got != s {
			t.Fatalf("parsePHC(%q) re-encodes to %q", s, got)
		}
		p := h.params
		if p.memory > maxMemory || p.memory < 8*uint32(p.threads) || p.time < 1 || p.time > maxTime ||
			p.threads < 1 || p.threads > maxThreads ||
			len(h.salt) < minSaltLen || len(h.salt) > maxSaltLen || len(h.key) < minKeyLen || len(h.key) > maxKeyLen {
			t.Fatalf("parsePHC(%q) accepted out-of-bounds %+v salt %d key %d", s, p, len(h.salt), len(h.key))
		}
		if p.memory <= 256 && p.time <= 2 {
			if _, err := VerifyPassword(s, "x"); err != nil {
				t.Fatalf("VerifyPassword(%q): %v after parse succeeded", s, err)
			}
		}
	})
}
