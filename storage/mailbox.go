package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Mailbox is one folder of a user, with its IMAP state and counters.
type Mailbox struct {
	ID            int64  `json:"-"`
	UserID        int64  `json:"-"`
	Name          string `json:"name"`
	SpecialUse    string `json:"special_use,omitempty"`
	Subscribed    bool   `json:"subscribed"`
	UIDValidity   uint32 `json:"uidvalidity"`
	UIDNext       uint32 `json:"uidnext"`
	HighestModSeq int64  `json:"highestmodseq"`
	Messages      int64  `json:"messages"`
	Unseen        int64  `json:"unseen"`
	Size          int64  `json:"size"`
}

// MailboxDelim is the hierarchy separator of mailbox names.
const MailboxDelim = '/'

var (
	ErrMailboxName    = errors.New("invalid mailbox name")
	ErrInboxImmutable = errors.New("INBOX cannot be deleted")
)

// CanonicalMailboxName returns name with INBOX in its canonical case (RFC
// 9051 §5.1: INBOX is case-insensitive) and checks that it is usable.
func CanonicalMailboxName(name string) (string, error) {
	if name == "" || len(name) > 1000 || !utf8.ValidString(name) ||
		strings.ContainsAny(name, "\x00\r\n*%") ||
		strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return "", fmt.Errorf("%w: %q", ErrMailboxName, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: %q", ErrMailboxName, name)
		}
	}
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	if len(name) > 6 && strings.EqualFold(name[:6], "INBOX/") {
		return "INBOX/" + name[6:], nil
	}
	return name, nil
}

func nextUIDValidity(tx *Tx) (uint32, error) {
	var last int64
	err := tx.queryRow("SELECT value FROM settings WHERE key = 'uidvalidity'").Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	v := now()
	if v <= last {
		v = last + 1
	}
	if v > 1<<32-1 {
		v = 1
	}
	_, err = tx.exec("INSERT INTO settings (key, value) VALUES ('uidvalidity', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", strconv.FormatInt(v, 10))
	return uint32(v), err
}

func createMailbox(tx *Tx, userID int64, name, specialUse string) (int64, error) {
	uv, err := nextUIDValidity(tx)
	if err != nil {
		return 0, err
	}
	res, err := tx.exec(`INSERT INTO mailboxes (user_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)`,
		userID, name, specialUse, uv)
	if isUniqueViolation(err) {
		return 0, fmt.Errorf("mailbox %s: %w", name, ErrExists)
	} else if err != nil {
		return 0, err
	}
	id, _ := res.LastInsertId()
	tx.publish(Event{Kind: EventMailboxes, UserID: userID, MailboxID: id})
	return id, nil
}

const mailboxCols = "id, user_id, name, special_use, subscribed, uidvalidity, uidnext, highestmodseq, messages, unseen, size"

func scanMailbox(sc interface{ Scan(...any) error }) (*Mailbox, error) {
	var m Mailbox
	if err := scanMailboxInto(sc, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// scanMailboxInto reads a row of mailboxCols into m. The uint32 columns are
// read as int64: database/sql converts an integer to an unsigned field by
// way of a string (two allocations and a parse each).
func scanMailboxInto(sc interface{ Scan(...any) error }, m *Mailbox) error {
	var uidValidity, uidNext int64
	if err := sc.Scan(&m.ID, &m.UserID, &m.Name, &m.SpecialUse, &m.Subscribed, &uidValidity,
		&uidNext, &m.HighestModSeq, &m.Messages, &m.Unseen, &m.Size); err != nil {
		return err
	}
	if uint64(uidValidity) > math.MaxUint32 || uint64(uidNext) > math.MaxUint32 {
		return fmt.Errorf("mailbox %d: uidvalidity %d or uidnext %d out of range", m.ID, uidValidity, uidNext)
	}
	m.UIDValidity, m.UIDNext = uint32(uidValidity), uint32(uidNext)
	return nil
}

// Mailboxes lists a user's mailboxes, INBOX first, then by name.
func (s *Store) Mailboxes(ctx context.Context, userID int64) ([]Mailbox, error) {
	rows, err := s.query(ctx, "SELECT "+mailboxCols+
		" FROM mailboxes WHERE user_id = ? ORDER BY name != 'INBOX', name", userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ms []Mailbox
	for rows.Next() {
		ms = append(ms, Mailbox{})
		if err := scanMailboxInto(rows, &ms[len(ms)-1]); err != nil {
			return nil, err
		}
	}
	return ms, rows.Err()
}

// MailboxByName finds one mailbox of a user.
func (s *Store) MailboxByName(ctx context.Context, userID int64, name string) (*Mailbox, error) {
	name, err := CanonicalMailboxName(name)
	if err != nil {
		return nil, err
	}
	m, err := scanMailbox(s.queryRow(ctx, "SELECT "+mailboxCols+
		" FROM mailboxes WHERE user_id = ? AND name = ?", userID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mailbox %s: %w", name, ErrNotFound)
	}
	return m, err
}

// MailboxByID finds a mailbox by id.
func (s *Store) MailboxByID(ctx context.Context, id int64) (*Mailbox, error) {
	m, err := scanMailbox(s.queryRow(ctx, "SELECT "+mailboxCols+" FROM mailboxes WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mailbox %d: %w", id, ErrNotFound)
	}
	return m, err
}

// mailboxFolded finds a mailbox by case-insensitive name (for plus tags).
func (s *Store) mailboxFolded(ctx context.Context, userID int64, name string) (string, error) {
	var found string
	err := s.queryRow(ctx, "SELECT name FROM mailboxes WHERE user_id = ? AND name = ? COLLATE NOCASE ORDER BY name = ? DESC LIMIT 1",
		userID, name, name).Scan(&found)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return found, err
}

// CreateMailbox creates a mailbox, and the missing parents of a hierarchical
// name (RFC 9051 §6.3.4).
func (s *Store) CreateMailbox(ctx context.Context, userID int64, name, specialUse string) error {
	name, err := CanonicalMailboxName(name)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		parts := strings.Split(name, string(MailboxDelim))
		for i := 1; i < len(parts); i++ {
			parent := strings.Join(parts[:i], string(MailboxDelim))
			var one int
			err := tx.queryRow("SELECT 1 FROM mailboxes WHERE user_id = ? AND name = ?", userID, parent).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				if _, err := createMailbox(tx, userID, parent, ""); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		_, err := createMailbox(tx, userID, name, specialUse)
		return err
	})
}

// DeleteMailbox deletes a mailbox and the messages in it. Its children stay
// (RFC 9051 §6.3.5 lets a server keep them).
func (s *Store) DeleteMailbox(ctx context.Context, userID int64, name string) error {
	name, err := CanonicalMailboxName(name)
	if err != nil {
		return err
	}
	if name == "INBOX" {
		return ErrInboxImmutable
	}
	return s.write(ctx, func(tx *Tx) error {
		var id int64
		err := tx.queryRow("SELECT id FROM mailboxes WHERE user_id = ? AND name = ?", userID, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("mailbox %s: %w", name, ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := tx.exec("DELETE FROM messages WHERE mailbox_id = ?", id); err != nil {
			return err
		}
		if _, err := tx.exec("DELETE FROM mailboxes WHERE id = ?", id); err != nil {
			return err
		}
		tx.publish(Event{Kind: EventMailboxes, UserID: userID, MailboxID: id})
		return nil
	})
}

// RenameMailbox renames a mailbox and its children. Renaming INBOX moves its
// messages into a new mailbox and leaves INBOX empty (RFC 9051 §6.3.6).
func (s *Store) RenameMailbox(ctx context.Context, userID int64, from, to string) error {
	from, err := CanonicalMailboxName(from)
	if err != nil {
		return err
	}
	to, err = CanonicalMailboxName(to)
	if err != nil {
		return err
	}
	if to == "INBOX" {
		return fmt.Errorf("mailbox INBOX: %w", ErrExists)
	}
	return s.write(ctx, func(tx *Tx) error {
		var id int64
		err := tx.queryRow("SELECT id FROM mailboxes WHERE user_id = ? AND name = ?", userID, from).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("mailbox %s: %w", from, ErrNotFound)
		} else if err != nil {
			return err
		}
		var one int
		if err := tx.queryRow("SELECT 1 FROM mailboxes WHERE user_id = ? AND name = ?", userID, to).Scan(&one); err == nil {
			return fmt.Errorf("mailbox %s: %w", to, ErrExists)
		}
		if from == "INBOX" {
			newID, err := createMailbox(tx, userID, to, "")
			if err != nil {
				return err
			}
			return moveAll(tx, userID, id, newID)
		}
		// Parents of the new name.
		parts := strings.Split(to, string(MailboxDelim))
		for i := 1; i < len(parts); i++ {
			parent := strings.Join(parts[:i], string(MailboxDelim))
			if parent == from {
				return fmt.Errorf("%w: cannot move %s under itself", ErrMailboxName, from)
			}
			err := tx.queryRow("SELECT 1 FROM mailboxes WHERE user_id = ? AND name = ?", userID, parent).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				if _, err := createMailbox(tx, userID, parent, ""); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		// A renamed mailbox gets a new UIDVALIDITY only if its UIDs could
		// clash; here they keep their meaning, so UIDVALIDITY stays.
		if _, err := tx.exec("UPDATE mailboxes SET name = ? WHERE id = ?", to, id); err != nil {
			return err
		}
		prefix := from + string(MailboxDelim)
		rows, err := tx.query("SELECT id, name FROM mailboxes WHERE user_id = ? AND name > ? AND name < ?",
			userID, prefix, from+string(MailboxDelim+1))
		if err != nil {
			return err
		}
		type child struct {
			id   int64
			name string
		}
		var children []child
		for rows.Next() {
			var c child
			if err := rows.Scan(&c.id, &c.name); err != nil {
				rows.Close()
				return err
			}
			children = append(children, c)
		}
		rows.Close()
		for _, c := range children {
			newName := to + string(MailboxDelim) + strings.TrimPrefix(c.name, prefix)
			if _, err := tx.exec("UPDATE mailboxes SET name = ? WHERE id = ?", newName, c.id); isUniqueViolation(err) {
				return fmt.Errorf("mailbox %s: %w", newName, ErrExists)
			} else if err != nil {
				return err
			}
		}
		tx.publish(Event{Kind: EventMailboxes, UserID: userID, MailboxID: id})
		return nil
	})
}

// SetSubscribed sets the subscription of a mailbox (RFC 9051 §6.3.7).
func (s *Store) SetSubscribed(ctx context.Context, userID int64, name string, subscribed bool) error {
	name, err := CanonicalMailboxName(name)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *Tx) error {
		res, err := tx.exec("UPDATE mailboxes SET subscribed = ? WHERE user_id = ? AND name = ?", subscribed, userID, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("mailbox %s: %w", name, ErrNotFound)
		}
		return nil
	})
}
