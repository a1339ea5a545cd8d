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

// TestSearchBackfill: a database from before the search migration finds
// the messages it already holds.
func TestSearchBackfill(t *testing.T) {
	ctx := context.Background()
	conv := store.NewID()
	s := upgradeFrom(t, "CREATE TABLE search_docs",
		fmt.Sprintf(`INSERT INTO conversations (id, app_id, type, key, last_seq, created_at) VALUES ('%s', 'a', 2, 'g', 3, 1)`, conv),
		fmt.Sprintf(`INSERT INTO members (conversation_id, app_id, user_id, sid, created_at) VALUES ('%s', 'a', 'u', '%s', 1)`, conv, store.NewID()),
		fmt.Sprintf(`INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, created_at) VALUES
			('%[1]s', 1, '%[2]s', 'u', 1, '{"content":"我在北京工作"}', 1),
			('%[1]s', 2, '%[3]s', 'u', 4, '{"name":"Report.pdf"}', 2),
			('%[1]s', 3, '%[4]s', 'u', 1, 'not json', 3)`, conv, store.NewID(), store.NewID(), store.NewID()))
	// Nothing is indexed until the backfill runs (in batches of 2 here).
	if page, err := s.Search(ctx, store.SearchQuery{AppID: "a", UserID: "u", Terms: []string{"北京"}, Limit: 10}); err != nil || len(page.Messages) != 0 {
		t.Fatalf("before the backfill: %v, %v", page.Messages, err)
	}
	if err := s.backfillSearch(ctx, nil, 2); err != nil {
		t.Fatal(err)
	}
	var done bool
	if err := s.r.QueryRow(`SELECT done FROM search_backfill`).Scan(&done); err != nil || !done {
		t.Fatalf("backfill done = %v, %v", done, err)
	}
	if err := s.backfillSearch(ctx, nil, 2); err != nil { // a second run has nothing to do
		t.Fatal(err)
	}
	for q, want := range map[string]int64{"北京": 1, "report": 2} {
		page, err := s.Search(ctx, store.SearchQuery{AppID: "a", UserID: "u", Terms: []string{q}, Limit: 10})
		msgs := page.Messages
		if err != nil || len(msgs) != 1 || msgs[0].Seq != want {
			t.Errorf("Search(%q) = %v, %v; want seq %d", q, msgs, err, want)
		}
	}
}

// upgradeFrom opens a database that had every migration before the one
// containing marker (later ones may follow it) and then ran stmts, so that
// the rest of the migrations run on its data.
func upgradeFrom(t *testing.T, marker string, stmts ...string) *Store {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open(driverName, path)
	if err != nil {
		t.Fatal(err)
	}
	before := slices.IndexFunc(migrations, func(m string) bool { return strings.Contains(m, marker) })
	stmts = append(slices.Clone(migrations[:before]), append(stmts, fmt.Sprintf(`PRAGMA user_version = %d`, before))...)
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSearchIndexPath: the search suite through the FTS index, as for a
// user with a long history (the suite's users have short ones and scan).
func TestSearchIndexPath(t *testing.T) {
	old := scanLimit.Swap(-1)
	defer scanLimit.Store(old)
	storetest.RunSearch(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestSearchWalkPath: the search suite through the newest-first walk of a
// heavy user's history (store.Walk), every term taken as common.
func TestSearchWalkPath(t *testing.T) {
	old, oldRare := scanLimit.Swap(-1), rareLimit.Swap(-1)
	defer func() { scanLimit.Store(old); rareLimit.Store(oldRare) }()
	storetest.RunSearch(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestSearchIndexRebuilt: the FTS5 table without positions (migration 13)
// is written again by the backfill from the messages of an older database,
// and searches through it find them.
func TestSearchIndexRebuilt(t *testing.T) {
	ctx := context.Background()
	conv := store.NewID()
	s := upgradeFrom(t, "detail=none",
		fmt.Sprintf(`INSERT INTO conversations (id, app_id, type, key, last_seq, created_at) VALUES ('%s', 'a', 2, 'g', 2, 1)`, conv),
		fmt.Sprintf(`INSERT INTO members (conversation_id, app_id, user_id, sid, created_at) VALUES ('%s', 'a', 'u', '%s', 1)`, conv, store.NewID()),
		fmt.Sprintf(`INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, created_at) VALUES
			('%[1]s', 1, '%[2]s', 'u', 1, '{"content":"我在北京工作"}', 1),
			('%[1]s', 2, '%[3]s', 'u', 1, '{"content":"Café Report"}', 2)`, conv, store.NewID(), store.NewID()),
		`INSERT INTO search_docs (conversation_id, seq, text) SELECT conversation_id, seq, 'old' FROM search_queue`,
		`DELETE FROM search_queue`, `UPDATE search_backfill SET done = 1`)
	old := scanLimit.Swap(-1) // through the index
	defer scanLimit.Store(old)
	if err := s.backfillSearch(ctx, nil, 1); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int64{"北京工": 1, "cafe report": 2, "report": 2, "北京": 1} {
		page, err := s.Search(ctx, store.SearchQuery{AppID: "a", UserID: "u", Terms: store.ParseSearchTerms(q), Limit: 10})
		if err != nil || len(page.Messages) != 1 || page.Messages[0].Seq != want {
			t.Errorf("Search(%q) = %v, %v; want seq %d", q, page.Messages, err, want)
		}
	}
	if page, err := s.Search(ctx, store.SearchQuery{AppID: "a", UserID: "u", Terms: []string{"old"}, Limit: 10}); err != nil || len(page.Messages) != 0 {
		t.Errorf("the docs from before: %v, %v", page.Messages, err)
	}
}
