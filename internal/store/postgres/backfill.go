package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
)

// backfillBatch is how many messages one backfill transaction goes over.
const backfillBatch = 5000

// BackfillSearch indexes the messages that predate the search migration
// (see store.SearchBackfiller), in key order from the cursor kept in
// search_backfill; the row lock on it makes nodes take turns.
// Then it indexes the queue of new messages (see indexQueued) until ctx
// ends.
func (s *Store) BackfillSearch(ctx context.Context, log *slog.Logger) error {
	if err := s.backfillSearch(ctx, log, backfillBatch); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return store.IndexQueueLoop(ctx, func(ctx context.Context, n int) (int, error) { return s.indexQueued(ctx, n, false) })
}

func (s *Store) backfillSearch(ctx context.Context, log *slog.Logger, batch int) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return store.RunBackfill(ctx, log, "postgres", func(ctx context.Context) (n int, done bool, err error) {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var conv string
			var seq int64
			if err := tx.QueryRow(ctx, `SELECT conversation_id, seq, done FROM search_backfill FOR UPDATE`).Scan(&conv, &seq, &done); err != nil || done {
				return err
			}
			var endConv string
			var endSeq int64
			err := tx.QueryRow(ctx, `SELECT conversation_id, seq FROM messages WHERE (conversation_id, seq) > ($1, $2)
				ORDER BY conversation_id, seq LIMIT 1 OFFSET $3`, conv, seq, batch-1).Scan(&endConv, &endSeq)
			if errors.Is(err, pgx.ErrNoRows) {
				done = true
				err = tx.QueryRow(ctx, `SELECT count(*) FROM messages WHERE (conversation_id, seq) > ($1, $2)`, conv, seq).Scan(&n)
				// and the batch is everything after the cursor
			} else {
				n = batch
			}
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO search_docs (conversation_id, seq, text)
				SELECT conversation_id, seq, t FROM (SELECT conversation_id, seq, left(search_fold(search_text(type, content)), 500) AS t
					FROM messages WHERE (conversation_id, seq) > ($1, $2) AND ($5 OR (conversation_id, seq) <= ($3, $4))) x
				WHERE t <> '' ON CONFLICT DO NOTHING`, conv, seq, endConv, endSeq, done); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE search_backfill SET conversation_id = $1, seq = $2, done = $3`, endConv, endSeq, done)
			return err
		})
		if err != nil {
			return 0, false, fmt.Errorf("postgres: search backfill: %w", err)
		}
		return n, done, nil
	})
}

// indexQueued indexes up to n queued messages (see migration 10) in one
// transaction and returns how many it took off the queue. Nodes take
// different rows (SKIP LOCKED). Each statement reads the messages as they
// are then; a change committed meanwhile has queued its message again, so
// the next batch corrects the doc.
//
// With wait, the batch waits for rows another node is indexing instead of
// skipping them: a search must not read before those docs are committed,
// or it would miss messages sent before it (docs/architecture.md,
// "Search"). Once that node commits, its rows are gone from the queue and
// the batch takes the next ones. Every batch locks in key order, so two
// waiting searches cannot deadlock, and the background indexer, which
// skips, never waits.
func (s *Store) indexQueued(ctx context.Context, n int, wait bool) (int, error) {
	lock := `FOR UPDATE SKIP LOCKED`
	if wait {
		lock = `FOR UPDATE`
	}
	var k int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM search_queue WHERE (conversation_id, seq) IN
			(SELECT conversation_id, seq FROM search_queue ORDER BY conversation_id, seq LIMIT $1 `+lock+`)
			RETURNING conversation_id, seq`, n)
		if err != nil {
			return err
		}
		var convs []string
		var seqs []int64
		var conv string
		var seq int64
		if _, err := pgx.ForEachRow(rows, []any{&conv, &seq}, func() error {
			convs, seqs = append(convs, conv), append(seqs, seq)
			return nil
		}); err != nil {
			return err
		}
		if k = len(convs); k == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM search_docs d USING unnest($1::text[], $2::bigint[]) AS k(conversation_id, seq)
			WHERE d.conversation_id = k.conversation_id AND d.seq = k.seq`, convs, seqs); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO search_docs (conversation_id, seq, text)
			SELECT conversation_id, seq, t FROM (SELECT m.conversation_id, m.seq, left(search_fold(search_text(m.type, m.content)), 500) AS t
				FROM unnest($1::text[], $2::bigint[]) AS k(conversation_id, seq)
				JOIN messages m ON m.conversation_id = k.conversation_id AND m.seq = k.seq) x
			WHERE t <> '' ON CONFLICT (conversation_id, seq) DO UPDATE SET text = EXCLUDED.text`, convs, seqs)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: index queued messages: %w", err)
	}
	return k, nil
}

// indexQueue empties the queue, batch by batch: every search does it
// before reading, so that it finds every message sent before it.
func (s *Store) indexQueue(ctx context.Context) error {
	var queued bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM search_queue)`).Scan(&queued); err != nil || !queued {
		return wrap("search queue", err, nil)
	}
	return store.DrainQueue(ctx, func(ctx context.Context, n int) (int, error) { return s.indexQueued(ctx, n, true) })
}
