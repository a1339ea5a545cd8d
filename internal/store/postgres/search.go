package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
)

// Search finds candidates with ILIKE '%term%' for every term over
// search_docs (both without diacritics, see migration 8). For a user whose
// conversations hold at most scanLimit messages they may see, the query
// runs with a generic plan: it walks the user's docs, and planning it anew
// for each search (the trigram selectivity estimates) cost more than running
// it (docs/benchmarks.md, "Search"). Beyond that the search reads rare terms
// through the pg_trgm index, or walks the user's newest messages first
// (walkSearch).
// store.FilterSearch keeps the hits and bounds the work.
func (s *Store) Search(ctx context.Context, q store.SearchQuery) (store.SearchPage, error) {
	if q.Limit <= 0 || len(q.Terms) == 0 {
		return store.SearchPage{Messages: []store.Message{}}, nil
	}
	if err := s.indexQueue(ctx); err != nil { // what was sent before the search (migration 10)
		return store.SearchPage{}, err
	}
	var size int64
	sizeQuery := `SELECT coalesce(sum(c.last_seq - CASE WHEN c.full_history OR v.full_history THEN 0 ELSE v.joined_seq END), 0)
		FROM members v JOIN conversations c ON c.id = v.conversation_id WHERE v.app_id = $1 AND v.user_id = $2`
	sizeArgs := []any{q.AppID, q.UserID}
	if q.ConversationID != "" {
		sizeQuery += ` AND v.conversation_id = $3`
		sizeArgs = append(sizeArgs, q.ConversationID)
	}
	if err := s.pool.QueryRow(ctx, sizeQuery, sizeArgs...).Scan(&size); err != nil {
		return store.SearchPage{}, wrap("search: history size", err, nil)
	}
	if size > scanLimit.Load() {
		return s.walkSearch(ctx, q)
	}
	// The walk of the user's docs must not turn into trigram index scans,
	// one per conversation (a generic plan did that with two terms): the
	// index does not serve an expression.
	text := "(d.text || '')"
	var b strings.Builder
	args := []any{q.UserID, q.AppID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	b.WriteString(msgSelect + `
	JOIN search_docs d ON d.conversation_id = m.conversation_id AND d.seq = m.seq
	JOIN members v ON v.conversation_id = m.conversation_id AND v.user_id = $1 AND v.app_id = $2
	WHERE m.seq > CASE WHEN c.full_history OR v.full_history THEN 0 ELSE v.joined_seq END
	AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.conversation_id = m.conversation_id AND h.user_id = v.user_id
		AND m.seq BETWEEN h.from_seq AND h.to_seq)`)
	for _, t := range q.Terms {
		b.WriteString(` AND ` + text + ` ILIKE search_fold(` + arg("%"+store.LikeEscape(t)+"%") + `)`)
	}
	if q.ConversationID != "" {
		b.WriteString(` AND m.conversation_id = ` + arg(q.ConversationID))
	}
	if q.SenderID != "" {
		b.WriteString(` AND m.sender_id = ` + arg(q.SenderID))
	}
	if q.Type != 0 {
		b.WriteString(` AND m.type = ` + arg(q.Type))
	}
	base, baseArgs := b.String(), args
	return store.FilterSearch(ctx, q, func(ctx context.Context, before *store.SearchCursor, n int) ([]store.Message, error) {
		var b strings.Builder
		b.WriteString(base)
		args = slices.Clone(baseArgs)
		if c := before; c != nil {
			b.WriteString(` AND (m.created_at, m.conversation_id, m.seq) < (` +
				arg(c.At.UnixMilli()) + `, ` + arg(c.ConversationID) + `, ` + arg(c.Seq) + `)`)
		}
		b.WriteString(` ORDER BY m.created_at DESC, m.conversation_id DESC, m.seq DESC LIMIT ` + arg(n))
		var msgs []store.Message
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, b.String(), args...)
			if err != nil {
				return err
			}
			msgs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Message, error) { return scanMessage(r) })
			return err
		})
		return msgs, wrap("search", err, nil)
	})
}

// scanLimit is the history size (messages a user may see) up to which a
// search walks the user's docs with a generic plan; beyond it, the search
// walks the user's newest messages first (walkSearch).
var scanLimit = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(100_000)
	return &n
}() // changed by the tests of the walk
