package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/chatd/chatd/internal/chat"
)

// evSearch searches the caller's messages (docs/socket-protocol.md,
// "Search"). Like every event it counts against the per-user rate limit.
const evSearch = "search-messages"

func init() {
	events[evSearch] = (*Gateway).searchMessages
}

type searchArg struct {
	Q            string `json:"q"`
	SID          string `json:"sid"`
	SenderUserID string `json:"senderUserId"`
	MessageType  int    `json:"messageType"`
	Before       string `json:"before"`
	Limit        int    `json:"limit"`
}

func (g *Gateway) searchMessages(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	var in searchArg
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	return g.chat.Search(ctx, c.AppID, c.UserID, chat.SearchInput{Q: in.Q, SID: in.SID,
		SenderUserID: in.SenderUserID, MessageType: in.MessageType, Before: in.Before, Limit: in.Limit})
}

// historyAround serves aroundSeq on session-message-list (newest first, as
// history pages are) and on sync (oldest first): the page around a search
// hit. Combined with the other cursor (lastmsgId, afterSeq) it is refused
// rather than guessed.
func (g *Gateway) historyAround(ctx context.Context, c caller, sid string, seq int64, limit int, otherCursor, oldestFirst bool) (any, error) {
	if otherCursor {
		return nil, fmt.Errorf("%w: aroundSeq goes alone, without lastmsgId or afterSeq", chat.ErrInvalid)
	}
	msgs, err := g.chat.HistoryAround(ctx, c.AppID, c.UserID, sid, seq, limit)
	if err != nil {
		return nil, err
	}
	if !oldestFirst {
		slices.Reverse(msgs)
	}
	return msgs, nil
}
