// Package store defines chatd's persistence contract: one interface, organised
// by operation rather than by table, that every backend (SQLite, PostgreSQL)
// implements and that internal/store/storetest verifies.
//
// The store is the source of truth. A message exists once Send returns; its
// seq is gapless from 1 within its conversation.
//
// # Visibility
//
// Every read of messages (History, After, a session's last message, and any
// later read of messages) applies one rule: a member sees a group's messages
// from when they last joined (seq > joined_seq), unless the group's setting
// (SetGroupFullHistory) or their membership (SetMembersFullHistory) grants
// the whole history. Private conversations are visible from their start
// (joined_seq is 0). Removal deletes the membership, so a member added again
// starts over from the seq at which they came back.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Shared sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	ErrNotFound  = errors.New("not found")
	ErrExists    = errors.New("already exists")
	ErrNotMember = errors.New("not a member of the conversation")
	ErrInvalid   = errors.New("invalid argument")
	ErrQuota     = errors.New("storage quota exceeded")
)

// Conversation types, as on node-chat's wire.
const (
	Private = 1
	Group   = 2
)

// App is a tenant: an application registered with chatd.
type App struct {
	ID          string // 24 lowercase hex characters
	Name        string
	Description string
	Secret      string
	Status      int // 0 active, 1 locked
	CreatedAt   time.Time
	// SignRoute makes the app's signed requests also sign the HTTP method
	// and path (see internal/signature), so that a request signed for one
	// route is refused on every other.
	SignRoute bool
}

// User is an application's end user. Users are keyed by (AppID, UserID);
// UserID is chosen by the application.
type User struct {
	AppID        string
	UserID       string
	Name         string
	AvatarURI    string
	TokenVersion int64
	CreatedAt    time.Time
}

// Conversation is one private pair or one group.
type Conversation struct {
	ID        string // internal id, 24 lowercase hex
	AppID     string
	Type      int    // Private or Group
	Key       string // sorted "a\x00b" user pair for Private (see PrivateKey), groupId for Group
	Name      string // group name; empty for Private
	AvatarURI string // group avatar; empty for Private
	LastSeq   int64
	LastMsgAt time.Time // zero when there is no message yet
	CreatedAt time.Time
	// ChangeSeq is the conversation's change counter (see Lifecycle): with
	// LastSeq, it changes whenever a message is added or changed.
	ChangeSeq int64
}

// Member is a user's place in a conversation: their session.
type Member struct {
	ConversationID string
	AppID          string
	UserID         string
	SID            string // session id handed to clients, 24 lowercase hex, unique
	ReadSeq        int64
	JoinedSeq      int64
	CreatedAt      time.Time
	// HidMessages: the member has hidden messages (Lifecycle.Hide) at some
	// point; when false, HiddenRanges is known to be empty.
	HidMessages bool
}

// Message is one stored message.
type Message struct {
	ID             string // msgId, 24 lowercase hex
	ConversationID string
	Seq            int64
	SenderID       string
	Type           int
	Content        json.RawMessage // stored exactly as given
	ClientMsgID    string          // empty when the sender gave none
	CreatedAt      time.Time

	// Filled by read operations (History, After, MessageByID) from the
	// users table; empty when the sender never called getToken.
	SenderName   string
	SenderAvatar string

	// MembersVersion is not stored: Send sets it to the conversation's
	// members version at the send (for a duplicate, at the retry), read in
	// the send's transaction. The members at that version are exactly the
	// message's recipients.
	MembersVersion int64

	// The message's lifecycle (see Lifecycle): its change version, the
	// seq of the message it replies to (0: none), and what it gained after
	// it was sent.
	Version  int64
	ReplySeq int64
	Meta     MessageMeta
}

// SessionRow is one row of a user's session list as the store reads it: their
// membership joined with the conversation, the peer (private) and the last
// message. chat.Session is what clients see of it.
type SessionRow struct {
	SID            string
	ConversationID string
	Type           int
	TargetID       string // peer userId for Private, groupId for Group
	Title          string // peer name (Private) or group name (Group)
	Avatar         string // peer avatar (Private) or group avatar (Group)
	LastSeq        int64
	ReadSeq        int64
	LastMsgAt      time.Time
	LastMsg        *Message // nil when the conversation has no message
	// MentionedUnread counts the unread messages that mention the user
	// or everyone.
	MentionedUnread int64
	// ChangeSeq is the conversation's change counter (see Lifecycle).
	ChangeSeq int64
	// LastHidden says the user hid the last message (Lifecycle.Hide).
	LastHidden bool
}

// Unread is the number of messages the member has not read.
func (s SessionRow) Unread() int64 {
	if n := s.LastSeq - s.ReadSeq; n > 0 {
		return n
	}
	return 0
}

// NewMessage is the input of Send.
type NewMessage struct {
	ConversationID string
	SenderID       string
	Type           int
	Content        json.RawMessage
	ClientMsgID    string    // optional; makes a retry return the original message
	At             time.Time // creation time; the backend uses time.Now when zero
	// Optional: the seq of the message replied to, and the mentioned users
	// (stored in Meta and in the mentions the session list counts).
	ReplySeq   int64
	Mentions   []string
	MentionAll bool
	// Event, when set, makes the send write the event it returns for the
	// stored message to the webhook outbox in the send's transaction (not
	// for a duplicate). See WebhookStore.
	Event func(Message) *OutboxEvent
}

// File records an uploaded blob.
type File struct {
	ID          string // fid, 24 lowercase hex
	AppID       string
	UserID      string
	Key         string // blob key
	Name        string // original file name
	Size        int64
	ContentType string
	CreatedAt   time.Time
}

// FileUsage is what an app's recorded uploads add up to.
type FileUsage struct {
	Bytes int64
	Files int64
}

// PrivateKey is the conversation key of the private conversation between a
// and b: the sorted pair, so both directions find the same conversation.
// A conversation with oneself has the key "a\x00a".
func PrivateKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "\x00" + b
}

// Store is implemented by every backend. All methods are safe for concurrent use.
type Store interface {
	// Apps.
	CreateApp(ctx context.Context, app App) error // ErrExists on a duplicate ID
	App(ctx context.Context, id string) (App, error)

	// Users. UpsertUser creates the user or updates name and avatar, keeping
	// TokenVersion; it returns the stored row.
	UpsertUser(ctx context.Context, u User) (User, error)
	User(ctx context.Context, appID, userID string) (User, error)
	// BumpTokenVersion increments the user's token version (revoking every
	// token issued before) and returns the new version. ErrNotFound if no user.
	BumpTokenVersion(ctx context.Context, appID, userID string) (int64, error)

	// OpenPrivate returns the private conversation between a and b, creating
	// it and both memberships when absent. Concurrent calls for the same pair
	// (in either order) return the same conversation.
	OpenPrivate(ctx context.Context, appID, a, b string) (Conversation, error)

	// UpsertGroup creates the group conversation groupID, or updates its name
	// and avatar when it exists, and adds userIDs as members (existing members
	// are left as they are). Users need not exist in the users table.
	UpsertGroup(ctx context.Context, appID, groupID, name, avatarURI string, userIDs []string) (Conversation, error)
	// ConversationByKey finds a conversation by type and key (PrivateKey(a, b)
	// or the groupId) without creating it; ErrNotFound if absent.
	ConversationByKey(ctx context.Context, appID string, typ int, key string) (Conversation, error)
	// AddMembers adds users to an existing group; ErrNotFound if no group.
	AddMembers(ctx context.Context, appID, groupID string, userIDs []string) error
	// RemoveMembers deletes the memberships (and so the sessions) of userIDs;
	// ErrNotFound if no group. Users that are not members are ignored.
	RemoveMembers(ctx context.Context, appID, groupID string, userIDs []string) error

	// Member returns userID's membership of the conversation; ErrNotMember if none.
	Member(ctx context.Context, conversationID, userID string) (Member, error)
	// MemberBySID returns the membership with that sid, only if it belongs to
	// (appID, userID); otherwise ErrNotFound.
	MemberBySID(ctx context.Context, appID, userID, sid string) (Member, error)
	// Members lists the conversation's members (user ids and sids), for
	// fan-out, ordered by user id, with the conversation's members version,
	// both read at one moment (0 and none when the conversation is absent).
	//
	// The members version starts at 0 and grows with every committed change
	// of the membership (OpenPrivate, UpsertGroup and AddMembers that add
	// someone, RemoveMembers that removes someone), in the change's own
	// transaction: two reads with the same version saw the same members.
	Members(ctx context.Context, conversationID string) (members []Member, version int64, err error)
	// Conversation returns a conversation by internal id.
	Conversation(ctx context.Context, id string) (Conversation, error)

	// Send stores a message in one transaction: it checks that the sender is
	// a member (ErrNotMember), allocates the next seq, inserts the message and
	// advances the sender's read_seq. When (conversation, sender, ClientMsgID)
	// already exists it stores nothing and returns the original with dup=true.
	// The returned message's MembersVersion is the conversation's members
	// version read in the same transaction.
	Send(ctx context.Context, m NewMessage) (msg Message, dup bool, err error)

	// Sessions lists the user's sessions, most recent first, in one query.
	// A session's LastMsg is nil when the member may not see the
	// conversation's last message (see Visibility).
	Sessions(ctx context.Context, appID, userID string) ([]SessionRow, error)
	// Session returns one of the user's sessions by conversation id;
	// ErrNotMember if the user is not a member.
	Session(ctx context.Context, conversationID, userID string) (SessionRow, error)

	// History returns up to limit messages with seq < beforeSeq that userID
	// may see (see Visibility in the package documentation), newest first (beforeSeq <= 0 means from the
	// newest). A user who is not a member sees nothing.
	History(ctx context.Context, conversationID, userID string, beforeSeq int64, limit int) ([]Message, error)
	// After returns up to limit messages with seq > afterSeq that userID may
	// see, oldest first.
	After(ctx context.Context, conversationID, userID string, afterSeq int64, limit int) ([]Message, error)
	// MessageByID returns a message of the conversation by msgId; ErrNotFound if absent.
	MessageByID(ctx context.Context, conversationID, msgID string) (Message, error)

	// MarkRead sets the member's read_seq to max(read_seq, min(seq, last_seq));
	// seq < 0 means "everything so far". It returns the resulting read_seq.
	MarkRead(ctx context.Context, conversationID, userID string, seq int64) (int64, error)

	// Files.
	CreateFile(ctx context.Context, f File) error
	File(ctx context.Context, appID, id string) (File, error)
	// CreateFileWithin records f like CreateFile and adds its size to the
	// app's usage in the same transaction; with maxAppBytes > 0 it refuses
	// with ErrQuota, recording nothing, when the usage would pass it.
	// (CreateFile is CreateFileWithin with no limit.)
	CreateFileWithin(ctx context.Context, f File, maxAppBytes int64) error
	// FileUsage returns the bytes and number of files recorded for an app.
	FileUsage(ctx context.Context, appID string) (FileUsage, error)

	// Lifecycle: recall, edit, reactions, delete-for-me.
	Lifecycle
	// Social: read receipts and presence.
	Social
	// Settings: per-user session settings, blocks, last seen (settings.go).
	Settings

	// Ping reports whether the backend is reachable (for /readyz).
	Ping(ctx context.Context) error
	Close() error

	// SetGroupFullHistory sets the group's history setting: when full,
	// every member sees the whole history, whenever they joined.
	// ErrNotFound if no group.
	SetGroupFullHistory(ctx context.Context, appID, groupID string, full bool) error
	// SetMembersFullHistory grants (or withdraws) the whole history to
	// members of the group; users that are not members are ignored.
	// ErrNotFound if no group.
	SetMembersFullHistory(ctx context.Context, appID, groupID string, userIDs []string, full bool) error
	// SetAppSignRoute turns the app's route-bound signatures on or off.
	// ErrNotFound if no app.
	SetAppSignRoute(ctx context.Context, appID string, on bool) error
	// SetAppStatus sets the app's status (0 active, 1 locked); a locked
	// app's requests and tokens are refused. ErrNotFound if no app.
	SetAppStatus(ctx context.Context, appID string, status int) error
	// UseNonce records a signed request's nonce for the app until expires,
	// and reports false when it is already recorded and unexpired: the
	// request is a replay. Nonces outlive restarts and are shared by every
	// node of the store; expired ones are pruned.
	UseNonce(ctx context.Context, appID, nonce string, expires time.Time) (bool, error)

	// Group management and profiles (groups.go).
	GroupStore
	// Search returns up to q.Limit messages that q.UserID may see (see
	// Visibility; hidden and recalled messages excluded) whose searchable
	// text (SearchText) matches every term (MatchSearch), newest first
	// from q.Before, within the bounds of FilterSearch.
	Search(ctx context.Context, q SearchQuery) (SearchPage, error)
	// MessagesAround returns the messages userID may see around seq, to open
	// a conversation at a search hit: up to before messages with seq' <=
	// seq and up to after with seq' > seq, oldest first. Unlike History it
	// also leaves out the ranges userID hid (see Visibility).
	MessagesAround(ctx context.Context, conversationID, userID string, seq int64, before, after int) ([]Message, error)

	// Webhook endpoints and the outbox (webhooks.go).
	WebhookStore
}

// CursorReader is implemented by stores that resolve a page's cursor (a
// message id) to its seq from the message id index, without decoding the
// message or joining its sender (both backends); chat falls back to
// MessageByID otherwise.
type CursorReader interface {
	// MessageSeq returns the seq of message msgID of conversationID;
	// ErrNotFound when that conversation has no such message.
	MessageSeq(ctx context.Context, conversationID, msgID string) (int64, error)
}

// SessionReader is implemented by stores that resolve a session and its
// conversation in one statement (both backends); chat falls back to
// MemberBySID and Conversation otherwise.
type SessionReader interface {
	// SessionBySID returns the conversation and the membership with that
	// sid, only if it belongs to userID of appID; ErrNotFound otherwise.
	SessionBySID(ctx context.Context, appID, userID, sid string) (Conversation, Member, error)
}
