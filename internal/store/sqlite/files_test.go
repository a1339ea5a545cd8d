package sqlite

import (
	"testing"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/storetest"
)

// TestFileUsageBackfill: a database from before the file_usage migration gets each
// app's usage from the files it already holds.
func TestFileUsageBackfill(t *testing.T) {
	s := upgradeFrom(t, "CREATE TABLE file_usage",
		`INSERT INTO files (id, app_id, user_id, key, size, created_at) VALUES
			('f0', 'a1', 'u', 'k0', 100, 1), ('f1', 'a1', 'u', 'k1', 250, 1), ('f2', 'a2', 'u', 'k2', 7, 1)`)
	storetest.WantFileUsage(t, s, map[string]store.FileUsage{"a1": {Bytes: 350, Files: 2}, "a2": {Bytes: 7, Files: 1}, "a3": {}})
}
