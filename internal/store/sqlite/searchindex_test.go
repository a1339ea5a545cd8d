package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/chatd/chatd/internal/store"
)

func countRows(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.w.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func searchSeqs(t *testing.T, s *Store, conv store.Conversation, term string) []int64 {
	t.Helper()
	msgs, err := s.Search(context.Background(), store.SearchQuery{AppID: conv.AppID, UserID: "alice", Terms: []string{term}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, m := range msgs {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

// TestSendQueuesSearch: a send writes no search doc in its transaction, only
// a queue row, and a search right after it still finds the message.
func TestSendQueuesSearch(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	conv, err := s.OpenPrivate(ctx, "app", "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: conv.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`{"content":"meet in Lisbon"}`)}); err != nil {
		t.Fatal(err)
	}
	// The background loop may have run already; hold it off the count by
	// reading under its lock.
	s.indexer.mu.Lock()
	docs, queued := countRows(t, s, "search_docs"), countRows(t, s, "search_pending")
	s.indexer.mu.Unlock()
	if docs+queued != 1 {
		t.Fatalf("docs %d + queued %d, want one of them", docs, queued)
	}
	if got := searchSeqs(t, s, conv, "lisbon"); len(got) != 1 || got[0] != 1 {
		t.Fatalf("search right after the send = %v, want [1]", got)
	}
	if n := countRows(t, s, "search_pending"); n != 0 {
		t.Fatalf("%d still queued after a search", n)
	}
}

// TestSearchQueueSurvivesReopen: the queue is committed with the message,
// so a message sent just before a stop is found after the restart.
func TestSearchQueueSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := s.OpenPrivate(ctx, "app", "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	s.indexer.mu.Lock() // keep the background loop from indexing it before Close
	if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: conv.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`{"content":"the quarterly numbers"}`)}); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "search_pending"); n != 1 {
		t.Fatalf("%d queued, want 1", n)
	}
	s.indexer.mu.Unlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := searchSeqs(t, s, conv, "quarterly"); len(got) != 1 {
		t.Fatalf("search after reopen = %v, want the message", got)
	}
}

// TestSearchQueueEditsDeletesAndBatches: a queued message edited before it
// was indexed is found by its new text only (the edit trigger wrote its doc;
// indexing it again must neither fail nor duplicate it), a queued message
// deleted is dropped, and a queue longer than one batch is indexed whole.
func TestSearchQueueEditsDeletesAndBatches(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	conv, err := s.OpenPrivate(ctx, "app", "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	s.indexer.mu.Lock() // nothing indexed until the search below
	n := searchIndexBatch*2 + 10
	for i := 1; i <= n; i++ {
		text := fmt.Sprintf("filler %d", i)
		switch i {
		case 1:
			text = "original wording"
		case 2:
			text = "doomed message"
		}
		if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: conv.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`{"content":"` + text + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.w.Exec(`UPDATE messages SET content = '{"content":"revised wording"}' WHERE conversation_id = ? AND seq = 1`, conv.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`DELETE FROM messages WHERE conversation_id = ? AND seq = 2`, conv.ID); err != nil {
		t.Fatal(err)
	}
	if q := countRows(t, s, "search_pending"); q != n {
		t.Fatalf("%d queued, want %d", q, n)
	}
	s.indexer.mu.Unlock()
	for term, want := range map[string]int{"revised": 1, "original": 0, "doomed": 0, "wording": 1, "filler": n - 2} {
		if got := searchSeqs(t, s, conv, term); len(got) != min(want, 100) {
			t.Errorf("search %q: %d results, want %d", term, len(got), min(want, 100))
		}
	}
	if q, d := countRows(t, s, "search_pending"), countRows(t, s, "search_docs"); q != 0 || d != n-1 {
		t.Errorf("after the search: %d queued, %d docs; want 0 and %d", q, d, n-1)
	}
}
