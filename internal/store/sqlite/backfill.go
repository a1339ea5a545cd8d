package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/chatd/chatd/internal/store"
)

// backfillBatch is how many messages one backfill transaction goes over.
const backfillBatch = 1000

// BackfillSearch indexes the messages that predate the search migration
// (see store.SearchBackfiller), in key order from the cursor kept in
// search_backfill.
// Then it indexes the queue of new messages (see indexQueued) until ctx
// ends.
func (s *Store) BackfillSearch(ctx context.Context, log *slog.Logger) error {
	if err := s.backfillSearch(ctx, log, backfillBatch); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return store.IndexQueueLoop(ctx, s.indexQueued)
}

var backfillInsert = `INSERT INTO search_docs (conversation_id, seq, text)
	SELECT conversation_id, seq, substr(t, 1, 500) FROM (SELECT conversation_id, seq, ` +
	strings.ReplaceAll(searchTextSQL, "new.", "") + ` AS t FROM messages
		WHERE (conversation_id, seq) > (?1, ?2) AND (?5 OR (conversation_id, seq) <= (?3, ?4))) WHERE t <> ''
	ON CONFLICT DO NOTHING`

func (s *Store) backfillSearch(ctx context.Context, log *slog.Logger, batch int) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return store.RunBackfill(ctx, log, "sqlite", func(ctx context.Context) (n int, done bool, err error) {
		err = s.withTx(ctx, func(tx *sql.Tx) error {
			var conv string
			var seq int64
			if err := tx.QueryRowContext(ctx, `SELECT conversation_id, seq, done FROM search_backfill`).Scan(&conv, &seq, &done); err != nil || done {
				return err
			}
			// The batch ends at its last message's key, or at the last
			// message of all.
			var endConv string
			var endSeq int64
			err := tx.QueryRowContext(ctx, `SELECT conversation_id, seq FROM messages WHERE (conversation_id, seq) > (?, ?)
				ORDER BY conversation_id, seq LIMIT 1 OFFSET ?`, conv, seq, batch-1).Scan(&endConv, &endSeq)
			if errors.Is(err, sql.ErrNoRows) {
				done = true
				err = tx.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE (conversation_id, seq) > (?, ?)`,
					conv, seq).Scan(&n)
				// and the batch is everything after the cursor
			} else {
				n = batch
			}
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, backfillInsert, conv, seq, endConv, endSeq, done); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE search_backfill SET conversation_id = ?, seq = ?, done = ?`, endConv, endSeq, done)
			return err
		})
		if err != nil {
			return 0, false, fmt.Errorf("sqlite: search backfill: %w", err)
		}
		return n, done, nil
	})
}

var queueInsert = `INSERT INTO search_docs (conversation_id, seq, text)
	SELECT conversation_id, seq, substr(t, 1, 500) FROM (SELECT m.conversation_id, m.seq, ` +
	strings.ReplaceAll(searchTextSQL, "new.", "m.") + ` AS t
		FROM (SELECT conversation_id, seq FROM search_queue ORDER BY conversation_id, seq LIMIT ?1) q
		JOIN messages m ON m.conversation_id = q.conversation_id AND m.seq = q.seq) WHERE t <> ''
	ON CONFLICT DO NOTHING`

// indexQueued indexes up to n queued messages (see migration 10) in one
// write transaction and returns how many it took off the queue.
func (s *Store) indexQueued(ctx context.Context, n int) (int, error) {
	var k int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, queueInsert, n); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM search_queue WHERE (conversation_id, seq) IN
			(SELECT conversation_id, seq FROM search_queue ORDER BY conversation_id, seq LIMIT ?)`, n)
		if err != nil {
			return err
		}
		k, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: index queued messages: %w", err)
	}
	return int(k), nil
}

// indexQueue empties the queue, batch by batch: every search does it
// before reading, so that it finds every message sent before it.
func (s *Store) indexQueue(ctx context.Context) error {
	var queued bool
	if err := s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM search_queue)`).Scan(&queued); err != nil || !queued {
		return err
	}
	return store.DrainQueue(ctx, s.indexQueued)
}
