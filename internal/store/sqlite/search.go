package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/chatd/chatd/internal/store"
)

// Search finds candidates in one of three ways (docs/architecture.md,
// "Search"). A user whose conversations hold at most scanLimit messages they
// may see is searched by scanning their docs with GLOB (case and the
// diacritics store.FoldRune folds spelled out as character classes): the
// cost follows their history. For a user with more, terms of 3 characters
// or more that match few docs in all (rareTerms) are read from the FTS5
// trigram index (every trigram of them; case and diacritics folded), whose
// cost follows the terms' matches in the whole database; anything else walks
// the user's newest messages first (walkSearch), whose cost follows how far
// back the hits are. store.FilterSearch keeps the hits and bounds the work.
func (s *Store) Search(ctx context.Context, q store.SearchQuery) (store.SearchPage, error) {
	if q.Limit <= 0 || len(q.Terms) == 0 {
		return store.SearchPage{Messages: []store.Message{}}, nil
	}
	if err := s.indexQueue(ctx); err != nil { // what was sent before the search (migration 10)
		return store.SearchPage{}, fmt.Errorf("%w (search of %s)", err, q.UserID)
	}
	n, err := s.historySize(ctx, q)
	if err != nil {
		return store.SearchPage{}, fmt.Errorf("sqlite: search of %s: %w", q.UserID, err)
	}
	heavy := n > scanLimit.Load()
	if heavy {
		rare, err := s.rareTerms(ctx, q.Terms)
		if err != nil {
			return store.SearchPage{}, fmt.Errorf("sqlite: search of %s: %w", q.UserID, err)
		}
		if !rare {
			return s.walkSearch(ctx, q)
		}
	}
	var b strings.Builder
	args := []any{q.UserID, q.AppID}
	if heavy {
		// Few candidates in the whole index: read them from it, then
		// keep the user's.
		b.WriteString(`SELECT ` + msgCols + `, u.name, u.avatar_uri FROM search_fts
	CROSS JOIN search_docs d ON d.id = search_fts.rowid
	JOIN members v ON v.conversation_id = d.conversation_id`)
	} else {
		b.WriteString(`SELECT ` + msgCols + `, u.name, u.avatar_uri FROM members v
	JOIN search_docs d ON d.conversation_id = v.conversation_id`)
	}
	b.WriteString(`
	JOIN messages m ON m.conversation_id = d.conversation_id AND m.seq = d.seq
	JOIN conversations c ON c.id = m.conversation_id
	LEFT JOIN users u ON u.app_id = c.app_id AND u.user_id = m.sender_id
	WHERE v.user_id = ? AND v.app_id = ?
	AND d.seq > CASE WHEN c.full_history OR v.full_history THEN 0 ELSE v.joined_seq END
	AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.conversation_id = d.conversation_id AND h.user_id = v.user_id
		AND d.seq BETWEEN h.from_seq AND h.to_seq)`)
	for _, t := range q.Terms {
		b.WriteString(` AND d.text GLOB ?`)
		args = append(args, globPattern(t))
	}
	if heavy {
		b.WriteString(` AND search_fts MATCH ?`)
		args = append(args, ftsQuery(q.Terms))
	}
	if q.ConversationID != "" {
		b.WriteString(` AND v.conversation_id = ?`)
		args = append(args, q.ConversationID)
	}
	b.WriteString(filterSQL(q, &args))
	base, baseArgs := b.String(), args
	page, err := store.FilterSearch(ctx, q, func(ctx context.Context, before *store.SearchCursor, n int) ([]store.Message, error) {
		sql, args := base, slices.Clone(baseArgs)
		if c := before; c != nil {
			sql += ` AND (m.created_at, m.conversation_id, m.seq) < (?, ?, ?)`
			args = append(args, c.At.UnixMilli(), c.ConversationID, c.Seq)
		}
		sql += ` ORDER BY m.created_at DESC, m.conversation_id DESC, m.seq DESC LIMIT ?`
		return s.queryMsgs(ctx, "search", n, sql, append(args, n)...)
	})
	if err != nil {
		return store.SearchPage{}, fmt.Errorf("%w (search of %s)", err, q.UserID)
	}
	return page, nil
}

// scanLimit is the history size (messages a user may see) up to which a
// search scans the user's docs rather than the FTS index: measured with
// cmd/searchbench (docs/benchmarks.md, "Search"), scanning 100,000 docs
// costs about what a common term costs the index.
var scanLimit = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(100_000)
	return &n
}() // changed by the tests of the index path

// historySize is about how many messages q's user may see in the searched
// conversations: their seqs past the user's join.
func (s *Store) historySize(ctx context.Context, q store.SearchQuery) (int64, error) {
	var n int64
	query := `SELECT coalesce(sum(c.last_seq - CASE WHEN c.full_history OR v.full_history THEN 0 ELSE v.joined_seq END), 0)
		FROM members v JOIN conversations c ON c.id = v.conversation_id WHERE v.app_id = ? AND v.user_id = ?`
	args := []any{q.AppID, q.UserID}
	if q.ConversationID != "" {
		query += ` AND v.conversation_id = ?`
		args = append(args, q.ConversationID)
	}
	err := s.queryRow(ctx, query, args...).Scan(&n)
	return n, err
}

// trigrams are term's trigrams as FTS5 strings. The FTS5 table keeps no
// positions (detail=none, migration 13), so it cannot match a phrase: a
// doc with every trigram of a term is a candidate, and the term's GLOB on
// the doc keeps only those that contain it.
func trigrams(term string) []string {
	r := []rune(term)
	out := make([]string, 0, len(r)-2)
	for i := range len(r) - 2 {
		out = append(out, `"`+strings.ReplaceAll(string(r[i:i+3]), `"`, `""`)+`"`)
	}
	return out
}

// globPattern is a GLOB pattern that finds term anywhere in a text, in any
// case and with any of the diacritics store.FoldRune folds: a superset of
// what store.MatchAt accepts.
func globPattern(term string) string {
	var b strings.Builder
	b.WriteByte('*')
	for _, r := range term {
		f := store.FoldRune(r)
		class := []rune{f}
		for _, v := range append(unfold[f], unicode.ToUpper(f), unicode.ToTitle(f), r, unicode.ToUpper(r)) {
			if !slices.Contains(class, v) {
				class = append(class, v)
			}
		}
		switch {
		case len(class) > 1:
			b.WriteByte('[')
			b.WriteString(string(class))
			b.WriteByte(']')
		case f == '*' || f == '?' || f == '[':
			b.WriteString("[" + string(f) + "]")
		default:
			b.WriteRune(f)
		}
	}
	b.WriteByte('*')
	return b.String()
}

// unfold maps a folded rune to the runes that fold to it (store.FoldRune)
// among the Latin, Greek and Cyrillic letters.
var unfold = func() map[rune][]rune {
	m := map[rune][]rune{}
	for r := rune(0x41); r < 0x530; r++ {
		if f := store.FoldRune(r); f != r {
			m[f] = append(m[f], r)
		}
	}
	return m
}()
