package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

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

// hasAroundSeq reports whether a session-message-list or sync payload asks
// for the page around a seq (aroundSeq set and not 0).
func hasAroundSeq(arg json.RawMessage) bool {
	var in struct {
		AroundSeq json.RawMessage `json:"aroundSeq"`
	}
	if json.Unmarshal(arg, &in) != nil {
		return false
	}
	a := strings.Trim(string(in.AroundSeq), `" `)
	return a != "" && a != "null" && a != "0"
}

// historyAround serves aroundSeq on session-message-list (newest first, as
// history pages are) and on sync (oldest first): the page around a search
// hit. Combined with the other cursor (lastmsgId, afterSeq) it is refused
// rather than guessed.
func (g *Gateway) historyAround(ctx context.Context, c caller, arg json.RawMessage, oldestFirst bool) (any, error) {
	var in struct {
		SID       string  `json:"sid"`
		AroundSeq flexInt `json:"aroundSeq"`
		Limit     flexInt `json:"limit"`
		LastMsgID string  `json:"lastmsgId"`
		AfterSeq  flexInt `json:"afterSeq"`
	}
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	if in.LastMsgID != "" || in.AfterSeq != 0 {
		return nil, fmt.Errorf("%w: aroundSeq goes alone, without lastmsgId or afterSeq", chat.ErrInvalid)
	}
	msgs, err := g.chat.HistoryAround(ctx, c.AppID, c.UserID, in.SID, int64(in.AroundSeq), in.Limit.int())
	if err != nil {
		return nil, err
	}
	if !oldestFirst {
		slices.Reverse(msgs)
	}
	return msgs, nil
}
