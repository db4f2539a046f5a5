// Package dkim makes DKIM keys and signatures (RFC 6376) for mail that
// leaves pombo, on top of github.com/emersion/go-msgauth/dkim.
//
// Keys are RSA 2048 (RFC 8301 requires at least 1024 bits and recommends
// 2048; every verifier supports RSA, not every one supports Ed25519,
// RFC 8463). The private key is kept by storage in PKCS #8 PEM; the public
// key is published by the operator as the TXT record that TXTRecord returns.
//
// Signatures use relaxed/relaxed canonicalisation (they survive the header
// refolding and trailing-space changes of relays) and cover the header
// fields of RFC 6376 §5.4.1 that an author writes, each listed twice: a signed field that is
// absent, or present once, is then "oversigned", so that one added on the
// way (a second From:, a new Subject:) breaks the signature (§8.15).
package dkim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

// DefaultSelector is the selector of keys made without one.
const DefaultSelector = "pombo"

// KeyBits is the size of the RSA keys GenerateKey makes.
const KeyBits = 2048

// signedFields are the header fields a signature covers.
var signedFields = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding",
}

func headerKeys() []string {
	keys := make([]string, 0, 2*len(signedFields))
	for _, f := range signedFields {
		keys = append(keys, f, f)
	}
	return keys
}

// GenerateKey makes a new RSA key and returns it as PKCS #8 PEM.
func GenerateKey() (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return "", fmt.Errorf("generate DKIM key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("encode DKIM key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// ParseKey reads a PEM private key (PKCS #8, or PKCS #1 for RSA).
func ParseKey(pemKey string) (crypto.Signer, error) {
	b, _ := pem.Decode([]byte(pemKey))
	if b == nil {
		return nil, errors.New("DKIM key: no PEM block")
	}
	var k any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("DKIM key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("DKIM key: unsupported key type %T", k)
	}
	return s, nil
}

// TXTRecord returns the DNS TXT record that publishes the public half of
// key (RFC 6376 §3.6.1), e.g. "v=DKIM1; k=rsa; p=MIIB...".
func TXTRecord(key crypto.Signer) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", fmt.Errorf("DKIM public key: %w", err)
	}
	kt := "rsa"
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		kt = "ed25519"
		// RFC 8463 §4.2: the raw 32-byte key, not SubjectPublicKeyInfo.
		der = der[len(der)-32:]
	}
	return "v=DKIM1; k=" + kt + "; p=" + base64.StdEncoding.EncodeToString(der), nil
}

// RecordName is the DNS name of the TXT record of a selector.
func RecordName(domain, selector string) string {
	return selector + "._domainkey." + domain
}

// ZoneLine renders the TXT record as one zone-file line, split into strings
// of at most 255 octets as DNS requires (RFC 1035 §3.3.14), e.g.
//
//	pombo._domainkey.example.org. IN TXT ( "v=DKIM1; k=rsa; p=MIIB..." "...AQAB" )
func ZoneLine(domain, selector, txt string) string {
	var b strings.Builder
	b.WriteString(RecordName(domain, selector) + ". IN TXT (")
	for len(txt) > 0 {
		n := min(len(txt), 255)
		b.WriteString(` "` + txt[:n] + `"`)
		txt = txt[n:]
	}
	b.WriteString(" )")
	return b.String()
}

// ValidSelector says whether s is a selector (RFC 6376 §3.1: dot-separated
// labels of letters, digits and inner hyphens).
func ValidSelector(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Sign reads a whole message and returns the DKIM-Signature header field
// (name, value and final CRLF) to put in front of it.
func Sign(msg io.Reader, domain, selector string, key crypto.Signer) (string, error) {
	s, err := msgdkim.NewSigner(&msgdkim.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 key,
		HeaderCanonicalization: msgdkim.CanonicalizationRelaxed,
		BodyCanonicalization:   msgdkim.CanonicalizationRelaxed,
		HeaderKeys:             headerKeys(),
	})
	if err != nil {
		return "", fmt.Errorf("dkim: %w", err)
	}
	if _, err := io.Copy(s, msg); err != nil {
		s.Close()
		return "", fmt.Errorf("dkim: %w", err)
	}
	if err := s.Close(); err != nil {
		return "", fmt.Errorf("dkim: %w", err)
	}
	return s.Signature(), nil
}
