package postgres

import (
	"context"
	"slices"

	"github.com/chatd/chatd/internal/store"
)

// notHidden leaves out the ranges the reader (the members row v) hid.
const notHidden = `AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.conversation_id = m.conversation_id AND h.user_id = v.user_id
		AND m.seq BETWEEN h.from_seq AND h.to_seq) `

// MessagesAround is two index range reads from seq, one each way; it is kept
// apart from History (and any cache of it) because a jump to a search hit
// is a one-off read.
func (s *Store) MessagesAround(ctx context.Context, conversationID, userID string, seq int64, before, after int) ([]store.Message, error) {
	out := []store.Message{}
	if before > 0 {
		older, err := s.queryMessages(ctx, "messages around", msgSelect+visibleFrom+notHidden+`AND m.seq <= $3
			ORDER BY m.seq DESC LIMIT $4`, userID, conversationID, seq, before)
		if err != nil {
			return nil, err
		}
		slices.Reverse(older)
		out = append(out, older...)
	}
	if after > 0 {
		newer, err := s.queryMessages(ctx, "messages around", msgSelect+visibleFrom+notHidden+`AND m.seq > $3
			ORDER BY m.seq LIMIT $4`, userID, conversationID, seq, after)
		if err != nil {
			return nil, err
		}
		out = append(out, newer...)
	}
	return out, nil
}
