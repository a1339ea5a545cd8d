package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// Group management: roles (owner, admins, members), info, member lists,
// mutes, dismissal, and the group events stored in the conversation as
// notices (docs/node-chat.md, Group events).

// TypeNotice is the message type of a group event. Clients cannot send it.
const TypeNotice = store.TypeNotice

// Bounds of group and profile info.
const (
	MaxNoticeBytes = 4096 // a group's notice (announcement)
	MaxExtraBytes  = 4096 // app-defined extra JSON of a group or a user
	MaxMembersPage = 500  // largest page of /group/members
)

// ErrMuted refuses a send from a muted member or to a muted group.
var ErrMuted = fmt.Errorf("%w: muted", ErrForbidden)

// ErrDismissed refuses any change to, or send in, a dismissed group.
var ErrDismissed = fmt.Errorf("%w: group dismissed", ErrForbidden)

// Role names on the wire.
var roleNames = map[int]string{store.RoleMember: "member", store.RoleAdmin: "admin", store.RoleOwner: "owner"}

// RoleName is a role as clients see it.
func RoleName(r int) string { return roleNames[r] }

// Group operations act as an Actor (lifecycle.go): the app backend
// (UserID "") through the signed API, or a user over their socket.

func (a Actor) backend() bool { return a.UserID == "" }

// Group is a group's info as clients see it.
type Group struct {
	GroupID     string          `json:"groupId"`
	Name        string          `json:"name"`
	AvatarURI   string          `json:"avatarUri"`
	Notice      string          `json:"notice"`
	Extra       json.RawMessage `json:"extra"`
	OwnerID     string          `json:"ownerId"`
	MemberCount int             `json:"memberCount"`
	MuteAll     bool            `json:"muteAll"`
	Dismissed   bool            `json:"dismissed"`
	CreatedAt   int64           `json:"createdAt"` // ms since epoch
	// The caller's own membership, for socket callers and /user/groups.
	Role     string `json:"role,omitempty"`
	JoinedAt int64  `json:"joinedAt,omitempty"`
	SID      string `json:"sid,omitempty"`
}

// GroupMember is one member of a page of /group/members.
type GroupMember struct {
	UserID     string `json:"userId"`
	Name       string `json:"name"`
	AvatarURI  string `json:"avatarUri"`
	Role       string `json:"role"`
	JoinedAt   int64  `json:"joinedAt"`
	MutedUntil int64  `json:"mutedUntil,omitempty"`
}

// MembersPage is a page of members; Cursor continues it ("" at the end).
type MembersPage struct {
	Members []GroupMember `json:"members"`
	Cursor  string        `json:"cursor"`
}

func wireGroup(g store.GroupInfo) Group {
	extra := g.Extra
	if len(extra) == 0 {
		extra = json.RawMessage(`{}`)
	}
	return Group{
		GroupID: g.Key, Name: g.Name, AvatarURI: g.AvatarURI, Notice: g.Notice, Extra: extra,
		OwnerID: g.OwnerID, MemberCount: g.MemberCount, MuteAll: g.MuteAll, Dismissed: !g.DismissedAt.IsZero(),
		CreatedAt: g.CreatedAt.UnixMilli(),
	}
}

// GroupEvent tells the users who just left a group (removed, left,
// dismissed) what happened: they no longer get the group's messages, so the
// notice itself does not reach them. A Notifier that also implements
// GroupNotifier receives it.
type GroupEvent struct {
	AppID   string
	GroupID string
	Event   string
	UserIDs []string // who to tell
	Notice  Message
}

// GroupNotifier is implemented by notifiers that push group events to
// former members.
type GroupNotifier interface {
	GroupEvent(ctx context.Context, e GroupEvent)
}

// group loads a group; ErrUnknownGroup if absent.
func (s *Service) group(ctx context.Context, appID, groupID string) (store.GroupInfo, error) {
	if err := checkUserID("groupId", groupID); err != nil {
		return store.GroupInfo{}, err
	}
	g, err := s.store.GroupInfo(ctx, appID, groupID)
	if errors.Is(err, store.ErrNotFound) {
		return g, fmt.Errorf("%w: %s", ErrUnknownGroup, truncate(groupID))
	}
	if err != nil {
		return g, fmt.Errorf("load group: %w", err)
	}
	return g, nil
}

// liveGroup loads a group that is not dismissed.
func (s *Service) liveGroup(ctx context.Context, appID, groupID string) (store.GroupInfo, error) {
	g, err := s.group(ctx, appID, groupID)
	if err == nil && !g.DismissedAt.IsZero() {
		err = fmt.Errorf("%w: %s was dismissed", ErrDismissed, truncate(groupID))
	}
	return g, err
}

// role returns the actor's role in the group: RoleOwner for the app
// backend; ErrNotMember (or, for a dismissed group, ErrDismissed) for a
// user who is not a member.
func (s *Service) role(ctx context.Context, g store.GroupInfo, a Actor) (int, error) {
	if a.backend() {
		return store.RoleOwner, nil
	}
	st, err := s.store.MemberState(ctx, g.ID, a.UserID)
	if errors.Is(err, store.ErrNotMember) {
		return 0, fmt.Errorf("%w: %s is not in %s", ErrNotMember, truncate(a.UserID), truncate(g.Key))
	}
	if err != nil {
		return 0, fmt.Errorf("load member: %w", err)
	}
	return st.Role, nil
}

// canModerate reports whether userID may moderate the conversation (recall
// others' messages, manage members): the owner or an admin of a group.
// Nobody moderates a private conversation.
func (s *Service) canModerate(ctx context.Context, conv store.Conversation, userID string) (bool, error) {
	if conv.Type != store.Group {
		return false, nil
	}
	st, err := s.store.MemberState(ctx, conv.ID, userID)
	if errors.Is(err, store.ErrNotMember) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load member: %w", err)
	}
	return st.Role >= store.RoleAdmin && st.DismissedAt.IsZero(), nil
}

// checkGroupSend refuses a send to a dismissed group or from a muted
// member. A mute committed while a send is in flight may let that one send
// through.
func (s *Service) checkGroupSend(ctx context.Context, conv store.Conversation, senderID string) error {
	st, err := s.store.MemberState(ctx, conv.ID, senderID)
	if errors.Is(err, store.ErrNotMember) {
		if g, err := s.store.GroupInfo(ctx, conv.AppID, conv.Key); err == nil && !g.DismissedAt.IsZero() {
			return fmt.Errorf("%w: %s was dismissed", ErrDismissed, truncate(conv.Key))
		}
		return fmt.Errorf("%w: %s may not send to %s", ErrNotMember, truncate(senderID), truncate(conv.Key))
	}
	if err != nil {
		return fmt.Errorf("load member: %w", err)
	}
	now := s.now()
	if st.MutedUntil.After(now) {
		return fmt.Errorf("%w: you are muted in this group until %s", ErrMuted, st.MutedUntil.UTC().Format(time.RFC3339))
	}
	if st.MuteAll && st.Role < store.RoleAdmin {
		return fmt.Errorf("%w: this group is muted; only its owner and admins may send", ErrMuted)
	}
	return nil
}

// ---- creation and membership ----

// CreateGroupInput is /group/create.
type CreateGroupInput struct {
	AppID, GroupID, Name, AvatarURI string
	UserIDs                         []string
	OwnerID                         string // "" : the first of UserIDs
}

// CreateGroupWithOwner creates the group (or, when it exists, updates its
// name and avatar and adds the users, as node-chat did), gives it an owner
// when it has none, and records who joined an existing group and a rename.
func (s *Service) CreateGroupWithOwner(ctx context.Context, in CreateGroupInput) error {
	if in.OwnerID != "" {
		if err := checkUserID("ownerId", in.OwnerID); err != nil {
			return err
		}
	}
	before, err := s.store.GroupInfo(ctx, in.AppID, in.GroupID)
	existed := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("load group: %w", err)
	}
	if existed && !before.DismissedAt.IsZero() {
		return fmt.Errorf("%w: %s was dismissed; use another groupId", ErrDismissed, truncate(in.GroupID))
	}
	users := in.UserIDs
	if in.OwnerID != "" && !contains(users, in.OwnerID) {
		users = append(append([]string(nil), users...), in.OwnerID)
	}
	var had map[string]bool
	if existed {
		if had, err = s.memberSet(ctx, before.ID); err != nil {
			return err
		}
	}
	if err := s.CreateGroup(ctx, in.AppID, in.GroupID, in.Name, in.AvatarURI, users); err != nil {
		return err
	}
	g, err := s.group(ctx, in.AppID, in.GroupID)
	if err != nil {
		return err
	}
	if g.OwnerID == "" {
		owner := in.OwnerID
		if owner == "" {
			owner = users[0]
		}
		if _, err := s.store.TransferOwner(ctx, g.ID, owner); err != nil {
			return fmt.Errorf("set owner: %w", err)
		}
	}
	if !existed {
		return nil
	}
	a := Actor{AppID: in.AppID}
	if joined := newcomers(users, had); len(joined) > 0 {
		s.notice(ctx, g, a, "joined", joined, "%s joined the group", nil)
	}
	if before.Name != in.Name {
		s.notice(ctx, g, a, "renamed", nil, "The group was renamed to "+quote(in.Name), map[string]any{"name": in.Name})
	}
	return nil
}

// AddMembers adds users to a group: the app backend, or an owner or admin
// over the socket.
func (s *Service) AddMembers(ctx context.Context, a Actor, groupID string, userIDs []string) error {
	g, err := s.liveGroup(ctx, a.AppID, groupID)
	if err != nil {
		return err
	}
	if err := s.need(ctx, g, a, store.RoleAdmin, "add members"); err != nil {
		return err
	}
	had, err := s.memberSet(ctx, g.ID)
	if err != nil {
		return err
	}
	if err := s.JoinGroup(ctx, a.AppID, groupID, userIDs); err != nil {
		return err
	}
	if joined := newcomers(userIDs, had); len(joined) > 0 {
		s.notice(ctx, g, a, "joined", joined, "%s joined the group", nil)
	}
	return nil
}

// RemoveMembers removes users from a group: the app backend, the owner
// (anyone but themselves), or an admin (plain members only).
func (s *Service) RemoveMembers(ctx context.Context, a Actor, groupID string, userIDs []string) error {
	g, err := s.liveGroup(ctx, a.AppID, groupID)
	if err != nil {
		return err
	}
	if err := s.checkUserIDs(userIDs); err != nil {
		return err
	}
	if err := s.need(ctx, g, a, store.RoleAdmin, "remove members"); err != nil {
		return err
	}
	members, err := s.groupMemberRoles(ctx, g.ID)
	if err != nil {
		return err
	}
	var gone []string
	for _, u := range dedupe(userIDs) {
		r, ok := members[u]
		if !ok {
			continue
		}
		if !a.backend() {
			mine := members[a.UserID]
			if u == a.UserID || r >= mine {
				return fmt.Errorf("%w: %s may not remove %s (use group-leave to leave)", ErrForbidden, truncate(a.UserID), truncate(u))
			}
		}
		gone = append(gone, u)
	}
	if len(gone) == 0 {
		return nil
	}
	former, err := s.formerMembers(ctx, g.ID, gone)
	if err != nil {
		return err
	}
	if err := s.RemoveFromGroup(ctx, a.AppID, groupID, gone); err != nil {
		return err
	}
	if n, ok := s.noticeTo(ctx, g, a, "removed", gone, "%s was removed from the group", nil, former); ok {
		s.tellFormer(ctx, g, "removed", gone, n)
	}
	return nil
}

// Leave takes the caller out of a group. An owner must transfer the group
// first, unless they are its last member.
func (s *Service) Leave(ctx context.Context, a Actor, groupID string) error {
	if a.backend() {
		return fmt.Errorf("%w: missing userId", ErrInvalid)
	}
	g, err := s.liveGroup(ctx, a.AppID, groupID)
	if err != nil {
		return err
	}
	role, err := s.role(ctx, g, a)
	if err != nil {
		return err
	}
	if role == store.RoleOwner && g.MemberCount > 1 {
		return fmt.Errorf("%w: the owner must transfer the group before leaving", ErrForbidden)
	}
	former, err := s.formerMembers(ctx, g.ID, []string{a.UserID})
	if err != nil {
		return err
	}
	if err := s.RemoveFromGroup(ctx, a.AppID, groupID, []string{a.UserID}); err != nil {
		return err
	}
	if n, ok := s.noticeTo(ctx, g, a, "left", []string{a.UserID}, "%s left the group", nil, former); ok {
		s.tellFormer(ctx, g, "left", []string{a.UserID}, n)
	}
	return nil
}

// Dismiss ends a group: every member's session goes, later sends and
// changes are refused. The app backend or the owner may.
func (s *Service) Dismiss(ctx context.Context, a Actor, groupID string) error {
	g, err := s.liveGroup(ctx, a.AppID, groupID)
	if err != nil {
		return err
	}
	if err := s.need(ctx, g, a, store.RoleOwner, "dismiss the group"); err != nil {
		return err
	}
	ectx := s.groupEvents(ctx, a.AppID, groupID, groupEvent{EventGroupDismissed, byActor(a, map[string]any{})})
	members, err := s.store.DismissGroup(ectx, a.AppID, groupID, s.now())
	if err != nil {
		return fmt.Errorf("dismiss: %w", err)
	}
	if n, ok := s.noticeTo(ctx, g, a, "dismissed", nil, "The group was dismissed", nil, members); ok && len(members) > 0 {
		ids := make([]string, len(members))
		for i, m := range members {
			ids[i] = m.UserID
		}
		s.tellFormer(ctx, g, "dismissed", ids, n)
	}
	return nil
}

// need checks that the actor holds at least role in g.
func (s *Service) need(ctx context.Context, g store.GroupInfo, a Actor, role int, what string) error {
	have, err := s.role(ctx, g, a)
	if err != nil {
		return err
	}
	if have < role {
		return fmt.Errorf("%w: only the group's %s may %s", ErrForbidden, map[int]string{store.RoleAdmin: "owner and admins", store.RoleOwner: "owner"}[role], what)
	}
	return nil
}

// ---- roles ----

// Transfer makes userID the owner; the previous owner becomes a member.
func (s *Service) Transfer(ctx context.Context, a Actor, groupID, userID string) error {
	if err := checkUserID("userId", userID); err != nil {
		return err
	}
	g, err := s.liveGroup(ctx, a.AppID, groupID)
	if err != nil {
		return err
	}
	if err := s.need(ctx, g, a, store.RoleOwner, "transfer the group"); err != nil {
		return err
	}
	prev, err := s.store.TransferOwner(ctx, g.ID, userID)
	if errors.Is(err, store.ErrNotMember) {
		return fmt.Errorf("%w: %s is not in %s", ErrNotMember, truncate(userID), truncate(groupID))
	}
	if err != nil {
		return fmt.Errorf("transfer: %w", err)
	}
	if prev != userID {
		s.notice(ctx, g, a, "owner", []string{userID}, "%s is now the group's owner", map[string]any{"previousOwnerId": prev})
	}
	return nil
}

// SetAdmins adds and removes admins. Only the owner (or the app backend)
// may; the owner's own role does not change.
func (s *Service) SetAdmins(ctx context.Context, a Actor, groupID string, add, remove []string) error {
	if len(add) == 0 && len(remove) == 0 {
		return fmt.Errorf("%w: give add or remove, arrays of userIds", ErrInvalid)
	}
	for _, list := range [][]string{add, remove} {
		if len(list) > 0 {
			if err := s.checkUserIDs(list); err != nil {
				return err
			}
		}
	}
	g, err := s.liveGroup(ctx, a.AppID, groupID)
	if err != nil {
		return err
	}
	if err := s.need(ctx, g, a, store.RoleOwner, "change admins"); err != nil {
		return err
	}
	if len(add) > 0 {
		changed, err := s.store.SetRole(ctx, g.ID, dedupe(add), store.RoleAdmin)
		if err != nil {
			return fmt.Errorf("set admins: %w", err)
		}
		if len(changed) > 0 {
			s.notice(ctx, g, a, "admins", changed, "%s became an admin", map[string]any{"role": "admin"})
		}
	}
	if len(remove) > 0 {
		changed, err := s.store.SetRole(ctx, g.ID, dedupe(remove), store.RoleMember)
		if err != nil {
			return fmt.Errorf("set admins: %w", err)
		}
		if len(changed) > 0 {
			s.notice(ctx, g, a, "admins", changed, "%s is no longer an admin", map[string]any{"role": "member"})
		}
	}
	return nil
}

// ---- info ----

// GroupUpdateInput is /group/update; nil fields are left as they are.
type GroupUpdateInput struct {
	Name, AvatarURI, Notice *string
	Extra                   json.RawMessage
}

// UpdateGroup changes a group's info: the app backend, or an owner or
// admin over the socket.
func (s *Service) UpdateGroup(ctx context.Context, a Actor, groupID string, in GroupUpdateInput) (Group, error) {
	if in.Name == nil && in.AvatarURI == nil && in.Notice == nil && in.Extra == nil {
		return Group{}, fmt.Errorf("%w: give name, avatarUri, notice or extra", ErrInvalid)
	}
	if in.Name != nil {
		if err := checkText("name", *in.Name, 1, 256); err != nil {
			return Group{}, err
		}
	}
	if in.AvatarURI != nil {
		if err := checkText("avatarUri", *in.AvatarURI, 0, 2048); err != nil {
			return Group{}, err
		}
	}
	if in.Notice != nil {
		if err := checkText("notice", *in.Notice, 0, MaxNoticeBytes); err != nil {
			return Group{}, err
		}
	}
	if err := checkExtra(in.Extra); err != nil {
		return Group{}, err
	}
	g, err := s.liveGroup(ctx, a.AppID, groupID)
	if err != nil {
		return Group{}, err
	}
	if err := s.need(ctx, g, a, store.RoleAdmin, "update the group"); err != nil {
		return Group{}, err
	}
	ectx := s.groupEvents(ctx, a.AppID, groupID, groupEvent{EventGroupUpdated, groupUpdateData(a, in)})
	after, err := s.store.UpdateGroup(ectx, a.AppID, groupID, store.GroupUpdate{Name: in.Name, AvatarURI: in.AvatarURI, Notice: in.Notice, Extra: in.Extra})
	if err != nil {
		return Group{}, fmt.Errorf("update group: %w", err)
	}
	if after.Name != g.Name {
		s.notice(ctx, after, a, "renamed", nil, "The group was renamed to "+quote(after.Name), map[string]any{"name": after.Name})
	}
	if after.AvatarURI != g.AvatarURI {
		s.notice(ctx, after, a, "avatar", nil, "The group's avatar changed", map[string]any{"avatarUri": after.AvatarURI})
	}
	if after.Notice != g.Notice {
		text := "The group notice was cleared"
		if after.Notice != "" {
			text = "Group notice: " + after.Notice
		}
		s.notice(ctx, after, a, "notice", nil, text, map[string]any{"notice": after.Notice})
	}
	return wireGroup(after), nil
}

// GroupInfo returns a group's info to the app backend or to a member.
func (s *Service) GroupInfo(ctx context.Context, a Actor, groupID string) (Group, error) {
	g, err := s.group(ctx, a.AppID, groupID)
	if err != nil {
		return Group{}, err
	}
	out := wireGroup(g)
	if !a.backend() {
		st, err := s.store.MemberState(ctx, g.ID, a.UserID)
		if errors.Is(err, store.ErrNotMember) {
			return Group{}, fmt.Errorf("%w: %s is not in %s", ErrNotMember, truncate(a.UserID), truncate(groupID))
		}
		if err != nil {
			return Group{}, fmt.Errorf("load member: %w", err)
		}
		out.Role, out.JoinedAt = RoleName(st.Role), st.JoinedAt.UnixMilli()
	}
	return out, nil
}

// GroupMembers returns a page of a group's members, by user id, to the
// app backend or to a member. cursor is the previous page's Cursor.
func (s *Service) GroupMembers(ctx context.Context, a Actor, groupID string, limit int, cursor string) (MembersPage, error) {
	switch {
	case limit == 0:
		limit = 100
	case limit < 0:
		return MembersPage{}, fmt.Errorf("%w: limit must be positive", ErrInvalid)
	case limit > MaxMembersPage:
		limit = MaxMembersPage
	}
	if len(cursor) > 128 {
		return MembersPage{}, fmt.Errorf("%w: bad cursor", ErrInvalid)
	}
	g, err := s.group(ctx, a.AppID, groupID)
	if err != nil {
		return MembersPage{}, err
	}
	if _, err := s.role(ctx, g, a); err != nil {
		return MembersPage{}, err
	}
	rows, err := s.store.GroupMembers(ctx, g.ID, cursor, limit)
	if err != nil {
		return MembersPage{}, fmt.Errorf("members: %w", err)
	}
	page := MembersPage{Members: make([]GroupMember, 0, len(rows))}
	now := s.now()
	for _, m := range rows {
		gm := GroupMember{UserID: m.UserID, Name: m.Name, AvatarURI: m.AvatarURI, Role: RoleName(m.Role), JoinedAt: m.JoinedAt.UnixMilli()}
		if m.MutedUntil.After(now) {
			gm.MutedUntil = m.MutedUntil.UnixMilli()
		}
		page.Members = append(page.Members, gm)
	}
	if len(rows) == limit {
		page.Cursor = rows[len(rows)-1].UserID
	}
	return page, nil
}

// UserGroups lists the groups a user is in, with their role.
func (s *Service) UserGroups(ctx context.Context, appID, userID string) ([]Group, error) {
	if err := checkUserID("userId", userID); err != nil {
		return nil, err
	}
	rows, err := s.store.UserGroups(ctx, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("user groups: %w", err)
	}
	out := make([]Group, 0, len(rows))
	for _, r := range rows {
		g := wireGroup(r.GroupInfo)
		g.Role, g.JoinedAt, g.SID = RoleName(r.Role), r.JoinedAt.UnixMilli(), r.SID
		out = append(out, g)
	}
	return out, nil
}

// ---- mutes ----

// Mute mutes members until a time (the zero time unmutes). The app
// backend may mute anyone; over the socket an owner or admin may mute
// members of a lower role.
func (s *Service) Mute(ctx context.Context, a Actor, groupID string, userIDs []string, until time.Time) error {
	if err := s.checkUserIDs(userIDs); err != nil {
		return err
	}
	if !until.IsZero() && !until.After(s.now()) {
		return fmt.Errorf("%w: until must be in the future (ms since epoch)", ErrInvalid)
	}
	g, err := s.liveGroup(ctx, a.AppID, groupID)
	if err != nil {
		return err
	}
	if err := s.need(ctx, g, a, store.RoleAdmin, "mute members"); err != nil {
		return err
	}
	if !a.backend() {
		roles, err := s.groupMemberRoles(ctx, g.ID)
		if err != nil {
			return err
		}
		for _, u := range userIDs {
			if r, ok := roles[u]; ok && r >= roles[a.UserID] {
				return fmt.Errorf("%w: %s may not mute %s", ErrForbidden, truncate(a.UserID), truncate(u))
			}
		}
	}
	changed, err := s.store.MuteMembers(ctx, g.ID, dedupe(userIDs), until)
	if err != nil {
		return fmt.Errorf("mute: %w", err)
	}
	if len(changed) == 0 {
		return nil
	}
	if until.IsZero() {
		s.notice(ctx, g, a, "unmuted", changed, "%s may speak again", nil)
	} else {
		s.notice(ctx, g, a, "muted", changed, "%s was muted until "+until.UTC().Format("2006-01-02 15:04 UTC"), map[string]any{"until": until.UnixMilli()})
	}
	return nil
}

// MuteAll mutes (or unmutes) everyone but the owner and admins.
func (s *Service) MuteAll(ctx context.Context, a Actor, groupID string, on bool) error {
	g, err := s.liveGroup(ctx, a.AppID, groupID)
	if err != nil {
		return err
	}
	if err := s.need(ctx, g, a, store.RoleAdmin, "mute the group"); err != nil {
		return err
	}
	if g.MuteAll == on {
		return nil
	}
	ectx := s.groupEvents(ctx, a.AppID, groupID, groupEvent{EventGroupUpdated, byActor(a, map[string]any{"muteAll": on})})
	if _, err := s.store.UpdateGroup(ectx, a.AppID, groupID, store.GroupUpdate{MuteAll: &on}); err != nil {
		return fmt.Errorf("mute all: %w", err)
	}
	text := "Only the owner and admins may speak now"
	if !on {
		text = "Everyone may speak again"
	}
	s.notice(ctx, g, a, "muteAll", nil, text, map[string]any{"muteAll": on})
	return nil
}

// ---- notices ----

// notice stores a group event as a TypeNotice message, content
// {"content": text, "event": kind, "groupId", "operatorId", "userIds", …},
// and pushes it to the members. A %s in text stands for the users' names.
// It is called once the change it reports has committed; a failure to store
// the notice does not make the change fail.
func (s *Service) notice(ctx context.Context, g store.GroupInfo, a Actor, kind string, userIDs []string, text string, extra map[string]any) (Message, bool) {
	return s.noticeTo(ctx, g, a, kind, userIDs, text, extra, nil)
}

// noticeTo is notice, pushed also to former members (just removed, left or
// dismissed) on their old sessions, so their devices learn what happened.
func (s *Service) noticeTo(ctx context.Context, g store.GroupInfo, a Actor, kind string, userIDs []string, text string, extra map[string]any, former []store.Member) (Message, bool) {
	if userIDs != nil && strings.Contains(text, "%s") {
		text = strings.Replace(text, "%s", s.names(ctx, a.AppID, userIDs), 1)
	}
	body := map[string]any{"content": text, "event": kind, "groupId": g.Key, "operatorId": a.UserID}
	if userIDs != nil {
		body["userIds"] = userIDs
	}
	for k, v := range extra {
		body[k] = v
	}
	content, err := json.Marshal(body)
	if err != nil {
		return Message{}, false
	}
	msg, err := s.store.AppendNotice(ctx, store.NewMessage{ConversationID: g.ID, SenderID: a.UserID, Type: TypeNotice, Content: content, At: s.now()})
	if err != nil {
		return Message{}, false
	}
	var sender UserRef
	if !a.backend() {
		if u, err := s.users.get(ctx, s.store, s.now(), a.AppID, a.UserID); err == nil {
			sender = UserRef{Name: u.Name, AvatarURI: u.AvatarURI}
		}
	}
	msg.SenderName, msg.SenderAvatar = sender.Name, sender.AvatarURI
	// After a rename the session title is the new name.
	conv := g.Conversation
	if cur, err := s.store.Conversation(ctx, g.ID); err == nil {
		conv = cur
	}
	wire := s.wireMessage(conv, msg, s.now())
	members, err := s.groupMembers(ctx, g.ID, msg.MembersVersion)
	if err != nil || s.notifier == nil {
		return wire, err == nil
	}
	recipients := make([]Recipient, 0, len(members)+len(former))
	for _, list := range [][]store.Member{members, former} {
		for _, m := range list {
			recipients = append(recipients, Recipient{UserID: m.UserID, Session: SessionRef{SID: m.SID, Title: conv.Name, Avatar: conv.AvatarURI}})
		}
	}
	// No origin: the acting socket has no ack carrying the notice, so it
	// gets the push too (as its own, with the own-messages capability).
	s.notifier.MessageSent(ctx, Delivery{AppID: a.AppID, Message: wire, Recipients: recipients})
	return wire, true
}

// tellFormer pushes a group event to users who are no longer members.
func (s *Service) tellFormer(ctx context.Context, g store.GroupInfo, kind string, userIDs []string, n Message) {
	if gn, ok := s.notifier.(GroupNotifier); ok {
		gn.GroupEvent(ctx, GroupEvent{AppID: g.AppID, GroupID: g.Key, Event: kind, UserIDs: userIDs, Notice: n})
	}
}

// names renders users for a notice: their names (user ids when they have
// none), the first few of a long list.
func (s *Service) names(ctx context.Context, appID string, userIDs []string) string {
	const show = 5
	ids := userIDs
	if len(ids) > show {
		ids = ids[:show]
	}
	byID := map[string]string{}
	if ps, err := s.store.Profiles(ctx, appID, ids); err == nil {
		for _, p := range ps {
			byID[p.UserID] = p.Name
		}
	}
	parts := make([]string, 0, len(ids)+1)
	for _, id := range ids {
		if n := byID[id]; n != "" {
			parts = append(parts, n)
		} else {
			parts = append(parts, id)
		}
	}
	if more := len(userIDs) - len(ids); more > 0 {
		parts = append(parts, fmt.Sprintf("%d others", more))
	}
	return strings.Join(parts, ", ")
}

func quote(s string) string { return "\u201c" + s + "\u201d" }

// formerMembers returns the memberships of userIDs, read before they end.
func (s *Service) formerMembers(ctx context.Context, convID string, userIDs []string) ([]store.Member, error) {
	out := make([]store.Member, 0, len(userIDs))
	for _, u := range userIDs {
		m, err := s.store.Member(ctx, convID, u)
		if errors.Is(err, store.ErrNotMember) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load member: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}

// memberSet returns the group's current members.
func (s *Service) memberSet(ctx context.Context, convID string) (map[string]bool, error) {
	ms, _, err := s.store.Members(ctx, convID)
	if err != nil {
		return nil, fmt.Errorf("load members: %w", err)
	}
	out := make(map[string]bool, len(ms))
	for _, m := range ms {
		out[m.UserID] = true
	}
	return out, nil
}

// groupMemberRoles returns every member's role.
func (s *Service) groupMemberRoles(ctx context.Context, convID string) (map[string]int, error) {
	out := map[string]int{}
	after := ""
	for {
		page, err := s.store.GroupMembers(ctx, convID, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("load members: %w", err)
		}
		for _, m := range page {
			out[m.UserID] = m.Role
		}
		if len(page) < 1000 {
			return out, nil
		}
		after = page[len(page)-1].UserID
	}
}

func newcomers(users []string, had map[string]bool) []string {
	var out []string
	for _, u := range dedupe(users) {
		if !had[u] {
			out = append(out, u)
		}
	}
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// checkExtra accepts a JSON object of at most MaxExtraBytes (nil: absent).
func checkExtra(extra json.RawMessage) error {
	if extra == nil {
		return nil
	}
	if len(extra) > MaxExtraBytes {
		return fmt.Errorf("%w: extra is larger than %d bytes", ErrTooLarge, MaxExtraBytes)
	}
	if !isJSONObject(extra) {
		return fmt.Errorf("%w: extra must be a JSON object", ErrInvalid)
	}
	return nil
}
