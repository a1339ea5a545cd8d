//go:build sqlite_cgo

package sqlite

/*
#include <malloc.h>

// keepHeap stops glibc from handing freed heap back to the kernel at every
// free past 128 KiB (trim) and from serving SQLite's larger blocks by a
// fresh mmap each: with its defaults a send spent half its CPU in
// munmap/madvise TLB flushes and the page faults that refill the memory.
static void keepHeap(void) {
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
}
*/
import "C"

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"net/url"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// driverName is the database/sql driver the store runs on: in this build the
// cgo driver github.com/mattn/go-sqlite3, which compiles SQLite's C source
// (see driver_modernc.go for the default, and docs/benchmarks.md for why).
const driverName = "sqlite3"

// DriverName says which SQLite driver this binary was built with.
const DriverName = "cgo"

func init() { C.keepHeap() }

// openDB opens a pool on the file at path whose every connection runs
// pragmas (such as "busy_timeout(10000)") when it opens; immediate makes
// each transaction BEGIN IMMEDIATE. mattn's DSN knows a fixed set of
// pragmas only (not wal_autocheckpoint), so they run from a connect hook.
func openDB(path string, pragmas []string, immediate bool) (*sql.DB, error) {
	q := url.Values{}
	if immediate {
		q.Set("_txlock", "immediate")
	}
	d := &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		for _, p := range pragmas {
			if _, err := c.Exec("PRAGMA "+p, nil); err != nil {
				return err
			}
		}
		return nil
	}}
	return sql.OpenDB(connector{d: d, dsn: path + "?" + q.Encode()}), nil
}

// connector opens connections of one pool through its own driver value, so
// that each pool has its own pragmas.
type connector struct {
	d   *sqlite3.SQLiteDriver
	dsn string
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.d }
