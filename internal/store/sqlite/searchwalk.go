package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// rareLimit is how many docs of the whole index may hold a heavy user's
// terms for the search to read them from the FTS5 index (newest first
// after a sort of them all); with more, the terms are common and a walk of
// the user's newest messages finds a page sooner (store.Walk).
var rareLimit = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(5000)
	return &n
}() // changed by the tests of the walk

// rareTerms reports whether the terms of 3 characters or more, as FTS5
// trigrams, match at most rareLimit docs in all. The count stops at the
// limit, so it costs at most that many doc ids.
func (s *Store) rareTerms(ctx context.Context, terms []string) (bool, error) {
	match := ftsQuery(terms)
	if match == "" {
		return false, nil
	}
	limit := rareLimit.Load()
	var n int64
	err := s.queryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH ? LIMIT ?)`,
		match, limit+1).Scan(&n)
	return n <= limit, err
}

// ftsQuery is the FTS5 query of every trigram of the terms of 3 characters
// or more, "" when there is none.
func ftsQuery(terms []string) string {
	var match []string
	for _, t := range terms {
		if store.RuneLen(t) >= 3 {
			match = append(match, trigrams(t)...)
		}
	}
	return strings.Join(match, " AND ")
}

// filterSQL is the sender and type conditions of q over messages m.
func filterSQL(q store.SearchQuery, args *[]any) string {
	var b strings.Builder
	if q.SenderID != "" {
		b.WriteString(` AND m.sender_id = ?`)
		*args = append(*args, q.SenderID)
	}
	if q.Type != 0 {
		b.WriteString(` AND m.type = ?`)
		*args = append(*args, q.Type)
	}
	return b.String()
}

// walkSearch searches a heavy user's history newest first (store.Walk):
// windows of the newest messages of each conversation, their docs matched
// with GLOB, so that a common term stops after a few thousand docs.
func (s *Store) walkSearch(ctx context.Context, q store.SearchQuery) (store.SearchPage, error) {
	query := `SELECT v.conversation_id, CASE WHEN c.full_history OR v.full_history THEN 0 ELSE v.joined_seq END, c.last_seq, c.last_msg_at, c.created_at
		FROM members v JOIN conversations c ON c.id = v.conversation_id WHERE v.app_id = ? AND v.user_id = ?`
	args := []any{q.AppID, q.UserID}
	if q.ConversationID != "" {
		query += ` AND v.conversation_id = ?`
		args = append(args, q.ConversationID)
	}
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return store.SearchPage{}, fmt.Errorf("sqlite: search of %s: %w", q.UserID, err)
	}
	var convs []store.WalkConv
	for rows.Next() {
		var c store.WalkConv
		var at, first int64
		if err := rows.Scan(&c.ID, &c.Floor, &c.Last, &at, &first); err != nil {
			rows.Close()
			return store.SearchPage{}, fmt.Errorf("sqlite: search of %s: %w", q.UserID, err)
		}
		c.LastAt, c.FirstAt = store.FromUnixMS(at), store.FromUnixMS(first)
		convs = append(convs, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return store.SearchPage{}, fmt.Errorf("sqlite: search of %s: %w", q.UserID, err)
	}
	var b strings.Builder
	cargs := []any{nil, q.UserID}
	b.WriteString(`WITH r (c, f, t) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?))
	SELECT ` + msgCols + `, u.name, u.avatar_uri FROM r
	CROSS JOIN search_docs d ON d.conversation_id = r.c AND d.seq > r.f AND d.seq <= r.t
	JOIN messages m ON m.conversation_id = d.conversation_id AND m.seq = d.seq
	JOIN conversations c ON c.id = m.conversation_id
	LEFT JOIN users u ON u.app_id = c.app_id AND u.user_id = m.sender_id
	WHERE NOT EXISTS (SELECT 1 FROM hidden h WHERE h.conversation_id = d.conversation_id AND h.user_id = ?
		AND d.seq BETWEEN h.from_seq AND h.to_seq)`)
	for _, t := range q.Terms {
		b.WriteString(` AND d.text GLOB ?`)
		cargs = append(cargs, globPattern(t))
	}
	b.WriteString(filterSQL(q, &cargs))
	w := store.NewWalk(walkStore{s, b.String(), cargs}, convs)
	w.Want = q.Limit
	page, err := store.FilterSearch(ctx, q, w.Fetch)
	if err != nil {
		return store.SearchPage{}, fmt.Errorf("%w (search of %s)", err, q.UserID)
	}
	return page, nil
}

// walkStore is store.WalkStore over the candidate query of a walkSearch,
// whose first argument is the ranges (JSON).
type walkStore struct {
	s     *Store
	query string
	args  []any
}

func rangesJSON(ranges []store.SeqRange) string {
	out := make([][3]any, len(ranges))
	for i, r := range ranges {
		out[i] = [3]any{r.ConversationID, r.From, r.To}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func (w walkStore) Newest(ctx context.Context, ranges []store.SeqRange) (map[string]time.Time, error) {
	rows, err := w.s.query(ctx, `SELECT r.c, (SELECT m.created_at FROM messages m WHERE m.conversation_id = r.c AND m.seq > r.f AND m.seq <= r.t
			ORDER BY m.seq DESC LIMIT 1)
		FROM (SELECT json_extract(value, '$[0]') AS c, json_extract(value, '$[1]') AS f, json_extract(value, '$[2]') AS t FROM json_each(?)) r`,
		rangesJSON(ranges))
	if err != nil {
		return nil, fmt.Errorf("sqlite: search walk: %w", err)
	}
	defer rows.Close()
	out := make(map[string]time.Time, len(ranges))
	for rows.Next() {
		var c string
		var at *int64
		if err := rows.Scan(&c, &at); err != nil {
			return nil, fmt.Errorf("sqlite: search walk: %w", err)
		}
		if at != nil {
			out[c] = store.FromUnixMS(*at)
		}
	}
	return out, rows.Err()
}

func (w walkStore) Candidates(ctx context.Context, ranges []store.SeqRange) ([]store.Message, error) {
	args := append([]any{rangesJSON(ranges)}, w.args[1:]...)
	return w.s.queryMsgs(ctx, "search", 64, w.query, args...)
}
