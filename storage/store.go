// Package storage is the only package of pombo that speaks SQL. It keeps
// every account, mailbox and message in one SQLite database.
//
// On-disk layout, under the data directory:
//
//	pombo.db (+ -wal, -shm)  the database, WAL mode, synchronous=FULL
//	tmp/                     spool files of messages larger than one chunk,
//	                         removed as soon as they are stored
//
// Invariants:
//   - All writes go through one connection owned by the writer goroutine.
//     Concurrent writes are batched into one transaction (group commit), each
//     in its own savepoint so that one failing write does not fail the others.
//     A write returns only after the transaction that holds it has committed,
//     so a caller may reply 250/OK/+OK as soon as it returns.
//   - Reads use a separate pool of read-only connections and never block the
//     writer (WAL).
//   - A raw message is a blob stored once, in chunks of at most ChunkSize
//     bytes (chunk 0 may hold the header section alone: see firstChunk), and
//     reference-counted by the mailbox and queue rows that point to it;
//     triggers free it with its last reference.
//   - Per mailbox, UIDs strictly increase and are never reused; every change
//     takes the mailbox's next MODSEQ; an expunge leaves a tombstone with its
//     MODSEQ. Allocating a UID reads one mailbox row, never the messages.
//   - After each commit, the changes it made are published to subscribers
//     (IMAP and POP3 sessions), which then read the new state from the
//     database.
package storage

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// ChunkSize is the size of the pieces a raw message is stored in.
const ChunkSize = 256 << 10

// maxBatch bounds how many writes share one transaction.
const maxBatch = 512

// ErrSchemaTooNew is returned by Open for a database written by a newer pombo.
var ErrSchemaTooNew = errors.New("database schema is newer than this pombo")

// Store is the handle on the database. It is safe for concurrent use.
type Store struct {
	dir    string
	path   string
	wdb    *sql.DB // one connection, used only by the writer goroutine
	rdb    *sql.DB // read-only pool
	writes chan *writeOp
	stmts  *stmtCache
	rstmts readStmts
	quit   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	hub    *hub

	resolved resolveCache
	views    viewCache // CachedView

	commits atomic.Int64
	ops     atomic.Int64
}

// Options tune Open.
type Options struct {
	// ReadOnly opens the database without creating or migrating it; used by
	// commands that only report.
	ReadOnly bool
}

// Stats counts the work of the writer since Open.
type Stats struct {
	Commits int64 // transactions committed (each one fsync of the WAL)
	Writes  int64 // write operations carried by those transactions
}

// Stats returns counters of the writer.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Writes: s.ops.Load()}
}

// Open opens (creating if needed) the database in dir and brings its schema
// up to date.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, "pombo.db")
	// Probe writability with a real file: SQLite would otherwise fail later
	// with a less helpful message.
	probe := filepath.Join(dir, "tmp", ".probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	os.Remove(probe)

	common := "_foreign_keys=1&_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL"
	wdb, err := sql.Open(driverName, "file:"+path+"?"+common+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	if err := wdb.Ping(); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := migrate(wdb); err != nil {
		wdb.Close()
		return nil, err
	}
	rdb, err := sql.Open(driverName, "file:"+path+"?"+common+"&mode=ro&_query_only=1")
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	rdb.SetMaxOpenConns(16)
	rdb.SetMaxIdleConns(16)

	s := &Store{
		dir:    dir,
		path:   path,
		wdb:    wdb,
		rdb:    rdb,
		writes: make(chan *writeOp, maxBatch),
		stmts:  &stmtCache{db: wdb, stmts: map[string]*sql.Stmt{}, pending: map[string]bool{}},
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		hub:    newHub(),
	}
	// Spool files left by a crash belong to no transaction.
	if ents, err := os.ReadDir(filepath.Join(dir, "tmp")); err == nil {
		for _, e := range ents {
			os.Remove(filepath.Join(dir, "tmp", e.Name()))
		}
	}
	go s.writer()
	return s, nil
}

// Close stops the writer after the writes already queued, and closes the
// database.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.quit)
	<-s.done
	s.hub.close()
	s.rstmts.close()
	err1 := s.rdb.Close()
	err2 := s.wdb.Close()
	return errors.Join(err1, err2)
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the newest schema this build knows.
func SchemaVersion() int {
	ms, _ := migrations()
	return len(ms)
}

func migrate(db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var cur int
	if err := db.QueryRow("PRAGMA user_version").Scan(&cur); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("%w: database has version %d, this pombo knows up to %d; run a newer pombo", ErrSchemaTooNew, cur, len(ms))
	}
	for _, m := range ms[cur:] {
		tx, err := db.Begin()
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// Tx is a write transaction handed to a write operation. It records the
// changes to publish once the transaction commits.
type Tx struct {
	tx     *sql.Tx
	stmts  *stmtCache
	events []Event
	quotas *resolveCache // users' quotas, to skip the query for unlimited ones
}

func (t *Tx) exec(q string, args ...any) (sql.Result, error) {
	if st := t.stmts.get(q); st != nil {
		return t.tx.Stmt(st).Exec(args...)
	}
	return t.tx.Exec(q, args...)
}

func (t *Tx) queryRow(q string, args ...any) *sql.Row {
	if st := t.stmts.get(q); st != nil {
		return t.tx.Stmt(st).QueryRow(args...)
	}
	return t.tx.QueryRow(q, args...)
}

func (t *Tx) query(q string, args ...any) (*sql.Rows, error) {
	if st := t.stmts.get(q); st != nil {
		return t.tx.Stmt(st).Query(args...)
	}
	return t.tx.Query(q, args...)
}

// stmtCache keeps the writer's statements prepared: SQLite spends more time
// compiling the small statements of a delivery than running them. A query
// seen for the first time runs unprepared and is prepared after the batch,
// when the writer's only connection is free again. Only the writer goroutine
// uses it.
type stmtCache struct {
	db      *sql.DB
	stmts   map[string]*sql.Stmt
	pending map[string]bool
}

// maxStmts bounds the cache against queries built with varying text.
const maxStmts = 256

func (c *stmtCache) get(q string) *sql.Stmt {
	if st, ok := c.stmts[q]; ok {
		return st
	}
	if len(c.stmts)+len(c.pending) < maxStmts {
		c.pending[q] = true
	}
	return nil
}

// preparePending prepares the queries seen in the last batch.
func (c *stmtCache) preparePending() {
	for q := range c.pending {
		if st, err := c.db.Prepare(q); err == nil {
			c.stmts[q] = st
		}
		delete(c.pending, q)
	}
}

func (c *stmtCache) close() {
	for _, st := range c.stmts {
		st.Close()
	}
}

func (t *Tx) publish(e Event) { t.events = append(t.events, e) }

type writeOp struct {
	fn     func(*Tx) error
	err    error
	events []Event
	done   chan struct{}
}

// write runs fn in the writer's next transaction and returns once that
// transaction is durable (or fn failed, in which case its changes are rolled
// back and the others of the batch are kept).
func (s *Store) write(ctx context.Context, fn func(*Tx) error) error {
	if s.closed.Load() {
		return errors.New("storage closed")
	}
	op := &writeOp{fn: fn, done: make(chan struct{})}
	select {
	case s.writes <- op:
	case <-s.quit:
		return errors.New("storage closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the op is carried out whatever the context says: a caller
	// that gave up cannot take back a commit in progress.
	<-op.done
	return op.err
}

func (s *Store) writer() {
	defer close(s.done)
	defer s.stmts.close()
	batch := make([]*writeOp, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case op := <-s.writes:
			batch = append(batch, op)
		case <-s.quit:
			// Finish what is already queued.
			for {
				select {
				case op := <-s.writes:
					s.commit([]*writeOp{op})
					s.stmts.preparePending()
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case op := <-s.writes:
				batch = append(batch, op)
			default:
				break fill
			}
		}
		s.commit(batch)
		s.stmts.preparePending()
	}
}

func (s *Store) commit(batch []*writeOp) {
	finish := func(err error) {
		for _, op := range batch {
			if op.err == nil {
				op.err = err
			}
			close(op.done)
		}
	}
	tx, err := s.wdb.Begin()
	if err != nil {
		finish(fmt.Errorf("begin: %w", err))
		return
	}
	// Savepoints nest nothing here (each is released before the next), so
	// one name serves all and its statements stay prepared.
	for _, op := range batch {
		t := &Tx{tx: tx, stmts: s.stmts, quotas: &s.resolved}
		if _, err := t.exec("SAVEPOINT op"); err != nil {
			op.err = fmt.Errorf("savepoint: %w", err)
			continue
		}
		err := runOp(op.fn, t)
		if err != nil {
			op.err = err
			if _, rerr := t.exec("ROLLBACK TO op"); rerr != nil {
				tx.Rollback()
				finish(fmt.Errorf("rollback to savepoint: %w", rerr))
				return
			}
		} else {
			op.events = t.events
		}
		if _, err := t.exec("RELEASE op"); err != nil {
			tx.Rollback()
			finish(fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		finish(fmt.Errorf("commit: %w", err))
		return
	}
	s.commits.Add(1)
	s.ops.Add(int64(len(batch)))
	for _, op := range batch {
		if op.err == nil {
			for _, e := range op.events {
				s.hub.publish(e)
			}
		}
	}
	finish(nil)
}

// runOp calls fn, turning a panic into an error so that one bad write cannot
// stop the writer.
func runOp(fn func(*Tx) error, t *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("storage: panic in write: %v", r)
		}
	}()
	return fn(t)
}

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

func now() int64 { return time.Now().Unix() }
