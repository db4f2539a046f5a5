package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters for new hashes: the OWASP minimum for argon2id (19 MiB, 2 passes,
// 1 lane). They are written into every PHC string, so raising them later only
// affects new hashes; old ones keep verifying with their own parameters.
const (
	defaultMemory  = 19 * 1024 // KiB
	defaultTime    = 2
	defaultThreads = 1
	saltLen        = 16
	keyLen         = 32
)

// Bounds accepted when reading a stored hash. They exist so that a corrupted or
// hostile database row cannot make one login allocate gigabytes or spin for
// minutes.
const (
	maxMemory  = 1 << 20 // KiB = 1 GiB
	maxTime    = 20
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
	maxPHCLen  = 512

	// MaxPasswordLen is the longest password ValidatePassword accepts, in bytes.
	MaxPasswordLen = 1024
)

// Password errors.
var (
	ErrEmptyPassword   = errors.New("empty password")
	ErrPasswordTooLong = fmt.Errorf("password longer than %d bytes", MaxPasswordLen)
	ErrPasswordHasNUL  = errors.New("password contains a NUL byte")
	ErrMalformedHash   = errors.New("malformed password hash")
	ErrUnsupportedHash = errors.New("unsupported password hash")
	errHashOutOfBounds = fmt.Errorf("%w: out of bounds", ErrMalformedHash)
)

var (
	phcEncoding         = base64.RawStdEncoding.Strict()
	phcPrefix           = "$argon2id$v=" + strconv.Itoa(argon2.Version) + "$"
	defaultParamsString = formatParams(phcParams{memory: defaultMemory, time: defaultTime, threads: defaultThreads})
)

// dummyHash is a well-formed hash with the default parameters that no password
// matches (all-zero key; a match would need a 256-bit preimage). Verifying
// against it costs exactly what verifying a real default hash costs, which is
// what an unknown user must cost.
var dummyHash = encodePHC(phcParams{memory: defaultMemory, time: defaultTime, threads: defaultThreads},
	make([]byte, saltLen), make([]byte, keyLen))

// phcParams are the argon2id parameters of one stored hash.
type phcParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
}

// phcHash is a parsed PHC string.
type phcHash struct {
	params phcParams
	salt   []byte
	key    []byte
}

// ValidatePassword reports whether pw may be used as a password: not empty, at
// most MaxPasswordLen bytes, and without NUL (SASL PLAIN uses NUL as the field
// separator, so such a password could never be sent).
func ValidatePassword(pw string) error {
	switch {
	case pw == "":
		return ErrEmptyPassword
	case len(pw) > MaxPasswordLen:
		return ErrPasswordTooLong
	case strings.IndexByte(pw, 0) >= 0:
		return ErrPasswordHasNUL
	}
	return nil
}

// HashPassword hashes password with argon2id and a random salt, and returns it
// in PHC string form:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with salt and key in unpadded standard base64.
func HashPassword(password string) (string, error) {
	if err := ValidatePassword(password); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	p := phcParams{memory: defaultMemory, time: defaultTime, threads: defaultThreads}
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, keyLen)
	return encodePHC(p, salt, key), nil
}

// VerifyPassword reports whether password matches the PHC string phc, using the
// parameters written in phc. The error is non-nil only when phc itself is
// malformed, unsupported or has parameters out of bounds; a wrong password is
// (false, nil).
func VerifyPassword(phc, password string) (bool, error) {
	h, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	if password == "" {
		// HashPassword never hashes an empty password.
		return false, nil
	}
	got := argon2.IDKey([]byte(password), h.salt, h.params.time, h.params.memory, h.params.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1, nil
}

// NeedsRehash reports whether phc was made with parameters other than the
// current defaults, so that a caller holding the clear password (at login) may
// store a fresh hash.
func NeedsRehash(phc string) bool {
	h, err := parsePHC(phc)
	if err != nil {
		return true
	}
	return formatParams(h.params) != defaultParamsString || len(h.salt) != saltLen || len(h.key) != keyLen
}

func formatParams(p phcParams) string {
	return "m=" + strconv.FormatUint(uint64(p.memory), 10) +
		",t=" + strconv.FormatUint(uint64(p.time), 10) +
		",p=" + strconv.FormatUint(uint64(p.threads), 10)
}

func encodePHC(p phcParams, salt, key []byte) string {
	return phcPrefix + formatParams(p) + "$" + phcEncoding.EncodeToString(salt) + "$" + phcEncoding.EncodeToString(key)
}

// parsePHC reads the one form encodePHC writes, and nothing else: algorithm
// argon2id, version 19, parameters m, t, p in that order as canonical decimals,
// salt and key as canonical unpadded base64. Being that strict means every
// accepted string re-encodes to itself (FuzzParsePHC checks it), so there is a
// single spelling for each hash. This is also the form written by the argon2
// reference implementation, libsodium, PHP and Dovecot.
func parsePHC(s string) (phcHash, error) {
	if len(s) > maxPHCLen {
		return phcHash{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformedHash, maxPHCLen)
	}
	fields := strings.Split(s, "$")
	if len(fields) < 2 || fields[0] != "" {
		return phcHash{}, fmt.Errorf("%w: not a PHC string", ErrMalformedHash)
	}
	if fields[1] != "argon2id" {
		return phcHash{}, fmt.Errorf("%w: algorithm %q", ErrUnsupportedHash, fields[1])
	}
	if len(fields) != 6 {
		return phcHash{}, fmt.Errorf("%w: want 5 $-separated fields", ErrMalformedHash)
	}
	if fields[2] != "v="+strconv.Itoa(argon2.Version) {
		return phcHash{}, fmt.Errorf("%w: version %q", ErrUnsupportedHash, fields[2])
	}
	p, err := parseParams(fields[3])
	if err != nil {
		return phcHash{}, err
	}
	salt, err := phcEncoding.DecodeString(fields[4])
	if err != nil {
		return phcHash{}, fmt.Errorf("%w: salt: %v", ErrMalformedHash, err)
	}
	key, err := phcEncoding.DecodeString(fields[5])
	if err != nil {
		return phcHash{}, fmt.Errorf("%w: key: %v", ErrMalformedHash, err)
	}
	if len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return phcHash{}, fmt.Errorf("%w: salt of %d bytes", errHashOutOfBounds, len(salt))
	}
	if len(key) < minKeyLen || len(key) > maxKeyLen {
		return phcHash{}, fmt.Errorf("%w: key of %d bytes", errHashOutOfBounds, len(key))
	}
	return phcHash{params: p, salt: salt, key: key}, nil
}

func parseParams(s string) (phcParams, error) {
	var vals [3]uint64
	rest := s
	for i, name := range [3]string{"m=", "t=", "p="} {
		if i > 0 {
			var ok bool
			if rest, ok = strings.CutPrefix(rest, ","); !ok {
				return phcParams{}, fmt.Errorf("%w: parameters %q", ErrMalformedHash, s)
			}
		}
		var ok bool
		if rest, ok = strings.CutPrefix(rest, name); !ok {
			return phcParams{}, fmt.Errorf("%w: parameters %q", ErrMalformedHash, s)
		}
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		v, err := parseCanonicalUint(rest[:n])
		if err != nil {
			return phcParams{}, fmt.Errorf("%w: parameter %s%q", ErrMalformedHash, name, rest[:n])
		}
		vals[i] = v
		rest = rest[n:]
	}
	if rest != "" {
		return phcParams{}, fmt.Errorf("%w: parameters %q", ErrMalformedHash, s)
	}
	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case p < 1 || p > maxThreads:
		return phcParams{}, fmt.Errorf("%w: p=%d", errHashOutOfBounds, p)
	case t < 1 || t > maxTime:
		return phcParams{}, fmt.Errorf("%w: t=%d", errHashOutOfBounds, t)
	case m < 8*p || m > maxMemory: // RFC 9106 §3.1: m ≥ 8·p KiB
		return phcParams{}, fmt.Errorf("%w: m=%d", errHashOutOfBounds, m)
	}
	return phcParams{memory: uint32(m), time: uint32(t), threads: uint8(p)}, nil
}

// parseCanonicalUint parses a decimal number written without sign or leading
// zeros, of at most 10 digits.
func parseCanonicalUint(s string) (uint64, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseUint(s, 10, 64)
}
