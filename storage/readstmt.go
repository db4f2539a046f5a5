package storage

import (
	"context"
	"database/sql"
	"sync"
)

// readStmts keeps the reader pool's statements prepared. database/sql
// prepares a cached statement once per pool connection and reuses it; without
// it every read (a RCPT lookup, a POP3 RETR, an IMAP FETCH batch) compiles its
// SQL again, which profiles showed as a large share of their cost.
type readStmts struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// maxReadStmts bounds the cache against queries built with varying text
// (SEARCH, UID ranges); those beyond it run unprepared.
const maxReadStmts = 512

func (c *readStmts) get(db *sql.DB, q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[q]; ok {
		return st
	}
	if len(c.stmts) >= maxReadStmts {
		return nil
	}
	st, err := db.Prepare(q)
	if err != nil {
		return nil // the unprepared query will report the error
	}
	if c.stmts == nil {
		c.stmts = make(map[string]*sql.Stmt)
	}
	c.stmts[q] = st
	return st
}

func (c *readStmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = nil
}

// queryRow runs a one-row read on the reader pool with a prepared statement.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := s.rstmts.get(s.rdb, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.rdb.QueryRowContext(ctx, q, args...)
}

// query runs a read on the reader pool with a prepared statement.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := s.rstmts.get(s.rdb, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.rdb.QueryContext(ctx, q, args...)
}
