package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/chatd/chatd/internal/store"
)

// Search finds candidates with the FTS5 trigram index for terms of 3
// characters or more (one MATCH of every such term as a quoted string:
// substring semantics, case and diacritics folded), and with LIKE over the
// searchable text of the user's conversations for shorter terms (see
// migration 8); store.FilterSearch keeps the hits and bounds the work.
func (s *Store) Search(ctx context.Context, q store.SearchQuery) (store.SearchPage, error) {
	if q.Limit <= 0 || len(q.Terms) == 0 {
		return store.SearchPage{Messages: []store.Message{}}, nil
	}
	var b strings.Builder
	args := []any{q.UserID, q.AppID}
	b.WriteString(`SELECT ` + msgCols + `, u.name, u.avatar_uri FROM members v
	JOIN search_docs d ON d.conversation_id = v.conversation_id
	JOIN messages m ON m.conversation_id = d.conversation_id AND m.seq = d.seq
	JOIN conversations c ON c.id = m.conversation_id
	LEFT JOIN users u ON u.app_id = c.app_id AND u.user_id = m.sender_id
	WHERE v.user_id = ? AND v.app_id = ?
	AND d.seq > CASE WHEN c.full_history OR v.full_history THEN 0 ELSE v.joined_seq END
	AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.conversation_id = d.conversation_id AND h.user_id = v.user_id
		AND d.seq BETWEEN h.from_seq AND h.to_seq)`)
	var match []string
	for _, t := range q.Terms {
		if store.RuneLen(t) >= 3 {
			match = append(match, `"`+strings.ReplaceAll(t, `"`, `""`)+`"`)
			continue
		}
		b.WriteString(` AND d.text LIKE ? ESCAPE '\'`)
		args = append(args, "%"+store.LikeEscape(t)+"%")
	}
	if len(match) > 0 {
		b.WriteString(` AND d.id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)`)
		args = append(args, strings.Join(match, " AND "))
	}
	if q.ConversationID != "" {
		b.WriteString(` AND v.conversation_id = ?`)
		args = append(args, q.ConversationID)
	}
	if q.SenderID != "" {
		b.WriteString(` AND m.sender_id = ?`)
		args = append(args, q.SenderID)
	}
	if q.Type != 0 {
		b.WriteString(` AND m.type = ?`)
		args = append(args, q.Type)
	}
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
