package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

var (
	ErrNotFound       = errors.New("not found")
	ErrExists         = errors.New("already exists")
	ErrUnknownDomain  = errors.New("domain is not local")
	ErrBadAddress     = errors.New("malformed address")
	ErrDomainNotEmpty = errors.New("domain still has users")
	ErrOverQuota      = errors.New("mailbox quota exceeded")
)

// DefaultMailboxes are created for every new user, with their special use
// (RFC 6154).
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""},
	{"Drafts", `\Drafts`},
	{"Sent", `\Sent`},
	{"Trash", `\Trash`},
	{"Junk", `\Junk`},
	{"Archive", `\Archive`},
}

// Domain is a local mail domain.
type Domain struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Users   int       `json:"users"`
}

// User is a local account.
type User struct {
	ID           int64     `json:"-"`
	Address      string    `json:"address"`
	PasswordHash string    `json:"-"`
	QuotaBytes   int64     `json:"quota_bytes"`
	UsedBytes    int64     `json:"used_bytes"`
	Created      time.Time `json:"created"`
}

// Alias maps an address to its targets.
type Alias struct {
	Address string   `json:"address"`
	Targets []string `json:"targets"`
}

// NormalizeDomain lower-cases a domain name and checks its shape.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if d == "" || len(d) > 253 || strings.ContainsAny(d, " \t\r\n@<>()[],;:\\\"") ||
		strings.HasPrefix(d, ".") || strings.Contains(d, "..") {
		return "", fmt.Errorf("%w: domain %q", ErrBadAddress, d)
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return "", fmt.Errorf("%w: domain %q", ErrBadAddress, d)
		}
	}
	return d, nil
}

// NormalizeAddress lower-cases an address and checks it is a plain
// local@domain address.
func NormalizeAddress(addr string) (local, domain string, err error) {
	addr = strings.TrimSpace(addr)
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || len(addr) > 254 {
		return "", "", fmt.Errorf("%w: %q", ErrBadAddress, addr)
	}
	local = strings.ToLower(addr[:at])
	if len(local) > 64 || strings.ContainsAny(local, " \t\r\n@<>()[],;:\\\"") ||
		strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return "", "", fmt.Errorf("%w: %q", ErrBadAddress, addr)
	}
	if _, err := mail.ParseAddress(local + "@example.org"); err != nil {
		return "", "", fmt.Errorf("%w: %q", ErrBadAddress, addr)
	}
	domain, err = NormalizeDomain(addr[at+1:])
	if err != nil {
		return "", "", fmt.Errorf("%w: %q", ErrBadAddress, addr)
	}
	return local, domain, nil
}

// AddDomain makes a domain local.
func (s *Store) AddDomain(ctx context.Context, name string) error {
	name, err := NormalizeDomain(name)
	if err != nil {
		return err
	}
	return s.writeAccounts(ctx, func(tx *Tx) error {
		_, err := tx.exec("INSERT INTO domains (name, created) VALUES (?, ?)", name, now())
		if isUniqueViolation(err) {
			return fmt.Errorf("domain %s: %w", name, ErrExists)
		}
		return err
	})
}

// DeleteDomain removes a local domain that has no users left, and its
// aliases.
func (s *Store) DeleteDomain(ctx context.Context, name string) error {
	name, err := NormalizeDomain(name)
	if err != nil {
		return err
	}
	return s.writeAccounts(ctx, func(tx *Tx) error {
		var id int64
		if err := tx.queryRow("SELECT id FROM domains WHERE name = ?", name).Scan(&id); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("domain %s: %w", name, ErrNotFound)
		} else if err != nil {
			return err
		}
		var n int
		if err := tx.queryRow("SELECT count(*) FROM users WHERE domain_id = ?", id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("domain %s has %d users: %w", name, n, ErrDomainNotEmpty)
		}
		if _, err := tx.exec("DELETE FROM aliases WHERE address LIKE ? ESCAPE '\\'", "%@"+escapeLike(name)); err != nil {
			return err
		}
		_, err := tx.exec("DELETE FROM domains WHERE id = ?", id)
		return err
	})
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// Domains lists the local domains.
func (s *Store) Domains(ctx context.Context) ([]Domain, error) {
	rows, err := s.query(ctx, `SELECT d.name, d.created,
		(SELECT count(*) FROM users u WHERE u.domain_id = d.id) FROM domains d ORDER BY d.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ds []Domain
	for rows.Next() {
		var d Domain
		var created int64
		if err := rows.Scan(&d.Name, &created, &d.Users); err != nil {
			return nil, err
		}
		d.Created = time.Unix(created, 0).UTC()
		ds = append(ds, d)
	}
	return ds, rows.Err()
}

// IsLocalDomain tells whether mail for the domain is ours.
func (s *Store) IsLocalDomain(ctx context.Context, name string) (bool, error) {
	name, err := NormalizeDomain(name)
	if err != nil {
		return false, nil
	}
	var one int
	err = s.queryRow(ctx, "SELECT 1 FROM domains WHERE name = ?", name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// AddUser creates an account with its default mailboxes. passwordHash is
// already hashed (package auth); storage never sees a password.
func (s *Store) AddUser(ctx context.Context, address, passwordHash string, quota int64) (*User, error) {
	local, domain, err := NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	if passwordHash == "" {
		return nil, errors.New("empty password hash")
	}
	address = local + "@" + domain
	u := &User{Address: address, PasswordHash: passwordHash, QuotaBytes: quota}
	err = s.writeAccounts(ctx, func(tx *Tx) error {
		var domainID int64
		err := tx.queryRow("SELECT id FROM domains WHERE name = ?", domain).Scan(&domainID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrUnknownDomain, domain)
		} else if err != nil {
			return err
		}
		t := now()
		res, err := tx.exec(`INSERT INTO users (address, domain_id, password_hash, quota_bytes, created)
			VALUES (?, ?, ?, ?, ?)`, address, domainID, passwordHash, quota, t)
		if isUniqueViolation(err) {
			return fmt.Errorf("user %s: %w", address, ErrExists)
		} else if err != nil {
			return err
		}
		u.ID, _ = res.LastInsertId()
		u.Created = time.Unix(t, 0).UTC()
		for _, mb := range DefaultMailboxes {
			if _, err := createMailbox(tx, u.ID, mb.Name, mb.SpecialUse); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// SetPassword replaces a user's password hash.
func (s *Store) SetPassword(ctx context.Context, address, passwordHash string) error {
	address = strings.ToLower(strings.TrimSpace(address))
	if passwordHash == "" {
		return errors.New("empty password hash")
	}
	return s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec("UPDATE users SET password_hash = ? WHERE address = ?", passwordHash, address)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %s: %w", address, ErrNotFound)
		}
		return nil
	})
}

// SetQuota sets a user's quota in bytes (0: unlimited).
func (s *Store) SetQuota(ctx context.Context, address string, quota int64) error {
	address = strings.ToLower(strings.TrimSpace(address))
	return s.writeAccounts(ctx, func(tx *Tx) error {
		res, err := tx.exec("UPDATE users SET quota_bytes = ? WHERE address = ?", quota, address)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %s: %w", address, ErrNotFound)
		}
		return nil
	})
}

// QuotaUsage returns a user's quota (0: none) and, when there is one, the
// bytes in use; the quota is cached like Resolve's answers.
func (s *Store) QuotaUsage(ctx context.Context, userID int64) (quota, used int64, err error) {
	return s.resolved.quotaUsage(userID, func() (int64, int64, error) {
		u, err := s.UserByID(ctx, userID)
		if err != nil {
			return 0, 0, err
		}
		return u.QuotaBytes, u.UsedBytes, nil
	})
}

// DeleteUser removes an account with all its mailboxes and mail, and the
// aliases that point only to it.
func (s *Store) DeleteUser(ctx context.Context, address string) error {
	address = strings.ToLower(strings.TrimSpace(address))
	return s.writeAccounts(ctx, func(tx *Tx) error {
		res, err := tx.exec("DELETE FROM users WHERE address = ?", address)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %s: %w", address, ErrNotFound)
		}
		_, err = tx.exec("DELETE FROM aliases WHERE target = ?", address)
		return err
	})
}

const userCols = "id, address, password_hash, quota_bytes, " + usedBytes + ", created"

func scanUser(sc interface{ Scan(...any) error }) (*User, error) {
	var u User
	var created int64
	if err := sc.Scan(&u.ID, &u.Address, &u.PasswordHash, &u.QuotaBytes, &u.UsedBytes, &created); err != nil {
		return nil, err
	}
	u.Created = time.Unix(created, 0).UTC()
	return &u, nil
}

// UserByAddress finds an account by its exact address (case-insensitive).
func (s *Store) UserByAddress(ctx context.Context, address string) (*User, error) {
	address = strings.ToLower(strings.TrimSpace(address))
	u, err := scanUser(s.queryRow(ctx, "SELECT "+userCols+" FROM users WHERE address = ?", address))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %s: %w", address, ErrNotFound)
	}
	return u, err
}

// UserByID finds an account by id.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	u, err := scanUser(s.queryRow(ctx, "SELECT "+userCols+" FROM users WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	return u, err
}

// PasswordHash implements auth.UserLookup.
func (s *Store) PasswordHash(ctx context.Context, address string) (string, bool, error) {
	u, err := s.UserByAddress(ctx, address)
	if errors.Is(err, ErrNotFound) {
		return "", false, nil
	} else if err != nil {
		return "", false, err
	}
	return u.PasswordHash, true, nil
}

// Users lists the accounts.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.query(ctx, "SELECT "+userCols+" FROM users ORDER BY address")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var us []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		us = append(us, *u)
	}
	return us, rows.Err()
}

// AddAlias adds targets to an alias. address is local@domain or "@domain"
// (catch-all); the domain must be local. Targets are addresses, local or not.
func (s *Store) AddAlias(ctx context.Context, address string, targets []string) error {
	addr, domain, err := normalizeAliasAddress(address)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return errors.New("alias needs at least one target")
	}
	var norm []string
	for _, t := range targets {
		l, d, err := NormalizeAddress(t)
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		norm = append(norm, l+"@"+d)
	}
	return s.writeAccounts(ctx, func(tx *Tx) error {
		var one int
		if err := tx.queryRow("SELECT 1 FROM domains WHERE name = ?", domain).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrUnknownDomain, domain)
		} else if err != nil {
			return err
		}
		if err := tx.queryRow("SELECT 1 FROM users WHERE address = ?", addr).Scan(&one); err == nil {
			return fmt.Errorf("%s is a user, not an alias: %w", addr, ErrExists)
		}
		for _, t := range norm {
			if _, err := tx.exec("INSERT INTO aliases (address, target) VALUES (?, ?)", addr, t); isUniqueViolation(err) {
				return fmt.Errorf("alias %s -> %s: %w", addr, t, ErrExists)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
}

func normalizeAliasAddress(address string) (addr, domain string, err error) {
	address = strings.TrimSpace(address)
	if strings.HasPrefix(address, "@") {
		domain, err = NormalizeDomain(address[1:])
		if err != nil {
			return "", "", err
		}
		return "@" + domain, domain, nil
	}
	local, domain, err := NormalizeAddress(address)
	if err != nil {
		return "", "", err
	}
	return local + "@" + domain, domain, nil
}

// DeleteAlias removes an alias with all its targets.
func (s *Store) DeleteAlias(ctx context.Context, address string) error {
	addr, _, err := normalizeAliasAddress(address)
	if err != nil {
		return err
	}
	return s.writeAccounts(ctx, func(tx *Tx) error {
		res, err := tx.exec("DELETE FROM aliases WHERE address = ?", addr)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("alias %s: %w", addr, ErrNotFound)
		}
		return nil
	})
}

// Aliases lists the aliases.
func (s *Store) Aliases(ctx context.Context) ([]Alias, error) {
	rows, err := s.query(ctx, "SELECT address, target FROM aliases ORDER BY address, target")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var as []Alias
	for rows.Next() {
		var a, t string
		if err := rows.Scan(&a, &t); err != nil {
			return nil, err
		}
		if n := len(as); n > 0 && as[n-1].Address == a {
			as[n-1].Targets = append(as[n-1].Targets, t)
		} else {
			as = append(as, Alias{Address: a, Targets: []string{t}})
		}
	}
	return as, rows.Err()
}

// AddressesOf returns the addresses a user may send as: their own and every
// alias (not catch-all) that targets them.
func (s *Store) AddressesOf(ctx context.Context, userID int64) ([]string, error) {
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, "SELECT address FROM aliases WHERE target = ? AND address NOT LIKE '@%' ORDER BY address", u.Address)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	addrs := []string{u.Address}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	return addrs, rows.Err()
}

// Target is where mail for one recipient address goes: a local user (and
// optionally a folder of theirs, from plus-addressing) or a remote address
// reached through an alias.
type Target struct {
	UserID  int64  // 0 for a remote target
	Address string // the user's address, or the remote address
	Folder  string // "user+tag@": "tag", when that mailbox exists; else ""
}

// maxAliasDepth bounds alias chains (and loops).
const maxAliasDepth = 8

// Resolve maps a recipient address to its targets, following aliases,
// plus-addressing and catch-alls. It returns ErrUnknownDomain for a domain
// that is not local and ErrNotFound for an unknown local address.
func (s *Store) Resolve(ctx context.Context, address string) ([]Target, error) {
	// The cache is keyed by the address as given: normalizing it costs more
	// than the lookup in the cache.
	cache := cacheable(address)
	var gen uint64
	if cache {
		var t []Target
		var ok bool
		if t, gen, ok = s.resolved.get(address); ok {
			return t, nil
		}
	}
	local, domain, err := NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	if ok, err := s.IsLocalDomain(ctx, domain); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownDomain, domain)
	}
	seen := map[string]bool{}
	var out []Target
	if err := s.resolve(ctx, local, domain, 0, seen, &out, true); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s@%s: %w", local, domain, ErrNotFound)
	}
	if cache {
		s.resolved.put(address, out, gen)
	}
	return out, nil
}

func (s *Store) resolve(ctx context.Context, local, domain string, depth int, seen map[string]bool, out *[]Target, top bool) error {
	addr := local + "@" + domain
	if seen[addr] {
		return nil
	}
	seen[addr] = true
	if depth > maxAliasDepth {
		return fmt.Errorf("alias chain too deep at %s", addr)
	}
	// Resolve has checked the domain of the address the mail came for;
	// alias targets may point anywhere.
	if !top {
		if ok, err := s.IsLocalDomain(ctx, domain); err != nil {
			return err
		} else if !ok {
			*out = append(*out, Target{Address: addr})
			return nil
		}
	}
	// 1. A user with exactly this address.
	if u, err := s.UserByAddress(ctx, addr); err == nil {
		*out = append(*out, Target{UserID: u.ID, Address: u.Address})
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	// 2. An alias with exactly this address.
	if found, err := s.resolveAlias(ctx, addr, depth, seen, out); err != nil || found {
		return err
	}
	// 3. Plus-addressing: user+tag@ delivers to user, into folder tag when it exists.
	if base, tag, ok := strings.Cut(local, "+"); ok && base != "" {
		baseAddr := base + "@" + domain
		if u, err := s.UserByAddress(ctx, baseAddr); err == nil {
			t := Target{UserID: u.ID, Address: u.Address}
			if tag != "" {
				if mb, err := s.mailboxFolded(ctx, u.ID, tag); err == nil {
					t.Folder = mb
				}
			}
			*out = append(*out, t)
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if found, err := s.resolveAlias(ctx, baseAddr, depth, seen, out); err != nil || found {
			return err
		}
	}
	// 4. Catch-all of the domain, only for the address the mail came for.
	if top {
		if found, err := s.resolveAlias(ctx, "@"+domain, depth, seen, out); err != nil || found {
			return err
		}
	}
	return nil
}

func (s *Store) resolveAlias(ctx context.Context, addr string, depth int, seen map[string]bool, out *[]Target) (bool, error) {
	rows, err := s.query(ctx, "SELECT target FROM aliases WHERE address = ?", addr)
	if err != nil {
		return false, err
	}
	var targets []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return false, err
		}
		targets = append(targets, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	for _, t := range targets {
		l, d, err := NormalizeAddress(t)
		if err != nil {
			continue
		}
		if err := s.resolve(ctx, l, d, depth+1, seen, out, false); err != nil {
			return true, err
		}
	}
	return len(targets) > 0, nil
}
