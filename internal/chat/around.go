package chat

import (
	"context"
	"fmt"
	"slices"

	"github.com/chatd/chatd/internal/store"
)

// HistoryAround returns a page of the caller's session sid around seq,
// oldest first, to open a conversation at a search hit
// (docs/socket-protocol.md, "Search"): seq itself, up to half the page of
// newer messages and the rest older ones, fewer on one side when the other
// has more. The hit must be a message the caller sees (joined_seq and
// hidden ranges apply); otherwise ErrNotFound, as for lastmsgId. Pages on
// either side then follow with lastmsgId (older) and sync's afterSeq
// (newer).
func (s *Service) HistoryAround(ctx context.Context, appID, userID, sid string, seq int64, limit int) ([]Message, error) {
	conv, _, err := s.session(ctx, appID, userID, sid)
	if err != nil {
		return nil, err
	}
	if seq < 1 {
		return nil, fmt.Errorf("%w: aroundSeq must be a message seq (1 or more)", ErrInvalid)
	}
	n, err := s.limit(limit)
	if err != nil {
		return nil, err
	}
	// Ask for a full page each way, then keep the window: one read each way
	// whatever the split.
	msgs, err := s.store.MessagesAround(ctx, conv.ID, userID, seq, n, n)
	if err != nil {
		return nil, fmt.Errorf("history around: %w", err)
	}
	at := slices.IndexFunc(msgs, func(m store.Message) bool { return m.Seq == seq })
	if at < 0 {
		return nil, fmt.Errorf("%w: message seq %d in this conversation", ErrNotFound, seq)
	}
	older, newer := at+1, len(msgs)-at-1 // older counts the hit itself
	after := min(newer, n/2)
	before := min(older, n-after)
	after = min(newer, n-before)
	return s.viewerMessages(ctx, conv, userID, msgs[older-before:older+after])
}
