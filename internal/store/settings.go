package store

import (
	"context"
	"time"
)

// SessionSettings are one user's own settings of one of their sessions
// (docs/socket-protocol.md, Conversation settings). The zero value is a
// session with no setting.
type SessionSettings struct {
	ConversationID string
	PinnedAt       time.Time // zero: not pinned; pinned sessions list most recent pin first
	Muted          bool
	// Hidden: the user hid the session when the conversation's last seq
	// was HiddenSeq; it stays out of the list until a message passes it.
	Hidden    bool
	HiddenSeq int64
	Draft     string
	UpdatedAt time.Time
}

// Visible reports whether a session whose conversation is at lastSeq is
// listed: not hidden, or a message came after the hide.
func (s SessionSettings) Visible(lastSeq int64) bool { return !s.Hidden || lastSeq > s.HiddenSeq }

// SettingsPatch changes some of a session's settings; nil fields are kept.
type SettingsPatch struct {
	Pinned *bool
	Muted  *bool
	Draft  *string
	Hide   bool // hide the session at the conversation's current last seq
	At     time.Time
}

// LastSeen is when a user's last socket closed.
type LastSeen struct {
	AppID  string
	UserID string
	At     time.Time
}

// Settings stores what each user decides about their own conversation
// list: session settings, the users they block, and when they were last
// online.
type Settings interface {
	// SessionSettings returns the user's settings by conversation id
	// (sessions without any are absent).
	SessionSettings(ctx context.Context, appID, userID string) (map[string]SessionSettings, error)
	// UpdateSessionSettings applies p to the user's settings of the
	// conversation and returns the result. The caller checks membership.
	UpdateSessionSettings(ctx context.Context, appID, userID, conversationID string, p SettingsPatch) (SessionSettings, error)
	// MutedMembers returns the members who muted the conversation.
	MutedMembers(ctx context.Context, conversationID string) ([]string, error)

	// Block records that userID blocks each of blocked (already blocked
	// ones are kept); Unblock forgets them. Blocked lists them, sorted.
	Block(ctx context.Context, appID, userID string, blocked []string, at time.Time) error
	Unblock(ctx context.Context, appID, userID string, blocked []string) error
	Blocked(ctx context.Context, appID, userID string) ([]string, error)

	// SaveLastSeen stores when users were last online (a later time
	// replaces an earlier one, never the reverse); LastSeen reads them
	// for userIDs of an app (users never seen are absent).
	SaveLastSeen(ctx context.Context, seen []LastSeen) error
	LastSeen(ctx context.Context, appID string, userIDs []string) (map[string]time.Time, error)
}
