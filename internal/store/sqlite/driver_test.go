package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

// TestDriverPragmas: whichever driver the binary was built with (default or
// -tags sqlite_cgo,sqlite_fts5), every pool runs the pragmas the store
// relies on: WAL and no autocheckpoint on the writer (see trimWAL),
// read-only readers, foreign keys and the busy timeout everywhere.
func TestDriverPragmas(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	t.Logf("driver %s", DriverName)
	pragma := func(db *sql.DB, name string) string {
		t.Helper()
		var v string
		if err := db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return strings.ToLower(v)
	}
	for _, c := range []struct {
		pool, db   string
		name, want string
	}{
		{"writer", "w", "journal_mode", "wal"},
		{"writer", "w", "wal_autocheckpoint", "0"},
		{"writer", "w", "foreign_keys", "1"},
		{"writer", "w", "busy_timeout", "10000"},
		{"writer", "w", "synchronous", "1"},
		{"writer", "w", "query_only", "0"},
		{"readers", "r", "query_only", "1"},
		{"readers", "r", "foreign_keys", "1"},
		{"readers", "r", "busy_timeout", "10000"},
		{"checkpointer", "c", "busy_timeout", "10000"},
	} {
		db := map[string]*sql.DB{"w": s.w, "r": s.r, "c": s.c}[c.db]
		if got := pragma(db, c.name); got != c.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", c.pool, c.name, got, c.want)
		}
	}
	// BEGIN IMMEDIATE on the writer: a second writer connection cannot
	// start a transaction while the first holds one open.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other, err := openDB(s.walPath[:len(s.walPath)-len("-wal")], []string{"busy_timeout(0)"}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if tx2, err := other.BeginTx(ctx, nil); err == nil {
		tx2.Rollback()
		t.Error("a second BEGIN IMMEDIATE succeeded while the writer held one: transactions are not IMMEDIATE")
	}
}
