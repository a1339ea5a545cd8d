package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/ratelimit"
	"github.com/chatd/chatd/internal/socketio"
)

// Group and profile socket events (docs/socket-protocol.md, Groups). Every
// one acts as the caller. Members read their groups and may leave them;
// owners and admins manage them only in apps that allow it
// (GroupOptions.Manage), since node-chat apps manage groups from their
// backend.

const (
	evGroupInfo    = "group-info"
	evGroupMembers = "group-members"
	evMyGroups     = "my-groups"
	evGroupLeave   = "group-leave"
	evGroupAdd     = "group-add"
	evGroupRemove  = "group-remove"
	evGroupUpdate  = "group-update"
	evUserInfo     = "user-info"
	evGroupEvent   = "group-event" // push: a group event, to former members
	topicGroups    = "group-events"
)

// GroupOptions configure the group events.
type GroupOptions struct {
	// Manage reports whether an app lets group owners and admins add and
	// remove members and update the group over the socket; nil: none does.
	Manage func(appID string) bool
	// Rate and Burst limit the group and profile events of one user (per
	// second); a rate of 0 disables the limit.
	Rate  float64
	Burst int
}

// ManageApps returns a GroupOptions.Manage for a comma-separated list of
// app ids, "*" meaning every app.
func ManageApps(list string) func(string) bool {
	apps := map[string]bool{}
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			apps[a] = true
		}
	}
	if len(apps) == 0 {
		return nil
	}
	return func(appID string) bool { return apps["*"] || apps[appID] }
}

type groupState struct {
	opts    GroupOptions
	limiter *ratelimit.Limiter
}

func newGroupState(o GroupOptions) groupState {
	return groupState{opts: o, limiter: ratelimit.New(o.Rate, o.Burst)}
}

func init() {
	for name, h := range map[string]eventHandler{
		evGroupInfo:    (*Gateway).groupInfo,
		evGroupMembers: (*Gateway).groupMembers,
		evMyGroups:     (*Gateway).myGroups,
		evGroupLeave:   (*Gateway).groupLeave,
		evGroupAdd:     (*Gateway).groupAdd,
		evGroupRemove:  (*Gateway).groupRemove,
		evGroupUpdate:  (*Gateway).groupUpdate,
		evUserInfo:     (*Gateway).userInfo,
	} {
		events[name] = metered(h)
	}
}

// metered applies the per-user limit of group events.
func metered(h eventHandler) eventHandler {
	return func(g *Gateway, ctx context.Context, c caller, arg json.RawMessage) (any, error) {
		if !g.groups.limiter.Allow(c.AppID + "\x00" + c.UserID) {
			return nil, fmt.Errorf("%w: too many group requests; slow down", chat.ErrRateLimited)
		}
		return h(g, ctx, c, arg)
	}
}

// groupArg is the payload of the group events.
type groupArg struct {
	GroupID   flexString      `json:"groupId"`
	UserIDs   []flexString    `json:"userIds"`
	Limit     flexInt         `json:"limit"`
	Cursor    string          `json:"cursor"`
	Name      *string         `json:"name"`
	AvatarURI *string         `json:"avatarUri"`
	Notice    *string         `json:"notice"`
	Extra     json.RawMessage `json:"extra"`
}

func (a groupArg) userIDs() []string {
	out := make([]string, len(a.UserIDs))
	for i, u := range a.UserIDs {
		out[i] = string(u)
	}
	return out
}

func decodeGroupArg(arg json.RawMessage) (groupArg, error) {
	var in groupArg
	if err := decodeArg(arg, &in); err != nil {
		return in, err
	}
	if in.GroupID == "" {
		return in, fmt.Errorf("%w: missing groupId", chat.ErrInvalid)
	}
	return in, nil
}

func (g *Gateway) groupInfo(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	in, err := decodeGroupArg(arg)
	if err != nil {
		return nil, err
	}
	return g.chat.GroupInfo(ctx, c.actor(), string(in.GroupID))
}

func (g *Gateway) groupMembers(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	in, err := decodeGroupArg(arg)
	if err != nil {
		return nil, err
	}
	return g.chat.GroupMembers(ctx, c.actor(), string(in.GroupID), in.Limit.int(), in.Cursor)
}

func (g *Gateway) myGroups(ctx context.Context, c caller, _ json.RawMessage) (any, error) {
	return g.chat.UserGroups(ctx, c.AppID, c.UserID)
}

func (g *Gateway) groupLeave(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	in, err := decodeGroupArg(arg)
	if err != nil {
		return nil, err
	}
	if err := g.chat.Leave(ctx, c.actor(), string(in.GroupID)); err != nil {
		return nil, err
	}
	return []any{}, nil
}

// manage refuses management events in apps that do not allow them.
func (g *Gateway) manage(c caller) error {
	if m := g.groups.opts.Manage; m == nil || !m(c.AppID) {
		return fmt.Errorf("%w: this app manages groups from its server; ask it to enable CHATD_GROUP_SOCKET_MANAGE", chat.ErrForbidden)
	}
	return nil
}

func (g *Gateway) groupAdd(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	return g.changeMembers(ctx, c, arg, g.chat.AddMembers)
}

func (g *Gateway) groupRemove(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	return g.changeMembers(ctx, c, arg, g.chat.RemoveMembers)
}

// changeMembers serves group-add and group-remove.
func (g *Gateway) changeMembers(ctx context.Context, c caller, arg json.RawMessage,
	do func(context.Context, chat.Actor, string, []string) error) (any, error) {
	if err := g.manage(c); err != nil {
		return nil, err
	}
	in, err := decodeGroupArg(arg)
	if err != nil {
		return nil, err
	}
	if err := do(ctx, c.actor(), string(in.GroupID), in.userIDs()); err != nil {
		return nil, err
	}
	return []any{}, nil
}

func (g *Gateway) groupUpdate(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	if err := g.manage(c); err != nil {
		return nil, err
	}
	in, err := decodeGroupArg(arg)
	if err != nil {
		return nil, err
	}
	extra := in.Extra
	if string(extra) == "null" {
		extra = nil
	}
	return g.chat.UpdateGroup(ctx, c.actor(), string(in.GroupID), chat.GroupUpdateInput{Name: in.Name, AvatarURI: in.AvatarURI, Notice: in.Notice, Extra: extra})
}

func (g *Gateway) userInfo(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	var in struct {
		UserIDs []flexString `json:"userIds"`
	}
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	ids := make([]string, len(in.UserIDs))
	for i, u := range in.UserIDs {
		ids[i] = string(u)
	}
	return g.chat.UserInfo(ctx, c.actor(), ids)
}

// groupEventPush is the payload of a group-event push.
type groupEventPush struct {
	GroupID string       `json:"groupId"`
	Event   string       `json:"event"`
	UserIDs []string     `json:"userIds"`
	Message chat.Message `json:"message"`
}

// GroupEvent publishes a group event for former members to every node.
func (n *Notifier) GroupEvent(ctx context.Context, e chat.GroupEvent) {
	n.publish(ctx, topicGroups, e)
}

// deliverGroupEvent pushes group-event to the sockets on this node of the
// users the event is for that declared the group-events capability.
func (g *Gateway) deliverGroupEvent(payload any) {
	e, err := decodePayload[chat.GroupEvent](payload)
	if err != nil {
		g.log.Warn("bad group event payload", "err", err)
		return
	}
	p, err := socketio.Prepare("/", evGroupEvent, groupEventPush{GroupID: e.GroupID, Event: e.Event, UserIDs: e.UserIDs, Message: e.Notice})
	if err != nil {
		g.log.Error("encode group event", "err", err)
		return
	}
	for _, u := range e.UserIDs {
		for _, s := range g.reg.sockets(nil, userKey(e.AppID, u)) {
			if id, _ := s.Data().(identity); id.Caps.has(capGroupEvents) {
				s.EmitRaw(p)
			}
		}
	}
}

var _ chat.GroupNotifier = (*Notifier)(nil)
