package store

import (
	"context"
	"encoding/json"
	"time"
)

// Group roles, stored in members.role.
const (
	RoleMember = 0
	RoleAdmin  = 1
	RoleOwner  = 2
)

// TypeNotice is the message type of group events (member joined, renamed,
// muted…): the server stores them in the conversation like messages, so
// history and sync show them in order (docs/node-chat.md, Group events).
const TypeNotice = 7

// GroupInfo is a group conversation with its managed state.
type GroupInfo struct {
	Conversation
	Notice      string          // announcement; empty when none
	Extra       json.RawMessage // app-defined JSON object; empty when none
	MuteAll     bool            // only the owner and admins may send
	DismissedAt time.Time       // zero while the group lives
	OwnerID     string          // empty when the group has no owner
	MemberCount int
}

// GroupUpdate changes a group's info; nil fields are left as they are.
type GroupUpdate struct {
	Name      *string
	AvatarURI *string
	Notice    *string
	Extra     json.RawMessage // nil: unchanged; "{}" clears
	MuteAll   *bool
}

// GroupMember is one row of a group's member list.
type GroupMember struct {
	UserID     string
	Role       int
	JoinedAt   time.Time
	MutedUntil time.Time // zero when not muted
	Name       string    // from the users table; empty when the user has none
	AvatarURI  string
}

// MemberState is what decides whether a member may send or moderate.
type MemberState struct {
	Role        int
	MutedUntil  time.Time
	JoinedAt    time.Time
	MuteAll     bool      // the conversation's
	DismissedAt time.Time // the conversation's
}

// UserGroup is one group of a user's group list.
type UserGroup struct {
	GroupInfo
	Role     int
	JoinedAt time.Time
	SID      string
}

// Profile is a user's public profile.
type Profile struct {
	UserID    string
	Name      string
	AvatarURI string
	Extra     json.RawMessage // empty when none
	CreatedAt time.Time
}

// ProfileUpdate changes a user's profile; nil fields are left as they are.
type ProfileUpdate struct {
	Name      *string
	AvatarURI *string
	Extra     json.RawMessage
}

// GroupStore is the group management and profile part of Store.
type GroupStore interface {
	// GroupInfo returns the group groupID; ErrNotFound if absent.
	GroupInfo(ctx context.Context, appID, groupID string) (GroupInfo, error)
	// UpdateGroup applies u and returns the group as it now is; ErrNotFound
	// if absent.
	UpdateGroup(ctx context.Context, appID, groupID string, u GroupUpdate) (GroupInfo, error)
	// SetRole gives role (RoleMember or RoleAdmin) to the members userIDs,
	// never to or from the owner, and returns those whose role changed.
	// Users that are not members are ignored.
	SetRole(ctx context.Context, conversationID string, userIDs []string, role int) ([]string, error)
	// TransferOwner makes userID the owner and the previous owner (returned,
	// "" when there was none) a plain member, in one transaction.
	// ErrNotMember if userID is not a member.
	TransferOwner(ctx context.Context, conversationID, userID string) (previous string, err error)
	// GroupMembers returns up to limit members ordered by user id, after
	// afterUserID ("" from the start), with their profiles.
	GroupMembers(ctx context.Context, conversationID, afterUserID string, limit int) ([]GroupMember, error)
	// UserGroups lists the groups userID is a member of, by group id.
	UserGroups(ctx context.Context, appID, userID string) ([]UserGroup, error)
	// MemberState returns the member's role and mute with the conversation's
	// mute-all and dismissal; ErrNotMember if userID is not a member.
	MemberState(ctx context.Context, conversationID, userID string) (MemberState, error)
	// MuteMembers sets the members' muted-until time (zero unmutes) and
	// returns those that are members.
	MuteMembers(ctx context.Context, conversationID string, userIDs []string, until time.Time) ([]string, error)
	// AppendNotice stores a notice (a group event) at the next seq, without
	// the sender membership check of Send (the sender may be "" for the app
	// backend, or a member who just left). MembersVersion is set as by Send.
	AppendNotice(ctx context.Context, m NewMessage) (Message, error)
	// DismissGroup marks the group dismissed and deletes every membership,
	// returning the members it had; ErrNotFound if absent.
	DismissGroup(ctx context.Context, appID, groupID string, at time.Time) ([]Member, error)

	// Profiles returns the profiles of those userIDs that exist, in no
	// particular order.
	Profiles(ctx context.Context, appID string, userIDs []string) ([]Profile, error)
	// UpdateProfile changes an existing user's profile; ErrNotFound if absent.
	UpdateProfile(ctx context.Context, appID, userID string, u ProfileUpdate) (Profile, error)
	// DeleteUser voids the user's tokens, clears their profile, deletes every
	// membership (returning them), their session settings, their blocks and
	// the blocks of them, their last seen time and, when removeMessages,
	// their messages. ErrNotFound if absent. SaveLastSeen keeps no time for a
	// deleted user.
	DeleteUser(ctx context.Context, appID, userID string, removeMessages bool) ([]Member, error)
	// ShareConversation reports whether a and b are members of a common
	// conversation.
	ShareConversation(ctx context.Context, appID, a, b string) (bool, error)
}
