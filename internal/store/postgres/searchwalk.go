package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
)

// walkSearch searches a heavy user's history newest first (store.Walk):
// windows of the newest messages of each conversation, their docs matched
// with ILIKE, so that a common term stops after a few thousand docs instead
// of sorting the whole history (docs/benchmarks.md, "Search").
func (s *Store) walkSearch(ctx context.Context, q store.SearchQuery) (store.SearchPage, error) {
	query := `SELECT v.conversation_id, CASE WHEN c.full_history OR v.full_history THEN 0 ELSE v.joined_seq END, c.last_seq, c.last_msg_at, c.created_at
		FROM members v JOIN conversations c ON c.id = v.conversation_id WHERE v.app_id = $1 AND v.user_id = $2`
	args := []any{q.AppID, q.UserID}
	if q.ConversationID != "" {
		query += ` AND v.conversation_id = $3`
		args = append(args, q.ConversationID)
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return store.SearchPage{}, wrap("search", err, nil)
	}
	var c store.WalkConv
	var at, first int64
	var convs []store.WalkConv
	if _, err := pgx.ForEachRow(rows, []any{&c.ID, &c.Floor, &c.Last, &at, &first}, func() error {
		c.LastAt, c.FirstAt = store.FromUnixMS(at), store.FromUnixMS(first)
		convs = append(convs, c)
		return nil
	}); err != nil {
		return store.SearchPage{}, wrap("search", err, nil)
	}
	var b strings.Builder
	cargs := []any{nil, nil, nil, q.UserID}
	arg := func(v any) string {
		cargs = append(cargs, v)
		return fmt.Sprintf("$%d", len(cargs))
	}
	b.WriteString(msgSelect + `
	JOIN unnest($1::text[], $2::bigint[], $3::bigint[]) AS r (c, f, t) ON m.conversation_id = r.c AND m.seq > r.f AND m.seq <= r.t
	JOIN search_docs d ON d.conversation_id = m.conversation_id AND d.seq = m.seq
	WHERE NOT EXISTS (SELECT 1 FROM hidden h WHERE h.conversation_id = m.conversation_id AND h.user_id = $4
		AND m.seq BETWEEN h.from_seq AND h.to_seq)`)
	// (d.text || ''): the trigram index serves no expression, so the
	// planner neither estimates the term with it nor turns to it.
	for _, t := range q.Terms {
		b.WriteString(` AND (d.text || '') ILIKE search_fold(` + arg("%"+store.LikeEscape(t)+"%") + `)`)
	}
	if q.SenderID != "" {
		b.WriteString(` AND m.sender_id = ` + arg(q.SenderID))
	}
	if q.Type != 0 {
		b.WriteString(` AND m.type = ` + arg(q.Type))
	}
	if rare, err := s.rareTerms(ctx, q.Terms); err != nil {
		return store.SearchPage{}, err
	} else if rare {
		return s.rareSearch(ctx, q, b.String(), cargs)
	}
	w := store.NewWalk(walkStore{s, b.String(), cargs}, convs)
	w.Want = q.Limit
	return store.FilterSearch(ctx, q, w.Fetch)
}

// walkStore is store.WalkStore over the candidate query of a walkSearch,
// whose first three arguments are the ranges.
type walkStore struct {
	s     *Store
	query string
	args  []any
}

func rangeArgs(ranges []store.SeqRange) []any {
	c, f, t := make([]string, len(ranges)), make([]int64, len(ranges)), make([]int64, len(ranges))
	for i, r := range ranges {
		c[i], f[i], t[i] = r.ConversationID, r.From, r.To
	}
	return []any{c, f, t}
}

func (w walkStore) Newest(ctx context.Context, ranges []store.SeqRange) (map[string]time.Time, error) {
	rows, err := w.s.pool.Query(ctx, `SELECT r.c, (SELECT m.created_at FROM messages m WHERE m.conversation_id = r.c AND m.seq > r.f AND m.seq <= r.t
		ORDER BY m.seq DESC LIMIT 1) FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS r (c, f, t)`, rangeArgs(ranges)...)
	if err != nil {
		return nil, wrap("search walk", err, nil)
	}
	out := make(map[string]time.Time, len(ranges))
	var c string
	var at *int64
	_, err = pgx.ForEachRow(rows, []any{&c, &at}, func() error {
		if at != nil {
			out[c] = store.FromUnixMS(*at)
		}
		return nil
	})
	return out, wrap("search walk", err, nil)
}

func (w walkStore) Candidates(ctx context.Context, ranges []store.SeqRange) ([]store.Message, error) {
	args := append(rangeArgs(ranges), w.args[3:]...)
	return w.s.queryMessages(ctx, "search", w.query, args...)
}

// rareLimit is how many docs of the whole index may hold a heavy user's
// terms for the search to read them from the trigram index (then keep the
// user's, newest first) rather than walk the user's history.
var rareLimit = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(5000)
	return &n
}() // changed by the tests of the walk

// rareTerms reports whether the terms of 3 characters or more match at most
// rareLimit docs in all, counted through the trigram index up to the limit.
func (s *Store) rareTerms(ctx context.Context, terms []string) (bool, error) {
	var b strings.Builder
	var args []any
	for _, t := range terms {
		if store.RuneLen(t) >= 3 {
			args = append(args, "%"+store.LikeEscape(t)+"%")
			if b.Len() > 0 {
				b.WriteString(" AND ")
			}
			fmt.Fprintf(&b, "text ILIKE search_fold($%d)", len(args))
		}
	}
	if len(args) == 0 {
		return false, nil
	}
	limit := rareLimit.Load()
	// The planner's estimate first: a term it expects in many times the
	// limit is common, and counting it would build its whole bitmap.
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := s.pool.QueryRow(ctx, `EXPLAIN (FORMAT JSON) SELECT 1 FROM search_docs WHERE `+b.String(), args...).Scan(&plan); err != nil {
		return false, wrap("search: rare terms", err, nil)
	}
	if len(plan) > 0 && plan[0].Plan.Rows > 4*float64(limit) {
		return false, nil
	}
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM search_docs WHERE `+b.String()+
		fmt.Sprintf(` LIMIT %d) x`, limit+1), args...).Scan(&n)
	return n <= limit, wrap("search: rare terms", err, nil)
}

// rareSearch reads the candidates of the walk's query (query, args, with
// all of the user's conversations as its ranges) driven by the trigram
// index: the few docs that hold the terms, then the user's, sorted.
func (s *Store) rareSearch(ctx context.Context, q store.SearchQuery, query string, args []any) (store.SearchPage, error) {
	var terms []string
	var targs []any
	for _, t := range q.Terms {
		if store.RuneLen(t) >= 3 {
			targs = append(targs, "%"+store.LikeEscape(t)+"%")
			terms = append(terms, fmt.Sprintf("text ILIKE search_fold($%d)", len(args)+len(targs)))
		}
	}
	// The index's docs first (a CTE the planner cannot fold into the
	// join), then the walk's query over them.
	query = `WITH hit AS MATERIALIZED (SELECT conversation_id, seq FROM search_docs WHERE ` + strings.Join(terms, " AND ") + `)
	` + strings.Replace(query, `JOIN unnest($1::text[], $2::bigint[], $3::bigint[]) AS r (c, f, t) ON m.conversation_id = r.c AND m.seq > r.f AND m.seq <= r.t`,
		`JOIN hit ON hit.conversation_id = m.conversation_id AND hit.seq = m.seq
	JOIN members v ON v.conversation_id = m.conversation_id AND v.user_id = $4 AND v.app_id = $1
		AND m.seq > CASE WHEN c.full_history OR v.full_history THEN 0 ELSE v.joined_seq END
		AND $2::bigint[] IS NULL AND $3::bigint[] IS NULL -- the walk's ranges, not used here`, 1)
	base := append(append([]any{q.AppID, nil, nil}, args[3:]...), targs...)
	if q.ConversationID != "" {
		base = append(base, q.ConversationID)
		query += fmt.Sprintf(` AND m.conversation_id = $%d`, len(base))
	}
	return store.FilterSearch(ctx, q, func(ctx context.Context, before *store.SearchCursor, n int) ([]store.Message, error) {
		sql, a := query, slices.Clone(base)
		if c := before; c != nil {
			a = append(a, c.At.UnixMilli(), c.ConversationID, c.Seq)
			sql += fmt.Sprintf(` AND (m.created_at, m.conversation_id, m.seq) < ($%d, $%d, $%d)`, len(a)-2, len(a)-1, len(a))
		}
		a = append(a, n)
		sql += fmt.Sprintf(` ORDER BY m.created_at DESC, m.conversation_id DESC, m.seq DESC LIMIT $%d`, len(a))
		return s.queryMessages(ctx, "search", sql, a...)
	})
}
