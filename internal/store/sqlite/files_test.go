package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/storetest"
)

// TestFileUsageBackfill: a database from before the file_usage migration gets each
// app's usage from the files it already holds.
func TestFileUsageBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	// Every migration before file_usage (later ones may follow it).
	before := slices.IndexFunc(migrations, func(m string) bool { return strings.Contains(m, "CREATE TABLE file_usage") })
	for i, m := range migrations[:before] {
		if _, err := db.ExecContext(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	for i, f := range []struct {
		app  string
		size int64
	}{{"a1", 100}, {"a1", 250}, {"a2", 7}} {
		if _, err := db.ExecContext(ctx, `INSERT INTO files (id, app_id, user_id, key, size, created_at) VALUES (?, ?, 'u', ?, ?, 1)`,
			fmt.Sprint("f", i), f.app, fmt.Sprint("k", i), f.size); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, before)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.WantFileUsage(t, s, map[string]store.FileUsage{"a1": {Bytes: 350, Files: 2}, "a2": {Bytes: 7, Files: 1}, "a3": {}})
}
