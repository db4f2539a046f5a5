package storage

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// qpsgOf reads the query planner stability guarantee of a connection of db.
func qpsgOf(t *testing.T, db *sql.DB) bool {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var on bool
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			t.Fatalf("driver connection is %T", dc)
		}
		var err error
		on, err = qpsg(c, -1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return on
}

// The store's writer and readers keep their prepared statements across
// runs: the guarantee is on for both, where a plain go-sqlite3 connection
// has it off.
func TestConnectionsKeepTheirPlans(t *testing.T) {
	s, dir := openTest(t)
	if !qpsgOf(t, s.wdb) {
		t.Error("writer connection: query planner stability guarantee off")
	}
	if !qpsgOf(t, s.rdb) {
		t.Error("reader connection: query planner stability guarantee off")
	}
	plain, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "pombo.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if qpsgOf(t, plain) {
		t.Error("a plain go-sqlite3 connection reports the guarantee on: the check cannot tell")
	}
}
