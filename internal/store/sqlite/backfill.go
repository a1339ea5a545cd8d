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
func (s *Store) BackfillSearch(ctx context.Context, log *slog.Logger) error {
	return s.backfillSearch(ctx, log, backfillBatch)
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
