//go:build !sqlite_cgo

package sqlite

import (
	"database/sql"
	"net/url"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// driverName is the database/sql driver the store runs on. The default build
// uses modernc.org/sqlite, SQLite translated to Go: no cgo, one static binary.
// Building with -tags sqlite_cgo,sqlite_fts5 swaps in the cgo driver
// (driver_cgo.go); docs/benchmarks.md ("The SQLite driver") has the figures.
const driverName = "sqlite"

// DriverName says which SQLite driver this binary was built with.
const DriverName = "modernc"

// openDB opens a pool on the file at path whose every connection runs
// pragmas (such as "busy_timeout(10000)") when it opens; immediate makes
// each transaction BEGIN IMMEDIATE.
func openDB(path string, pragmas []string, immediate bool) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if immediate {
		q.Set("_txlock", "immediate")
	}
	return sql.Open(driverName, path+"?"+q.Encode())
}
