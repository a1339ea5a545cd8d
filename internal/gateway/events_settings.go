package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
)

// Conversation settings and blocking (docs/socket-protocol.md, Conversation
// settings): a user's pin, mute, hide and draft of their sessions, synced
// to their other devices, and the users they block.
const (
	evSessionUpdate  = "session-update"       // client: {sid, pinned?, muted?, draft?}
	evSessionHide    = "session-hide"         // client: {sid}
	evUnreadTotal    = "session-unread-total" // client: the list's unread count, muted sessions excepted
	evBlockUser      = "block-user"           // client: {userIds} (or {userId})
	evUnblockUser    = "unblock-user"         // client: {userIds} (or {userId})
	evBlockedList    = "blocked-list"         // client: the users I block
	evSessionUpdated = "session-updated"      // push: a session's settings changed on another device

	topicSettings = "settings"

	capSettings capSet = 1 << 8

	// A user's settings changes (session-update, session-hide, block-user,
	// unblock-user), on top of the event rate: each is a store write and
	// a push to every device. Drafts saved as the user types fit in it.
	settingsRate  = 5
	settingsBurst = 20
)

func init() {
	events[evSessionUpdate] = settingsMetered((*Gateway).sessionUpdate)
	events[evSessionHide] = settingsMetered((*Gateway).sessionHide)
	events[evUnreadTotal] = (*Gateway).unreadTotal
	events[evBlockUser] = settingsMetered((*Gateway).blockUser)
	events[evUnblockUser] = settingsMetered((*Gateway).unblockUser)
	events[evBlockedList] = (*Gateway).blockedList
	capNames["session-settings"] = capSettings
}

// settingsMetered applies the per-user limit of settings changes.
func settingsMetered(h eventHandler) eventHandler {
	return func(g *Gateway, ctx context.Context, c caller, arg json.RawMessage) (any, error) {
		if !g.settingsLim.Allow(userKey(c.AppID, c.UserID)) {
			return nil, fmt.Errorf("%w: too many settings changes from this user (at most %d per second, bursts of %d); slow down",
				chat.ErrRateLimited, settingsRate, settingsBurst)
		}
		return h(g, ctx, c, arg)
	}
}

// settingsNote is what the settings topic carries: a session's new settings
// (Session set) or a user's changed blocks.
type settingsNote struct {
	Session *chat.SessionUpdate `json:",omitempty"`
	AppID   string              `json:",omitempty"` // blocks
	UserID  string              `json:",omitempty"`
}

var _ chat.SettingsNotifier = (*Notifier)(nil)

// SessionUpdated publishes a session's new settings to every node.
func (n *Notifier) SessionUpdated(ctx context.Context, u chat.SessionUpdate) {
	n.publish(ctx, topicSettings, settingsNote{Session: &u})
}

// BlocksChanged tells every node to forget the user's blocks.
func (n *Notifier) BlocksChanged(ctx context.Context, appID, userID string) {
	n.publish(ctx, topicSettings, settingsNote{AppID: appID, UserID: userID})
}

// deliverSettings forgets what the change made stale and pushes
// session-updated to the user's sockets on this node that declared
// session-settings, the one that made the change excepted.
func (g *Gateway) deliverSettings(payload any) {
	n, err := decodePayload[settingsNote](payload)
	if err != nil {
		g.log.Warn("bad settings payload", "err", err)
		return
	}
	if n.Session == nil {
		g.chat.ForgetBlocks(n.AppID, n.UserID)
		return
	}
	u := n.Session
	g.chat.ForgetMutes(u.ConversationID)
	var p *socketio.Prepared
	for _, s := range g.reg.sockets(nil, userKey(u.AppID, u.UserID)) {
		if id, _ := s.Data().(identity); !id.Caps.has(capSettings) || s.ID() == u.Origin {
			continue
		}
		if p == nil {
			if p, err = socketio.Prepare("/", evSessionUpdated, u.Settings); err != nil {
				g.log.Error("encode push", "event", evSessionUpdated, "err", err)
				return
			}
		}
		s.EmitRaw(p)
	}
}

func (g *Gateway) sessionUpdate(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	var in struct {
		SID    string  `json:"sid"`
		Pinned *bool   `json:"pinned"`
		Muted  *bool   `json:"muted"`
		Draft  *string `json:"draft"`
	}
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	return g.chat.UpdateSession(ctx, c.AppID, c.UserID, in.SID, chat.SessionPatch{Pinned: in.Pinned, Muted: in.Muted, Draft: in.Draft}, c.origin)
}

func (g *Gateway) sessionHide(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	sid, err := sidArg(arg)
	if err != nil {
		return nil, err
	}
	return g.chat.HideSession(ctx, c.AppID, c.UserID, sid, c.origin)
}

func (g *Gateway) unreadTotal(ctx context.Context, c caller, _ json.RawMessage) (any, error) {
	return g.chat.UnreadTotal(ctx, c.AppID, c.UserID)
}

// blockArg reads {userIds: [...]} or {userId}.
func blockArg(arg json.RawMessage) ([]string, error) {
	var in struct {
		UserID  flexString   `json:"userId"`
		UserIDs []flexString `json:"userIds"`
	}
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(in.UserIDs)+1)
	if in.UserID != "" {
		ids = append(ids, string(in.UserID))
	}
	for _, u := range in.UserIDs {
		ids = append(ids, string(u))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: give userIds", chat.ErrInvalid)
	}
	return ids, nil
}

// blockedAck answers block-user, unblock-user and blocked-list.
type blockedAck struct {
	Blocked []string `json:"blocked"`
}

func (g *Gateway) blockUser(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	return g.changeBlocks(ctx, c, arg, g.chat.Block)
}

func (g *Gateway) unblockUser(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	return g.changeBlocks(ctx, c, arg, g.chat.Unblock)
}

func (g *Gateway) changeBlocks(ctx context.Context, c caller, arg json.RawMessage, do func(context.Context, string, string, []string) error) (any, error) {
	ids, err := blockArg(arg)
	if err != nil {
		return nil, err
	}
	if err := do(ctx, c.AppID, c.UserID, ids); err != nil {
		return nil, err
	}
	return g.blockedList(ctx, c, nil)
}

func (g *Gateway) blockedList(ctx context.Context, c caller, _ json.RawMessage) (any, error) {
	list, err := g.chat.Blocked(ctx, c.AppID, c.UserID)
	if err != nil {
		return nil, err
	}
	return blockedAck{Blocked: list}, nil
}
