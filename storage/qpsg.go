package storage

// Query plans that do not depend on bound values.
//
// SQLite (3.47 and later) lets the planner peek at the value bound to a
// parameter of "col = ?" while it weighs plans it will not use, and marks
// the statement to be compiled again when that parameter is rebound.
// go-sqlite3 clears every statement's bindings before each run, so such a
// statement (nearly every read of ours: "WHERE mailbox_id = ? ... ORDER BY
// uid") was parsed and planned again on every run: two thirds of the CPU
// of Mailboxes, for one. The query planner stability guarantee
// (SQLITE_DBCONFIG_ENABLE_QPSG) turns the peeking off, so a prepared
// statement stays prepared. Our plans never depended on the values anyway:
// they come from the schema's indexes.
//
// go-sqlite3 has no call for sqlite3_db_config, so each connection is
// configured from its ConnectHook through the handle it holds.

/*
// The SQLite library is go-sqlite3's; only this entry point is declared
// here. A variadic C function cannot be called from Go directly.
extern int sqlite3_db_config(void *db, int op, ...);

// pombo_qpsg sets (on >= 0) or reads (on < 0) the guarantee: it returns
// the setting after the call, or -1 on failure.
static int pombo_qpsg(void *db, int on) {
	int now = -1;
	if (sqlite3_db_config(db, 1007, on, &now) != 0) return -1; // SQLITE_DBCONFIG_ENABLE_QPSG
	return now;
}
*/
import "C"

import (
	"database/sql"
	"errors"
	"reflect"
	"unsafe"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// driverName is go-sqlite3 with every connection configured by
// configureConn.
const driverName = "sqlite3-pombo"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: configureConn})
}

func configureConn(c *sqlite3.SQLiteConn) error {
	on, err := qpsg(c, 1)
	if err == nil && !on {
		err = errors.New("sqlite: the query planner stability guarantee stayed off")
	}
	return err
}

// qpsg sets the guarantee on c (on 1 or 0) or reads it (on -1).
func qpsg(c *sqlite3.SQLiteConn, on int) (bool, error) {
	// The handle is the unexported field db of go-sqlite3's connection. A
	// go-sqlite3 without it fails here, in every test, not in production.
	f := reflect.ValueOf(c).Elem().FieldByName("db")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return false, errors.New("sqlite: no database handle to configure (go-sqlite3 changed)")
	}
	switch C.pombo_qpsg(unsafe.Pointer(f.Pointer()), C.int(on)) {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, errors.New("sqlite: cannot configure the query planner stability guarantee")
}
