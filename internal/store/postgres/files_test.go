package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/storetest"
)

// TestFileUsageBackfill: a database from before the file_usage migration gets each
// app's usage from the files it already holds.
func TestFileUsageBackfill(t *testing.T) {
	ctx := context.Background()
	u, _ := newSchema(t)
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	// Every migration before file_usage (later ones may follow it).
	before := slices.IndexFunc(migrations, func(m string) bool { return strings.Contains(m, "CREATE TABLE file_usage") })
	for i, m := range migrations[:before] {
		if _, err := conn.Exec(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range []struct {
		app  string
		size int64
	}{{"a1", 100}, {"a1", 250}, {"a2", 7}} {
		if _, err := conn.Exec(ctx, `INSERT INTO files (id, app_id, user_id, key, size, created_at) VALUES ($1, $2, 'u', $3, $4, 1)`,
			fmt.Sprint("f", i), f.app, fmt.Sprint("k", i), f.size); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)
	s, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.WantFileUsage(t, s, map[string]store.FileUsage{"a1": {Bytes: 350, Files: 2}, "a2": {Bytes: 7, Files: 1}, "a3": {}})
}
