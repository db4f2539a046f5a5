package dkim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

const msg = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hi\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHello  \r\nworld\r\n\r\n"

func verify(t *testing.T, signed []byte, txt string) error {
	t.Helper()
	vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(signed), &msgdkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != "s1._domainkey.example.org" {
				t.Fatalf("looked up %s", name)
			}
			return []string{txt}, nil
		},
	})
	if err != nil {
		return err
	}
	if len(vs) != 1 {
		t.Fatalf("%d verifications", len(vs))
	}
	return vs[0].Err
}

func TestSignVerifyRSA(t *testing.T) {
	pemKey, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	if n := key.Public().(*rsa.PublicKey).N.BitLen(); n != KeyBits {
		t.Fatalf("%d-bit key", n)
	}
	txt, err := TXTRecord(key)
	if err != nil || !strings.HasPrefix(txt, "v=DKIM1; k=rsa; p=") {
		t.Fatalf("TXT %q %v", txt, err)
	}
	sig, err := Sign(strings.NewReader(msg), "example.org", "s1", key)
	if err != nil {
		t.Fatal(err)
	}
	signed := []byte(sig + msg)
	if err := verify(t, signed, txt); err != nil {
		t.Fatalf("does not verify: %v", err)
	}
	// Relaxed canonicalisation survives refolding and trailing spaces...
	relaxed := bytes.Replace(signed, []byte("Subject: hi"), []byte("Subject:   hi "), 1)
	relaxed = bytes.Replace(relaxed, []byte("Hello  \r\n"), []byte("Hello\r\n"), 1)
	if err := verify(t, relaxed, txt); err != nil {
		t.Errorf("relaxed change broke the signature: %v", err)
	}
	// ...but not a second Subject (oversigned) or another body.
	for name, bad := range map[string][]byte{
		"added Subject": bytes.Replace(signed, []byte("To: "), []byte("Subject: urgent\r\nTo: "), 1),
		"body":          bytes.Replace(signed, []byte("world"), []byte("World"), 1),
	} {
		if err := verify(t, bad, txt); err == nil {
			t.Errorf("%s still verifies", name)
		}
	}

	// PKCS #1 keys (from other tools) are read too.
	der := x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	if _, err := ParseKey(string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}))); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "not pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
}

func TestEd25519Record(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	txt, err := TXTRecord(priv)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sign(strings.NewReader(msg), "example.org", "s1", priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, []byte(sig+msg), txt); err != nil {
		t.Fatalf("ed25519 record %q does not verify: %v", txt, err)
	}
}

func TestZoneLineAndSelector(t *testing.T) {
	txt := strings.Repeat("a", 600)
	line := ZoneLine("example.org", "s1", txt)
	want := `s1._domainkey.example.org. IN TXT ( "` + txt[:255] + `" "` + txt[255:510] + `" "` + txt[510:] + `" )`
	if line != want {
		t.Errorf("ZoneLine: %s", line)
	}
	for s, ok := range map[string]bool{"pombo": true, "s2026.mail": true, "a-b": true, "": false, "-a": false, "a..b": false, "a_b": false, "a b": false, "é": false} {
		if ValidSelector(s) != ok {
			t.Errorf("ValidSelector(%q) = %v", s, !ok)
		}
	}
}
