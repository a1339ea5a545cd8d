// Package chat is chatd's domain: apps, users and their tokens, private and
// group conversations, sending, session lists, history and read marks. It
// validates input, talks to the store, and tells a Notifier about committed
// changes; it knows nothing of HTTP or sockets.
package chat

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/chatd/chatd/internal/ratelimit"
	"github.com/chatd/chatd/internal/store"
)

// Message types (node-chat's).
const (
	TypeText     = 1
	TypeVoice    = 2
	TypeImage    = 3
	TypeFile     = 4
	TypeLocation = 5
	TypeCustom   = 6
)

// Limits bound what one request may ask for.
type Limits struct {
	MaxContentBytes int // JSON bytes of a message's content
	HistoryDefault  int // page size when the client gives none
	HistoryMax      int // cap on a page
	MaxGroupSize    int // members per group
}

// DefaultLimits are the limits used when a field of Options.Limits is zero.
var DefaultLimits = Limits{MaxContentBytes: 64 << 10, HistoryDefault: 20, HistoryMax: 100, MaxGroupSize: 10000}

// Notifier learns about committed changes so that it can push them to
// connected devices. It is called after the store has committed, and must
// not block for long.
type Notifier interface {
	MessageSent(ctx context.Context, d Delivery)
	SessionRead(ctx context.Context, r ReadMark)
	// TokensRevoked says every token of the user is void: their live
	// sockets must be closed (and the user forgotten, as for UserChanged).
	TokensRevoked(ctx context.Context, appID, userID string)
	// UserChanged says the user's name or avatar may have changed: every
	// node must forget what it remembers of them (Service.ForgetUser).
	UserChanged(ctx context.Context, appID, userID string)
}

// Delivery is a committed message and everyone who should see it pushed:
// every member of the conversation, the sender included (for the sender's
// other devices).
type Delivery struct {
	AppID      string
	Origin     string // id of the socket that sent it, skipped when pushing; "" for HTTP
	Message    Message
	Recipients []Recipient
}

// Recipient is one receiving user and their own session of the conversation.
type Recipient struct {
	UserID  string
	Session SessionRef
	Muted   bool `json:",omitempty"` // the user muted the conversation (settings.go)
}

// ReadMark says a user has read a session up to ReadSeq.
type ReadMark struct {
	AppID   string
	UserID  string
	SID     string
	ReadSeq int64
	Origin  string
}

// Options configure a Service.
type Options struct {
	Limits   Limits
	Notifier Notifier         // nil: nobody is told
	Now      func() time.Time // nil: time.Now
	// TokenTTL bounds a token's life; 0 means tokens live until revoked.
	// Tokens issued within the same TTL period are identical, so repeated
	// getToken calls still return the same token; each lives between one
	// and two TTLs.
	TokenTTL time.Duration
	// Send rates (messages per second) and bursts, per user and per app;
	// a rate of 0 disables that limit.
	UserSendRate  float64
	UserSendBurst int
	AppSendRate   float64
	AppSendBurst  int
	// Lifecycle sets the recall and edit windows and the reaction limit.
	Lifecycle LifecycleOptions
	// ReceiptsMaxGroup: message-readers lists the readers of conversations
	// up to this many members, counts only above (0: DefaultReceiptsMaxGroup).
	ReceiptsMaxGroup int
	// Webhooks wires the before-send hook and endpoint URL checks (webhooks.go).
	Webhooks WebhookOptions
	// HistoryCacheBytes bounds the cache of recently read history pages
	// (historycache.go); 0: 16 MiB, negative: no cache.
	HistoryCacheBytes int
}

// Service implements chatd's operations on a store.
type Service struct {
	hist      *historyCache // nil: none
	store     store.Store
	limits    Limits
	notifier  Notifier
	now       func() time.Time
	tokenTTL  time.Duration
	userSends *ratelimit.Limiter
	appSends  *ratelimit.Limiter
	life      LifecycleOptions

	receiptsMaxGroup int

	privMu  sync.Mutex
	private map[string]privateConv // by app and PrivateKey

	users   userCache           // names and avatars for the send path
	members *memberCache        // group member lists for the send path
	blocks  *ttlCache[[]string] // whom each user blocks, by user (settings.go)
	mutes   *ttlCache[[]string] // who muted each conversation, by conversation (settings.go)

	groupSizes *ttlCache[int] // member counts deciding group receipts (group_receipts.go)
	privSIDs   privateSIDs    // private sessions for message changes (lifecycle.go)

	stats struct{ sent, duplicates, rateLimited atomic.Uint64 }

	hooks    *ttlCache[[]store.Endpoint] // each app's webhook endpoints (webhooks.go)
	webhooks WebhookOptions
}

// Stats are the service's cumulative counters, for /metrics.
type Stats struct {
	MessagesSent uint64 // messages stored
	Duplicates   uint64 // sends answered with an existing message (clientMsgId retries)
	RateLimited  uint64 // sends refused by a rate limit
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	return Stats{
		MessagesSent: s.stats.sent.Load(),
		Duplicates:   s.stats.duplicates.Load(),
		RateLimited:  s.stats.rateLimited.Load(),
	}
}

// New returns a Service over st.
func New(st store.Store, opts Options) *Service {
	l := opts.Limits
	if l.MaxContentBytes <= 0 {
		l.MaxContentBytes = DefaultLimits.MaxContentBytes
	}
	if l.HistoryDefault <= 0 {
		l.HistoryDefault = DefaultLimits.HistoryDefault
	}
	if l.HistoryMax <= 0 {
		l.HistoryMax = DefaultLimits.HistoryMax
	}
	if l.HistoryDefault > l.HistoryMax {
		l.HistoryDefault = l.HistoryMax
	}
	if l.MaxGroupSize <= 0 {
		l.MaxGroupSize = DefaultLimits.MaxGroupSize
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Service{
		store: st, limits: l, notifier: opts.Notifier, now: now, tokenTTL: opts.TokenTTL,
		private:    make(map[string]privateConv),
		users:      newUserCache(),
		members:    newMemberCache(maxCachedMemberRows),
		blocks:     newTTLCache[[]string](settingsCacheTTL, maxCachedSettings),
		mutes:      newTTLCache[[]string](settingsCacheTTL, maxCachedSettings),
		groupSizes: newTTLCache[int](groupSizeTTL, maxCachedSettings),
		hooks:      newTTLCache[[]store.Endpoint](webhookCacheTTL, maxCachedApps),
		userSends:  ratelimit.New(opts.UserSendRate, opts.UserSendBurst),
		appSends:   ratelimit.New(opts.AppSendRate, opts.AppSendBurst),
		life:       opts.Lifecycle.withDefaults(),

		receiptsMaxGroup: cmp.Or(opts.ReceiptsMaxGroup, DefaultReceiptsMaxGroup),
		webhooks:         opts.Webhooks,
		hist:             newHistoryCache(cmp.Or(opts.HistoryCacheBytes, defaultHistoryCacheBytes)),
	}
}

// Sizes (bytes of UTF-8) of what apps and clients name. They are generous for
// any real name or URL and keep a row, a cache entry and an error message
// small; the wire contract (README.md, HTTP API) promises nothing tighter.
const (
	maxIDBytes          = 128  // userId, groupId, clientMsgId
	maxAppNameBytes     = 128  // appName
	maxDescriptionBytes = 1024 // an app's description
	maxNameBytes        = 256  // a user's or a group's display name
	maxAvatarURIBytes   = 2048 // avatarUri: the URL length every browser accepts
	maxQuotedBytes      = 64   // a client's value quoted back in an error message
)

// appSecretBytes is the random part of an app secret: 192 bits, beyond any
// guessing, as 48 hex characters.
const appSecretBytes = 24

// CreateApp registers an application and returns it with its secret.
func (s *Service) CreateApp(ctx context.Context, name, description string) (store.App, error) {
	if err := checkText("appName", name, 1, maxAppNameBytes); err != nil {
		return store.App{}, err
	}
	if err := checkText("description", description, 0, maxDescriptionBytes); err != nil {
		return store.App{}, err
	}
	var secret [appSecretBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return store.App{}, fmt.Errorf("app secret: %w", err)
	}
	app := store.App{
		ID:          store.NewID(),
		Name:        name,
		Description: description,
		Secret:      hex.EncodeToString(secret[:]),
		CreatedAt:   s.now(),
	}
	if err := s.store.CreateApp(ctx, app); err != nil {
		return store.App{}, fmt.Errorf("create app: %w", err)
	}
	return app, nil
}

// App returns an active app; unknown or locked apps are ErrUnknownApp.
func (s *Service) App(ctx context.Context, appID string) (store.App, error) {
	if !store.ValidID(appID) {
		return store.App{}, fmt.Errorf("%w: %q", ErrUnknownApp, truncate(appID))
	}
	app, err := s.store.App(ctx, appID)
	if errors.Is(err, store.ErrNotFound) || err == nil && app.Status != 0 {
		return store.App{}, fmt.Errorf("%w: %s", ErrUnknownApp, appID)
	}
	if err != nil {
		return store.App{}, fmt.Errorf("load app: %w", err)
	}
	return app, nil
}

// GetToken creates or updates the user and returns their token, which stays
// the same across calls until it is revoked.
func (s *Service) GetToken(ctx context.Context, app store.App, userID, name, avatarURI string) (string, error) {
	if err := checkUserID("userId", userID); err != nil {
		return "", err
	}
	if err := checkText("name", name, 0, maxNameBytes); err != nil {
		return "", err
	}
	if err := checkText("avatarUri", avatarURI, 0, maxAvatarURIBytes); err != nil {
		return "", err
	}
	u, err := s.store.UpsertUser(ctx, store.User{AppID: app.ID, UserID: userID, Name: name, AvatarURI: avatarURI, CreatedAt: s.now()})
	if err != nil {
		return "", fmt.Errorf("upsert user: %w", err)
	}
	s.users.forget(app.ID, userID)
	s.hist.forgetSender(userID)
	if s.notifier != nil {
		s.notifier.UserChanged(ctx, app.ID, userID)
	}
	return issueToken(app.Secret, app.ID, u.UserID, u.TokenVersion, s.tokenExpiry()), nil
}

// tokenExpiry is the expiry (unix seconds) of tokens issued now, or 0.
func (s *Service) tokenExpiry() int64 {
	ttl := int64(s.tokenTTL / time.Second)
	if ttl <= 0 {
		return 0
	}
	return (s.now().Unix()/ttl + 2) * ttl
}

// RevokeTokens invalidates every token the user holds. The next GetToken
// returns a new one.
func (s *Service) RevokeTokens(ctx context.Context, app store.App, userID string) error {
	if err := checkUserID("userId", userID); err != nil {
		return err
	}
	_, err := s.store.BumpTokenVersion(ctx, app.ID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownUser, truncate(userID))
	}
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	s.users.forget(app.ID, userID)
	if s.notifier != nil {
		s.notifier.TokensRevoked(ctx, app.ID, userID)
	}
	return nil
}

// Authenticate checks a user token presented with appID (empty appID: the
// token's own) and returns its user.
func (s *Service) Authenticate(ctx context.Context, appID, token string) (store.User, error) {
	if token == "" {
		return store.User{}, fmt.Errorf("%w: missing", ErrBadToken)
	}
	c, err := parseToken(token)
	if err != nil {
		return store.User{}, err
	}
	if appID != "" && c.appID != appID {
		return store.User{}, fmt.Errorf("%w: not issued for this app", ErrBadToken)
	}
	app, err := s.App(ctx, c.appID)
	if err != nil {
		if errors.Is(err, ErrUnknownApp) {
			return store.User{}, fmt.Errorf("%w: unknown app", ErrBadToken)
		}
		return store.User{}, err
	}
	if !c.validFor(app.Secret) {
		return store.User{}, fmt.Errorf("%w: bad signature", ErrBadToken)
	}
	if c.expires != 0 && s.now().Unix() >= c.expires {
		return store.User{}, fmt.Errorf("%w: expired", ErrBadToken)
	}
	u, err := s.store.User(ctx, c.appID, c.userID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("%w: unknown user", ErrBadToken)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("load user: %w", err)
	}
	if u.TokenVersion != c.version {
		return store.User{}, fmt.Errorf("%w: revoked", ErrBadToken)
	}
	return u, nil
}

// CreateGroup creates the group or, when it exists, updates its name and
// avatar; in both cases userIDs become members.
func (s *Service) CreateGroup(ctx context.Context, appID, groupID, name, avatarURI string, userIDs []string) error {
	if err := checkUserID("groupId", groupID); err != nil {
		return err
	}
	if err := checkText("name", name, 1, maxNameBytes); err != nil {
		return err
	}
	if err := checkText("avatarUri", avatarURI, 0, maxAvatarURIBytes); err != nil {
		return err
	}
	if err := s.checkUserIDs(userIDs); err != nil {
		return err
	}
	err := s.checkGroupRoom(ctx, appID, groupID, userIDs)
	if err != nil && !errors.Is(err, ErrUnknownGroup) {
		return err
	}
	ev := groupEvent{EventGroupCreated, map[string]any{"name": name, "avatarUri": avatarURI, "userIds": dedupe(userIDs)}}
	if err == nil { // the group exists
		ev = groupEvent{EventGroupUpdated, map[string]any{"name": name, "avatarUri": avatarURI, "added": dedupe(userIDs)}}
	}
	if _, err := s.store.UpsertGroup(s.groupEvents(ctx, appID, groupID, ev), appID, groupID, name, avatarURI, userIDs); err != nil {
		return fmt.Errorf("upsert group: %w", err)
	}
	return nil
}

// JoinGroup adds users to an existing group.
func (s *Service) JoinGroup(ctx context.Context, appID, groupID string, userIDs []string) error {
	if err := checkUserID("groupId", groupID); err != nil {
		return err
	}
	if err := s.checkUserIDs(userIDs); err != nil {
		return err
	}
	if err := s.checkGroupRoom(ctx, appID, groupID, userIDs); err != nil {
		return err
	}
	ctx = s.groupEvents(ctx, appID, groupID, groupEvent{EventGroupMembersChanged, map[string]any{"added": dedupe(userIDs), "removed": []string{}}})
	err := s.store.AddMembers(ctx, appID, groupID, userIDs)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownGroup, truncate(groupID))
	}
	return err
}

// RemoveFromGroup deletes memberships: the removed users lose the session,
// cannot send to the group and receive nothing new.
func (s *Service) RemoveFromGroup(ctx context.Context, appID, groupID string, userIDs []string) error {
	if err := checkUserID("groupId", groupID); err != nil {
		return err
	}
	if err := s.checkUserIDs(userIDs); err != nil {
		return err
	}
	ctx = s.groupEvents(ctx, appID, groupID, groupEvent{EventGroupMembersChanged, map[string]any{"added": []string{}, "removed": dedupe(userIDs)}})
	err := s.store.RemoveMembers(ctx, appID, groupID, userIDs)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownGroup, truncate(groupID))
	}
	return err
}

// checkGroupRoom refuses additions that would take the group past its size limit.
func (s *Service) checkGroupRoom(ctx context.Context, appID, groupID string, userIDs []string) error {
	conv, err := s.store.ConversationByKey(ctx, appID, store.Group, groupID)
	if errors.Is(err, store.ErrNotFound) {
		if len(dedupe(userIDs)) > s.limits.MaxGroupSize {
			return fmt.Errorf("%w: a group holds at most %d members", ErrInvalid, s.limits.MaxGroupSize)
		}
		return fmt.Errorf("%w: %s", ErrUnknownGroup, truncate(groupID))
	}
	if err != nil {
		return fmt.Errorf("load group: %w", err)
	}
	members, _, err := s.store.Members(ctx, conv.ID)
	if err != nil {
		return fmt.Errorf("load members: %w", err)
	}
	n := len(members)
	have := make(map[string]bool, n)
	for _, m := range members {
		have[m.UserID] = true
	}
	for _, u := range dedupe(userIDs) {
		if !have[u] {
			n++
		}
	}
	if n > s.limits.MaxGroupSize {
		return fmt.Errorf("%w: a group holds at most %d members", ErrInvalid, s.limits.MaxGroupSize)
	}
	return nil
}

// SendInput is one message to send.
type SendInput struct {
	AppID       string
	SenderID    string
	TargetID    string // user (private) or group (group)
	Type        int    // message type, 1..6
	Content     json.RawMessage
	ClientMsgID string // optional idempotency key
	Origin      string // sending socket id, "" for HTTP
	// Optional: the msgId answered (same conversation), and the members
	// mentioned (mentionAll: everyone, groups only).
	ReplyTo    string
	Mentions   []string
	MentionAll bool
}

func (s *Service) checkSend(in SendInput) error {
	if err := checkUserID("senderUserId", in.SenderID); err != nil {
		return err
	}
	if err := checkUserID("targetId", in.TargetID); err != nil {
		return err
	}
	if in.Type < TypeText || in.Type > TypeCustom { // node-chat's types, all of them
		return fmt.Errorf("%w: messageType must be an integer from 1 to 6", ErrInvalid)
	}
	if len(in.Content) > s.limits.MaxContentBytes {
		return fmt.Errorf("%w: content is larger than %d bytes", ErrTooLarge, s.limits.MaxContentBytes)
	}
	if !isJSONObject(in.Content) {
		return fmt.Errorf("%w: content must be an object", ErrInvalid)
	}
	if len(in.ClientMsgID) > maxIDBytes || !utf8.ValidString(in.ClientMsgID) {
		return fmt.Errorf("%w: clientMsgId must be at most %d characters", ErrInvalid, maxIDBytes)
	}
	if err := checkMentions(in); err != nil {
		return err
	}
	if !s.userSends.Allow(in.AppID + "\x00" + in.SenderID) {
		s.stats.rateLimited.Add(1)
		return fmt.Errorf("%w: %s is sending too fast", ErrRateLimited, truncate(in.SenderID))
	}
	if !s.appSends.Allow(in.AppID) {
		s.stats.rateLimited.Add(1)
		return fmt.Errorf("%w: this app is sending too fast", ErrRateLimited)
	}
	return nil
}

// SendPrivate sends a one-to-one message. Both users must exist (have had a
// token issued). A retry with the same ClientMsgID returns the original.
func (s *Service) SendPrivate(ctx context.Context, in SendInput) (SendResult, error) {
	if err := s.checkSend(in); err != nil {
		return SendResult{}, err
	}
	if err := s.checkBlocked(ctx, in.AppID, in.SenderID, in.TargetID); err != nil { // settings.go
		return SendResult{}, err
	}
	sender, err := s.user(ctx, in.AppID, in.SenderID)
	if err != nil {
		return SendResult{}, err
	}
	target := sender
	if in.TargetID != in.SenderID {
		if target, err = s.user(ctx, in.AppID, in.TargetID); err != nil {
			return SendResult{}, err
		}
	}
	pc, err := s.openPrivate(ctx, in.AppID, in.SenderID, in.TargetID)
	if err != nil {
		return SendResult{}, err
	}
	// Each side's session is titled with the other side.
	titles := map[string]SessionRef{
		sender.UserID: {Title: target.Name, Avatar: target.AvatarURI},
		target.UserID: {Title: sender.Name, Avatar: sender.AvatarURI},
	}
	return s.send(ctx, in, pc.conv, pc.members, UserRef{Name: sender.Name, AvatarURI: sender.AvatarURI}, titles, nil)
}

// privateConv is a private conversation with its two memberships. Neither
// ever changes once created (only groups gain and lose members), so they
// are safe to keep in memory on every node.
type privateConv struct {
	conv    store.Conversation // LastSeq and LastMsgAt are stale: do not use them
	members []store.Member
}

// openPrivate returns the private conversation of a and b, creating it when
// absent, from memory when this node has seen it before.
func (s *Service) openPrivate(ctx context.Context, appID, a, b string) (privateConv, error) {
	key := appID + "\x00" + store.PrivateKey(a, b)
	s.privMu.Lock()
	pc, ok := s.private[key]
	s.privMu.Unlock()
	if ok {
		return pc, nil
	}
	conv, err := s.store.OpenPrivate(ctx, appID, a, b)
	if err != nil {
		return pc, fmt.Errorf("open conversation: %w", err)
	}
	members, _, err := s.store.Members(ctx, conv.ID)
	if err != nil {
		return pc, fmt.Errorf("load members: %w", err)
	}
	pc = privateConv{conv: conv, members: members}
	s.privMu.Lock()
	if len(s.private) >= maxCachedPrivate {
		for k := range s.private { // evict an arbitrary entry: any one is cheap to reload
			delete(s.private, k)
			break
		}
	}
	s.private[key] = pc
	s.privMu.Unlock()
	return pc, nil
}

// maxCachedPrivate bounds the private conversations kept in memory
// (about 300 bytes each).
const maxCachedPrivate = 100_000

// SendGroup sends a message to a group the sender belongs to.
func (s *Service) SendGroup(ctx context.Context, in SendInput) (SendResult, error) {
	if err := s.checkSend(in); err != nil {
		return SendResult{}, err
	}
	conv, err := s.store.ConversationByKey(ctx, in.AppID, store.Group, in.TargetID)
	if errors.Is(err, store.ErrNotFound) {
		return SendResult{}, fmt.Errorf("%w: %s", ErrUnknownGroup, truncate(in.TargetID))
	}
	if err != nil {
		return SendResult{}, fmt.Errorf("load group: %w", err)
	}
	if err := s.checkGroupSend(ctx, conv, in.SenderID); err != nil {
		return SendResult{}, err
	}
	// Members need not have a users row (no getToken yet): then the name is empty.
	var sender UserRef
	if u, err := s.users.get(ctx, s.store, s.now(), in.AppID, in.SenderID); err == nil {
		sender = UserRef{Name: u.Name, AvatarURI: u.AvatarURI}
	} else if !errors.Is(err, store.ErrNotFound) {
		return SendResult{}, fmt.Errorf("load user: %w", err)
	}
	ref := SessionRef{Title: conv.Name, Avatar: conv.AvatarURI}
	return s.send(ctx, in, conv, nil, sender, nil, &ref)
}

// send stores the message and tells the notifier. Titles come from titles
// (per user, private) or from group (one for everyone). members are the
// conversation's, or nil for a group's, which may change: then they are the
// ones at the members version the store read inside the send.
func (s *Service) send(ctx context.Context, in SendInput, conv store.Conversation, members []store.Member, sender UserRef, titles map[string]SessionRef, group *SessionRef) (SendResult, error) {
	nm := store.NewMessage{
		ConversationID: conv.ID,
		SenderID:       in.SenderID,
		Type:           in.Type,
		Content:        in.Content,
		ClientMsgID:    in.ClientMsgID,
		At:             s.now(),
	}
	var orig *store.Message
	if in.ReplyTo != "" || len(in.Mentions) > 0 || in.MentionAll {
		var err error
		if orig, err = s.replyAndMentions(ctx, in, conv, members, &nm); err != nil {
			return SendResult{}, err
		}
	}
	if err := s.beforeSend(ctx, in, conv, &nm); err != nil { // webhooks.go
		return SendResult{}, err
	}
	nm.Event = s.sentEvent(ctx, in.AppID, conv, sender)
	msg, dup, err := s.store.Send(ctx, nm)
	if errors.Is(err, store.ErrNotMember) {
		return SendResult{}, fmt.Errorf("%w: %s may not send to %s", ErrNotMember, truncate(in.SenderID), truncate(in.TargetID))
	}
	if err != nil {
		return SendResult{}, fmt.Errorf("send: %w", err)
	}
	if dup {
		s.stats.duplicates.Add(1)
	} else {
		s.stats.sent.Add(1)
		if nm.Event != nil {
			s.eventsWritten() // webhooks.go
		}
	}
	if members == nil {
		if members, err = s.groupMembers(ctx, conv.ID, msg.MembersVersion); err != nil {
			return SendResult{}, fmt.Errorf("load members: %w", err)
		}
	}
	msg.SenderName, msg.SenderAvatar = sender.Name, sender.AvatarURI
	wire := s.wireMessage(conv, msg, s.now())
	if orig != nil && orig.Seq == msg.ReplySeq {
		wire.ReplyTo, wire.Quote = orig.ID, quoteOf(*orig)
	}
	res := SendResult{Message: wire}
	recipients := make([]Recipient, 0, len(members))
	for _, m := range members {
		ref := SessionRef{SID: m.SID}
		if group != nil {
			ref.Title, ref.Avatar = group.Title, group.Avatar
		} else {
			t := titles[m.UserID]
			ref.Title, ref.Avatar = t.Title, t.Avatar
		}
		if m.UserID == in.SenderID {
			res.SendSession = ref
		}
		recipients = append(recipients, Recipient{UserID: m.UserID, Session: ref})
	}
	if !dup && s.notifier != nil {
		s.markMuted(ctx, conv.ID, recipients) // settings.go
		s.notifier.MessageSent(ctx, Delivery{AppID: in.AppID, Origin: in.Origin, Message: wire, Recipients: recipients})
	}
	return res, nil
}

// Sessions lists the user's sessions, most recent first.
func (s *Service) Sessions(ctx context.Context, appID, userID string) ([]Session, error) {
	if err := checkUserID("userId", userID); err != nil {
		return nil, err
	}
	rows, err := s.store.Sessions(ctx, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	now := s.now()
	out := make([]Session, 0, len(rows))
	for _, r := range rows {
		out = append(out, wireSession(r, now))
	}
	if err := s.withPeerReads(ctx, appID, userID, rows, out); err != nil { // receipts.go
		return nil, err
	}
	return s.withSettings(ctx, appID, userID, rows, out) // settings.go
}

// Page selects a page of history: Limit messages older than LastMsgID
// (newest when empty). Limit 0 means the default.
type Page struct {
	Limit     int
	LastMsgID string
}

// HistoryWith returns the user's history with a peer or group, newest first.
// A private conversation that was never opened is an empty history.
func (s *Service) HistoryWith(ctx context.Context, appID, userID, targetID string, convType int, p Page) ([]Message, error) {
	if err := checkUserID("userId", userID); err != nil {
		return nil, err
	}
	conv, err := s.conversationOf(ctx, appID, userID, targetID, convType)
	if errors.Is(err, store.ErrNotFound) {
		return []Message{}, nil
	}
	if err != nil {
		return nil, err
	}
	return s.history(ctx, conv, userID, nil, p)
}

// HistoryBySID returns a page of the caller's session sid, newest first.
func (s *Service) HistoryBySID(ctx context.Context, appID, userID, sid string, p Page) ([]Message, error) {
	conv, m, err := s.session(ctx, appID, userID, sid)
	if err != nil {
		return nil, err
	}
	return s.history(ctx, conv, userID, &m, p)
}

// history is a page of what userID may see of conv (the store applies the
// visibility rule); m is userID's membership, read with conv from the store
// (nil: unknown, or conv may come from a cache).
func (s *Service) history(ctx context.Context, conv store.Conversation, userID string, m *store.Member, p Page) ([]Message, error) {
	limit, err := s.limit(p.Limit)
	if err != nil {
		return nil, err
	}
	var before int64
	if p.LastMsgID != "" {
		if !store.ValidID(p.LastMsgID) {
			return nil, fmt.Errorf("%w: lastmsgId must be a message id", ErrInvalid)
		}
		seq, err := s.cursorSeq(ctx, conv.ID, p.LastMsgID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: message %s in this conversation", ErrNotFound, p.LastMsgID)
		}
		if err != nil {
			return nil, fmt.Errorf("load message: %w", err)
		}
		if conv.Type == store.Group && !s.visible(ctx, conv.ID, userID, seq) {
			// A message the caller may not see is no cursor of theirs.
			return nil, fmt.Errorf("%w: message %s in this conversation", ErrNotFound, p.LastMsgID)
		}
		before = seq
		if before <= 1 {
			return []Message{}, nil
		}
	}
	msgs, err := s.visiblePage(ctx, conv, m, userID, before, limit, false)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return s.viewerMessages(ctx, conv, userID, msgs)
}

// cursorSeq is the seq of a history page's cursor message: from the
// message id index when the store can (store.CursorReader), else by
// reading the message.
func (s *Service) cursorSeq(ctx context.Context, convID, msgID string) (int64, error) {
	if cr, ok := s.store.(store.CursorReader); ok {
		return cr.MessageSeq(ctx, convID, msgID)
	}
	m, err := s.store.MessageByID(ctx, convID, msgID)
	return m.Seq, err
}

// Sync returns up to limit messages of the caller's session with seq >
// afterSeq, oldest first: what a reconnecting client missed.
func (s *Service) Sync(ctx context.Context, appID, userID, sid string, afterSeq int64, limit int) ([]Message, error) {
	conv, m, err := s.session(ctx, appID, userID, sid)
	if err != nil {
		return nil, err
	}
	if afterSeq < 0 {
		return nil, fmt.Errorf("%w: afterSeq must not be negative", ErrInvalid)
	}
	n, err := s.limit(limit)
	if err != nil {
		return nil, err
	}
	msgs, err := s.visiblePage(ctx, conv, &m, userID, afterSeq, n, true)
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	return s.viewerMessages(ctx, conv, userID, msgs)
}

// MarkRead marks the caller's session read up to its last message and tells
// the caller's other devices.
func (s *Service) MarkRead(ctx context.Context, appID, userID, sid, origin string) (int64, error) {
	conv, m, err := s.session(ctx, appID, userID, sid)
	if err != nil {
		return 0, err
	}
	seq, err := s.store.MarkRead(ctx, conv.ID, userID, -1)
	if err != nil {
		return 0, fmt.Errorf("mark read: %w", err)
	}
	if s.notifier != nil {
		s.notifier.SessionRead(ctx, ReadMark{AppID: appID, UserID: userID, SID: sid, ReadSeq: seq, Origin: origin})
		if seq > m.ReadSeq {
			s.readReceipt(ctx, conv, userID, m.ReadSeq, seq) // receipts.go
		}
	}
	if seq > m.ReadSeq {
		s.sessionReadEvent(ctx, appID, userID, sid, seq) // webhooks.go
	}
	return seq, nil
}

// session resolves a sid that must belong to the caller; anyone else's sid is
// simply not found.
func (s *Service) session(ctx context.Context, appID, userID, sid string) (store.Conversation, store.Member, error) {
	if !store.ValidID(sid) {
		return store.Conversation{}, store.Member{}, fmt.Errorf("%w: sid must be a session id", ErrInvalid)
	}
	if sr, ok := s.store.(store.SessionReader); ok {
		conv, m, err := sr.SessionBySID(ctx, appID, userID, sid)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNotMember) {
			return store.Conversation{}, store.Member{}, fmt.Errorf("%w: session %s", ErrNotFound, sid)
		}
		if err != nil {
			return store.Conversation{}, store.Member{}, fmt.Errorf("load session: %w", err)
		}
		return conv, m, nil
	}
	m, err := s.store.MemberBySID(ctx, appID, userID, sid)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNotMember) {
		return store.Conversation{}, store.Member{}, fmt.Errorf("%w: session %s", ErrNotFound, sid)
	}
	if err != nil {
		return store.Conversation{}, store.Member{}, fmt.Errorf("load session: %w", err)
	}
	conv, err := s.store.Conversation(ctx, m.ConversationID)
	if err != nil {
		return store.Conversation{}, store.Member{}, fmt.Errorf("load conversation: %w", err)
	}
	return conv, m, nil
}

func (s *Service) limit(n int) (int, error) {
	switch {
	case n == 0:
		return s.limits.HistoryDefault, nil
	case n < 0:
		return 0, fmt.Errorf("%w: limit must be positive", ErrInvalid)
	case n > s.limits.HistoryMax:
		return s.limits.HistoryMax, nil
	}
	return n, nil
}

func (s *Service) wireMessages(conv store.Conversation, msgs []store.Message) []Message {
	now := s.now()
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, s.wireMessage(conv, m, now))
	}
	return out
}

// user returns a user the send path needs (name, avatar, existence), from
// the cache when fresh.
func (s *Service) user(ctx context.Context, appID, userID string) (store.User, error) {
	u, err := s.users.get(ctx, s.store, s.now(), appID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return u, fmt.Errorf("%w: %s", ErrUnknownUser, truncate(userID))
	}
	if err != nil {
		return u, fmt.Errorf("load user: %w", err)
	}
	return u, nil
}

func (s *Service) checkUserIDs(ids []string) error {
	if len(ids) == 0 {
		return fmt.Errorf("%w: userIds must be a non-empty array", ErrInvalid)
	}
	if len(ids) > s.limits.MaxGroupSize {
		return fmt.Errorf("%w: at most %d userIds at once", ErrInvalid, s.limits.MaxGroupSize)
	}
	for _, id := range ids {
		if err := checkUserID("userIds", id); err != nil {
			return err
		}
	}
	return nil
}

// checkUserID accepts ids an application may choose: 1–128 bytes of UTF-8
// without control characters (the store uses NUL as a separator).
func checkUserID(name, v string) error {
	if v == "" {
		return fmt.Errorf("%w: missing %s", ErrInvalid, name)
	}
	if len(v) > maxIDBytes || !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s must be at most %d characters of UTF-8", ErrInvalid, name, maxIDBytes)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s must not contain control characters", ErrInvalid, name)
		}
	}
	return nil
}

func checkText(name, v string, min, max int) error {
	if len(v) < min {
		return fmt.Errorf("%w: missing %s", ErrInvalid, name)
	}
	if len(v) > max || !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s must be at most %d characters of UTF-8", ErrInvalid, name, max)
	}
	return nil
}

func isJSONObject(b json.RawMessage) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return json.Valid(b)
		}
		return false
	}
	return false
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// truncate keeps client-supplied values short in error messages.
func truncate(s string) string {
	if len(s) > maxQuotedBytes {
		return s[:maxQuotedBytes] + "…"
	}
	return s
}
