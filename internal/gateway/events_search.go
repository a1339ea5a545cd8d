package gateway

import (
	"context"
	"encoding/json"

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
