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
func (s *Store) BackfillSearch(ctx context.Context, log *slog.Logger) error {
	return s.backfillSearch(ctx, log, backfillBatch)
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
