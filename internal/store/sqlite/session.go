package sqlite

import (
	"context"
	"strings"

	"github.com/chatd/chatd/internal/store"
)

// prefixed returns a column list with every column qualified by alias.
func prefixed(alias, cols string) string {
	return alias + "." + strings.ReplaceAll(cols, ", ", ", "+alias+".")
}

var sessionBySIDQuery = `SELECT ` + prefixed("c", convCols) + `, ` + prefixed("m", memberCols) + `
	FROM members m JOIN conversations c ON c.id = m.conversation_id
	WHERE m.sid = ? AND m.app_id = ? AND m.user_id = ?`

// SessionBySID is MemberBySID and Conversation in one statement: every
// history page and sync starts with it (docs/benchmarks.md, History).
func (s *Store) SessionBySID(ctx context.Context, appID, userID, sid string) (store.Conversation, store.Member, error) {
	var c store.Conversation
	var m store.Member
	var lastAt, created, mCreated int64
	err := s.queryRow(ctx, sessionBySIDQuery, sid, appID, userID).Scan(
		&c.ID, &c.AppID, &c.Type, &c.Key, &c.Name, &c.AvatarURI, &c.LastSeq, &lastAt, &created, &c.ChangeSeq,
		&m.ConversationID, &m.AppID, &m.UserID, &m.SID, &m.ReadSeq, &m.JoinedSeq, &mCreated, &m.HidMessages)
	if err != nil {
		return store.Conversation{}, store.Member{}, notFound(err, store.ErrNotFound, "session %s of %s/%s", sid, appID, userID)
	}
	c.LastMsgAt = store.FromUnixMS(lastAt)
	c.CreatedAt = store.FromUnixMS(created)
	m.CreatedAt = store.FromUnixMS(mCreated)
	return c, m, nil
}
