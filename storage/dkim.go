package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// DKIMKey is the signing key of a local domain.
type DKIMKey struct {
	Domain     string
	Selector   string
	PrivateKey string // PKCS #8, PEM
	Created    time.Time
}

// AddDKIMKey stores the signing key of a local domain. A domain has at most
// one key: a second one is ErrExists (replacing a key that DNS still
// publishes would break the signatures of mail in flight).
func (s *Store) AddDKIMKey(ctx context.Context, domain, selector, privateKeyPEM string) error {
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		var id int64
		if err := tx.queryRow("SELECT id FROM domains WHERE name = ?", domain).Scan(&id); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrUnknownDomain, domain)
		} else if err != nil {
			return err
		}
		_, err := tx.exec("INSERT INTO dkim_keys (domain_id, selector, private_key, created) VALUES (?, ?, ?, ?)",
			id, selector, privateKeyPEM, now())
		if isUniqueViolation(err) || isPrimaryKeyViolation(err) {
			return fmt.Errorf("DKIM key of %s: %w", domain, ErrExists)
		}
		return err
	})
}

// DKIMKeyOf returns the signing key of a domain, or ErrNotFound.
func (s *Store) DKIMKeyOf(ctx context.Context, domain string) (*DKIMKey, error) {
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	k := DKIMKey{Domain: domain}
	var created int64
	err = s.queryRow(ctx, `SELECT k.selector, k.private_key, k.created FROM dkim_keys k
		JOIN domains d ON d.id = k.domain_id WHERE d.name = ?`, domain).Scan(&k.Selector, &k.PrivateKey, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("DKIM key of %s: %w", domain, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	k.Created = time.Unix(created, 0).UTC()
	return &k, nil
}

func isPrimaryKeyViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
}
