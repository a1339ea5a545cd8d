package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/storetest"
	"github.com/chatd/chatd/internal/testenv"
)

func searchSeqs(t *testing.T, s *Store, app, user, q string) []int64 {
	t.Helper()
	page, err := s.Search(context.Background(), store.SearchQuery{AppID: app, UserID: user, Terms: store.ParseSearchTerms(q), Limit: 10})
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	var out []int64
	for _, m := range page.Messages {
		out = append(out, m.Seq)
	}
	return out
}

// seedSearch makes a group of u and v with messages 1-5, 3 and 5 about 北京.
func seedSearch(t *testing.T, s *Store) string {
	t.Helper()
	ctx := context.Background()
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Name: "a", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	conv, err := s.UpsertGroup(ctx, app, "g", "G", "", []string{"u", "v"})
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range []string{"one", "two", "我在北京工作", "Working late", "北京烤鸭"} {
		if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: conv.ID, SenderID: "u", Type: 1,
			Content: json.RawMessage(`{"content":"` + text + `"}`)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	return app
}

// TestSearchBackfill: messages that are not indexed (a database from before
// the search migration) are found once the backfill has run, in batches.
func TestSearchBackfill(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	app := seedSearch(t, s)
	if _, err := s.pool.Exec(ctx, `DELETE FROM search_docs; DELETE FROM search_queue; UPDATE search_backfill SET conversation_id = '', seq = 0, done = false`); err != nil {
		t.Fatal(err)
	}
	if got := searchSeqs(t, s, app, "v", "北京"); len(got) != 0 {
		t.Fatalf("before the backfill: %v", got)
	}
	if err := s.backfillSearch(ctx, nil, 2); err != nil {
		t.Fatal(err)
	}
	var done bool
	if err := s.pool.QueryRow(ctx, `SELECT done FROM search_backfill`).Scan(&done); err != nil || !done {
		t.Fatalf("backfill done = %v, %v", done, err)
	}
	if got := searchSeqs(t, s, app, "v", "北京"); len(got) != 2 || got[0] != 5 || got[1] != 3 {
		t.Fatalf("after the backfill 北京 finds %v, want [5 3]", got)
	}
	if got := searchSeqs(t, s, app, "v", "work"); len(got) != 1 || got[0] != 4 {
		t.Fatalf("after the backfill work finds %v, want [4]", got)
	}
}

// TestSearchExtensionSchema: pg_trgm and unaccent installed in a schema of
// their own, chatd in another one, no public schema and neither on chatd's
// search_path: the migration finds them and search works.
func TestSearchExtensionSchema(t *testing.T) {
	base := testenv.URL(t, "CHATD_TEST_POSTGRES")
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	db := "chatd_t_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connect for cleanup: %v", err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	u, _ := url.Parse(base)
	u.Path = "/" + db
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP SCHEMA IF EXISTS public CASCADE`, `CREATE SCHEMA ext`,
		`CREATE EXTENSION pg_trgm WITH SCHEMA ext`, `CREATE EXTENSION unaccent WITH SCHEMA ext`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close(ctx)
	s, err := Open(ctx, withParam(t, u.String(), "search_path", "tenant"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	app := seedSearch(t, s)
	if got := searchSeqs(t, s, app, "v", "北京"); len(got) != 2 {
		t.Fatalf("北京 finds %v, want [5 3]", got)
	}
	if got := searchSeqs(t, s, app, "v", "WORKING"); len(got) != 1 {
		t.Fatalf("WORKING finds %v, want [4]", got)
	}
	var schema string
	if err := s.pool.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname = 'pg_trgm'`).Scan(&schema); err != nil || schema != "ext" {
		t.Fatalf("pg_trgm in %q, %v", schema, err)
	}
}

// TestSearchWaitsForOtherIndexer: a message another node is indexing at the
// moment of a search (its queue row taken, its doc not yet committed) is
// still found: the search waits for that node's transaction instead of
// skipping its rows.
func TestSearchWaitsForOtherIndexer(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	app := seedSearch(t, s)
	if got := searchSeqs(t, s, app, "v", "北京"); len(got) != 2 { // indexes the queue
		t.Fatalf("before: %v, want 2 hits", got)
	}
	var conv string
	if err := s.pool.QueryRow(ctx, `SELECT conversation_id FROM search_docs LIMIT 1`).Scan(&conv); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: conv, SenderID: "u", Type: 1,
		Content: json.RawMessage(`{"content":"北京见"}`)}); err != nil {
		t.Fatal(err)
	}
	// The other node: takes the queued row as its indexer does and writes
	// the doc, and has not committed yet.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var pid int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `WITH q AS (DELETE FROM search_queue WHERE (conversation_id, seq) IN
			(SELECT conversation_id, seq FROM search_queue FOR UPDATE SKIP LOCKED) RETURNING conversation_id, seq)
		INSERT INTO search_docs (conversation_id, seq, text)
		SELECT m.conversation_id, m.seq, search_fold(search_text(m.type, m.content)) FROM q
		JOIN messages m ON m.conversation_id = q.conversation_id AND m.seq = q.seq`); err != nil {
		t.Fatal(err)
	}
	found := make(chan []int64, 1)
	go func() {
		page, err := s.Search(ctx, store.SearchQuery{AppID: app, UserID: "v", Terms: store.ParseSearchTerms("北京"), Limit: 10})
		if err != nil {
			t.Error(err)
		}
		var seqs []int64
		for _, m := range page.Messages {
			seqs = append(seqs, m.Seq)
		}
		found <- seqs
	}()
	// Commit once the search is waiting on the other node's transaction;
	// a search that does not wait answers first, without the message.
	for waiting := false; !waiting; {
		select {
		case got := <-found:
			t.Fatalf("search answered %v while another node was indexing the new message", got)
		default:
		}
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid)))`,
			pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-found; len(got) != 3 || got[0] != 6 {
		t.Fatalf("after the other node committed: %v, want 6 first of 3", got)
	}
}

// TestSearchWalkPath: the search suite as for a heavy user: terms of 3+
// characters through the trigram index first (they are rare in the suite),
// then every term through the newest-first walk (store.Walk).
func TestSearchWalkPath(t *testing.T) {
	old := scanLimit.Swap(-1)
	defer scanLimit.Store(old)
	t.Run("rare", func(t *testing.T) {
		storetest.RunSearch(t, func(t *testing.T) store.Store { return openTest(t) })
	})
	t.Run("walk", func(t *testing.T) {
		oldRare := rareLimit.Swap(-1)
		defer rareLimit.Store(oldRare)
		storetest.RunSearch(t, func(t *testing.T) store.Store { return openTest(t) })
	})
}
