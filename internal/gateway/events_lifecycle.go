package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
)

// Message lifecycle events (docs/socket-protocol.md, "Message updates").
const (
	evRecall       = "recall-message"
	evEdit         = "edit-message"
	evDelete       = "delete-message"
	evClearSession = "clear-session"
	evReact        = "react"
	evUnreact      = "unreact"
	evSyncChanges  = "sync-changes"
	evUpdated      = "message-updated" // push: a message changed, or the user hid some

	topicUpdates = "updates"
)

func init() {
	for name, h := range map[string]eventHandler{
		evRecall:       (*Gateway).recallMessage,
		evEdit:         (*Gateway).editMessage,
		evDelete:       (*Gateway).deleteMessage,
		evClearSession: (*Gateway).clearSession,
		evReact:        (*Gateway).react,
		evUnreact:      (*Gateway).unreact,
		evSyncChanges:  (*Gateway).syncChanges,
	} {
		events[name] = h
	}
	capNames["message-updated"] = capMessageUpdated
}

// msgArg is the payload of the events that name one message of a session.
type msgArg struct {
	SID     string          `json:"sid"`
	MsgID   string          `json:"msgId"`
	Content json.RawMessage `json:"content"`
	Emoji   string          `json:"emoji"`
}

func (c caller) actor() chat.Actor {
	return chat.Actor{AppID: c.AppID, UserID: c.UserID, Origin: c.origin}
}

func (g *Gateway) recallMessage(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	var in msgArg
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	return g.chat.Recall(ctx, c.actor(), chat.ConvRef{SID: in.SID}, in.MsgID)
}

func (g *Gateway) editMessage(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	var in msgArg
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	content, err := contentArg(in.Content)
	if err != nil {
		return nil, err
	}
	return g.chat.Edit(ctx, c.actor(), chat.ConvRef{SID: in.SID}, in.MsgID, content)
}

func (g *Gateway) deleteMessage(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	var in msgArg
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	return g.chat.DeleteForMe(ctx, c.actor(), chat.ConvRef{SID: in.SID}, in.MsgID)
}

func (g *Gateway) clearSession(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	sid, err := sidArg(arg)
	if err != nil {
		return nil, err
	}
	if sid == "" {
		return nil, fmt.Errorf("%w: missing sid", chat.ErrInvalid)
	}
	return g.chat.ClearSession(ctx, c.actor(), chat.ConvRef{SID: sid})
}

func (g *Gateway) react(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	return g.reaction(ctx, c, arg, true)
}

func (g *Gateway) unreact(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	return g.reaction(ctx, c, arg, false)
}

func (g *Gateway) reaction(ctx context.Context, c caller, arg json.RawMessage, on bool) (any, error) {
	var in msgArg
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	return g.chat.React(ctx, c.actor(), chat.ConvRef{SID: in.SID}, in.MsgID, in.Emoji, on)
}

func (g *Gateway) syncChanges(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	var in struct {
		SID          string  `json:"sid"`
		AfterVersion flexInt `json:"afterVersion"`
		Limit        flexInt `json:"limit"`
	}
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	return g.chat.SyncChanges(ctx, c.AppID, c.UserID, in.SID, int64(in.AfterVersion), in.Limit.int())
}

// MessageUpdated publishes a committed message change to every node.
func (n *Notifier) MessageUpdated(ctx context.Context, u chat.Update) {
	n.publish(ctx, topicUpdates, u)
}

// updatePush is the payload of message-updated for a changed message: the
// receiver's sid first, the message's new state, and the reaction change
// that made it, if any.
type updatePush struct {
	SID string `json:"sid"`
	*chat.Message
	Reaction *chat.ReactionOp `json:"reaction,omitempty"`
}

// hiddenPush is the payload of message-updated, on the user's own devices,
// for a range of messages they hid.
type hiddenPush struct {
	SID     string `json:"sid"`
	Deleted bool   `json:"deleted"`
	chat.HiddenUpdate
}

// deliverUpdate pushes an update to the recipients' sockets on this node
// that declared message-updated, except the socket that made the change
// (it has the ack). The payload is encoded once; each sid is spliced in.
func (g *Gateway) deliverUpdate(payload any) {
	u, err := decodePayload[chat.Update](payload)
	if err != nil {
		g.log.Warn("bad update payload", "err", err)
		return
	}
	var p any = updatePush{Message: u.Message, Reaction: u.Reaction}
	if u.Hidden != nil {
		p = hiddenPush{Deleted: true, HiddenUpdate: *u.Hidden}
	} else if u.Message == nil {
		return
	}
	b, err := json.Marshal(p)
	if err != nil {
		g.log.Error("encode update", "err", err)
		return
	}
	const at = len(`{"sid":"`)
	t, err := socketio.PrepareTemplate("/", evUpdated, b, at)
	if err != nil {
		g.log.Error("encode update", "err", err)
		return
	}
	var socks []*socketio.Socket
	for _, r := range u.Recipients {
		socks = g.reg.sockets(socks[:0], userKey(u.AppID, r.UserID))
		var pp *socketio.Prepared
		for _, s := range socks {
			id, _ := s.Data().(identity)
			if s.ID() == u.Origin || !id.Caps.has(capMessageUpdated) {
				continue
			}
			if pp == nil {
				pp = t.With(r.Session.SID) // sids are hex: nothing to escape
			}
			s.EmitRaw(pp)
		}
	}
}
