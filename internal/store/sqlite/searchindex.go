package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// The search index is kept off the send path (migration 9): a send queues
// its message's key in search_pending in its own transaction, so the queue
// is as durable as the message, and indexPending moves queued messages into
// search_docs (and through its trigger the FTS5 index) in batches, one
// transaction per batch. The FTS5 index writes a new segment per
// transaction: indexed inside each send, it cost more than the rest of a
// lone send's store work (docs/benchmarks.md, "CPU per one-to-one
// message"). Search runs indexPending first, so a search still finds every
// message committed before it; in between, the background loop keeps the
// queue short.

const (
	// searchIndexInterval is how often the background loop indexes the queue.
	searchIndexInterval = 500 * time.Millisecond
	// searchIndexBatch bounds the messages indexed per transaction, so a
	// long queue (after a crash, or a burst) never holds the writer long.
	searchIndexBatch = 1000
)

var (
	indexPendingSQL = `INSERT INTO search_docs (conversation_id, seq, text)
SELECT conversation_id, seq, substr(t, 1, 500) FROM (
	SELECT m.conversation_id, m.seq, ` + strings.ReplaceAll(searchTextSQL, "new.", "m.") + ` AS t
	FROM (SELECT conversation_id, seq FROM search_pending ORDER BY conversation_id, seq LIMIT ?) p
	JOIN messages m ON m.conversation_id = p.conversation_id AND m.seq = p.seq
	WHERE NOT EXISTS (SELECT 1 FROM search_docs d WHERE d.conversation_id = p.conversation_id AND d.seq = p.seq)
	ORDER BY m.created_at, m.conversation_id, m.seq
) WHERE t <> ''`
	// An edit of a queued message has already written its doc (the update
	// trigger), hence NOT EXISTS above; a deleted one is simply dropped.
	dropPendingSQL = `DELETE FROM search_pending WHERE (conversation_id, seq) IN
	(SELECT conversation_id, seq FROM search_pending ORDER BY conversation_id, seq LIMIT ?)`
)

// searchIndexer serialises indexPending: the background loop and searches.
type searchIndexer struct {
	mu   sync.Mutex
	done chan struct{} // closed when the loop has stopped
}

// indexPending indexes every queued message, a batch per transaction.
func (s *Store) indexPending(ctx context.Context) error {
	var queued bool
	if err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM search_pending)`).Scan(&queued); err != nil {
		return fmt.Errorf("sqlite: search queue: %w", err)
	}
	if !queued {
		return nil
	}
	s.indexer.mu.Lock()
	defer s.indexer.mu.Unlock()
	for {
		n, err := s.indexBatch(ctx)
		if err != nil || n < searchIndexBatch {
			return err
		}
	}
}

// indexBatch indexes up to searchIndexBatch queued messages in one
// transaction and returns how many it took off the queue.
func (s *Store) indexBatch(ctx context.Context) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: index search queue: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, indexPendingSQL, searchIndexBatch); err != nil {
		return 0, fmt.Errorf("sqlite: index search queue: %w", err)
	}
	res, err := tx.ExecContext(ctx, dropPendingSQL, searchIndexBatch)
	if err != nil {
		return 0, fmt.Errorf("sqlite: index search queue: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: index search queue: commit: %w", err)
	}
	return n, nil
}

// searchIndexLoop indexes the queue now and then until the store closes.
func (s *Store) searchIndexLoop() {
	defer close(s.indexer.done)
	t := time.NewTicker(searchIndexInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.indexPending(ctx); err != nil {
				s.ckpt.warn("sqlite: search index", err)
			}
			cancel()
		}
	}
}

// warn reports a problem the store handles itself, where SetLogger says.
func (c *ckptLog) warn(msg string, err error) {
	c.mu.Lock()
	l := c.log
	c.mu.Unlock()
	if l != nil {
		l.Warn(msg, "err", err)
	}
}
