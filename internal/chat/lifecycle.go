package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chatd/chatd/internal/store"
)

// The lifecycle of a sent message: recall, edit, delete-for-me, reactions
// (docs/socket-protocol.md, "Message updates"). Every change is stored with
// the conversation's next change version and pushed as an Update; a device
// that missed the push catches up with SyncChanges.

// Lifecycle defaults, used when a field of Options is zero.
const (
	DefaultRecallWindow = 2 * time.Minute
	DefaultEditWindow   = 24 * time.Hour
	DefaultMaxReactions = 20 // distinct emoji per message
	maxEmojiBytes       = 32
	maxMentions         = 100
	quoteRunes          = 60 // of a quoted message's text
)

// LifecycleOptions configure recall, edit and reactions.
type LifecycleOptions struct {
	RecallWindow time.Duration // a sender may recall within this; <0: never
	EditWindow   time.Duration // a sender may edit within this; <0: never
	MaxReactions int           // distinct emoji per message
}

func (o LifecycleOptions) withDefaults() LifecycleOptions {
	if o.RecallWindow == 0 {
		o.RecallWindow = DefaultRecallWindow
	}
	if o.EditWindow == 0 {
		o.EditWindow = DefaultEditWindow
	}
	if o.MaxReactions <= 0 {
		o.MaxReactions = DefaultMaxReactions
	}
	return o
}

// Actor is who changes a message: a user (over a socket or the HTTP API on
// their behalf), or the app backend itself (UserID "").
type Actor struct {
	AppID  string
	UserID string // "": the app
	Origin string // the socket that asked, skipped when pushing; "" for HTTP
}

// ConvRef names a conversation: by the actor's session id (sockets), or by
// conversationType and targetId as the HTTP API does.
type ConvRef struct {
	SID      string
	Type     int
	TargetID string
}

// Update is a committed change to a message, pushed as message-updated to
// every connected device of Recipients that declared the message-updated
// capability.
type Update struct {
	AppID      string
	Origin     string
	Message    *Message      // the message's new state (recall, edit, reaction)
	Hidden     *HiddenUpdate // delete-for-me or clear: the actor's own devices only
	Actor      string        // the user who made the change; "" for the app
	Reaction   *ReactionOp   // set for react and unreact
	Recipients []Recipient
}

// ReactionOp is the reaction change an Update carries, so that each device
// of the reacting user knows its own "me" flag.
type ReactionOp struct {
	UserID string `json:"userId"`
	Emoji  string `json:"emoji"`
	Added  bool   `json:"added"`
}

// HiddenUpdate is a range of messages a user hid from themselves.
type HiddenUpdate struct {
	MsgID   string `json:"msgId,omitempty"` // set when one message was deleted
	FromSeq int64  `json:"fromSeq"`
	ToSeq   int64  `json:"toSeq"`
	Version int64  `json:"version"`
	Cleared bool   `json:"cleared,omitempty"` // the whole conversation up to ToSeq
}

// Changes is the answer of SyncChanges.
type Changes struct {
	Messages []Message      `json:"messages"` // changed messages, in version order
	Hidden   []HiddenUpdate `json:"hidden"`   // the caller's hidden ranges, in version order
	Version  int64          `json:"version"`  // pass as afterVersion next time
	More     bool           `json:"more"`     // more changes wait: call again
}

// Updater is told about committed message changes. The gateway implements
// it; a Notifier that does not is simply not told.
type Updater interface {
	MessageUpdated(ctx context.Context, u Update)
}

// mayMentionAll reports whether a send may mention everyone in the group:
// the app backend's sends (HTTP, no origin socket) may, and over a socket
// the group's owner and admins.
func (s *Service) mayMentionAll(ctx context.Context, conv store.Conversation, in SendInput) (bool, error) {
	if in.Origin == "" {
		return true, nil
	}
	return s.canModerate(ctx, conv, in.SenderID)
}

// seen reports whether the actor may see message seq of conv: the app sees
// everything, a group member what the visibility rule shows them.
func (s *Service) seen(ctx context.Context, conv store.Conversation, userID string, seq int64) bool {
	return userID == "" || conv.Type != store.Group || s.visible(ctx, conv.ID, userID, seq)
}

// privateSIDs remembers which private conversation a user's session id
// names, so that an edit or a reaction costs no more than a send, which
// keeps its private conversations too (Service.private): a private
// conversation's members never change, so an entry never goes stale. Only
// the conversation's identity is used from it (id, type, key), not its
// counters. Group sessions are looked up every time: membership decides.
// The map is emptied when it reaches maxPrivateSIDs.
type privateSIDs struct {
	mu sync.Mutex
	m  map[string]store.Conversation // by app, user and sid
}

const maxPrivateSIDs = 100_000

func (c *privateSIDs) get(key string) (store.Conversation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conv, ok := c.m[key]
	return conv, ok
}

func (c *privateSIDs) put(key string, conv store.Conversation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxPrivateSIDs {
		c.m = make(map[string]store.Conversation)
	}
	c.m[key] = conv
}

// resolve finds the conversation ref names and checks that the actor may act
// in it: a user must be a member, the app may act in any of its own.
func (s *Service) resolve(ctx context.Context, a Actor, ref ConvRef, msgID string) (store.Conversation, error) {
	if a.UserID != "" {
		if err := checkUserID("userId", a.UserID); err != nil {
			return store.Conversation{}, err
		}
	}
	if ref.SID != "" {
		key := a.AppID + "\x00" + a.UserID + "\x00" + ref.SID
		if conv, ok := s.privSIDs.get(key); ok {
			return conv, nil
		}
		conv, _, err := s.session(ctx, a.AppID, a.UserID, ref.SID)
		if err == nil && conv.Type == store.Private {
			s.privSIDs.put(key, conv)
		}
		return conv, err
	}
	if err := checkUserID("targetId", ref.TargetID); err != nil {
		return store.Conversation{}, err
	}
	if ref.Type != store.Private && ref.Type != store.Group {
		return store.Conversation{}, fmt.Errorf("%w: conversationType must be 1 (private) or 2 (group)", ErrInvalid)
	}
	var conv store.Conversation
	var err error
	switch {
	case ref.Type == store.Group || a.UserID != "":
		key := ref.TargetID
		if ref.Type == store.Private {
			key = store.PrivateKey(a.UserID, ref.TargetID)
		}
		conv, err = s.store.ConversationByKey(ctx, a.AppID, ref.Type, key)
	default:
		// The app acting on a private message: the message names its pair.
		if !store.ValidID(msgID) {
			return store.Conversation{}, fmt.Errorf("%w: msgId must be a message id", ErrInvalid)
		}
		var id string
		if id, err = s.store.MessageConversation(ctx, a.AppID, msgID); err == nil {
			if conv, err = s.store.Conversation(ctx, id); err == nil {
				if x, y := splitPrivateKey(conv.Key); conv.Type != store.Private || (x != ref.TargetID && y != ref.TargetID) {
					err = store.ErrNotFound
				}
			}
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Conversation{}, fmt.Errorf("%w: no such conversation with %s", ErrNotFound, truncate(ref.TargetID))
	}
	if err != nil {
		return store.Conversation{}, fmt.Errorf("load conversation: %w", err)
	}
	if a.UserID != "" {
		if _, err := s.store.Member(ctx, conv.ID, a.UserID); err != nil {
			if errors.Is(err, store.ErrNotMember) {
				return store.Conversation{}, fmt.Errorf("%w: %s is not in %s", ErrNotMember, truncate(a.UserID), truncate(ref.TargetID))
			}
			return store.Conversation{}, fmt.Errorf("load member: %w", err)
		}
	}
	return conv, nil
}

// allowChange meters message changes with the send rate limits: an edit
// or a reaction costs what a send costs.
func (s *Service) allowChange(a Actor) error {
	if a.UserID != "" && !s.userSends.Allow(a.AppID+"\x00"+a.UserID) {
		s.stats.rateLimited.Add(1)
		return fmt.Errorf("%w: %s is changing messages too fast", ErrRateLimited, truncate(a.UserID))
	}
	if !s.appSends.Allow(a.AppID) {
		s.stats.rateLimited.Add(1)
		return fmt.Errorf("%w: this app is sending too fast", ErrRateLimited)
	}
	return nil
}

// change runs fn on the message in one store transaction and pushes the
// result. A change that finds nothing to do (fn returns store.ErrUnchanged)
// succeeds with the current state and pushes nothing.
func (s *Service) change(ctx context.Context, a Actor, ref ConvRef, msgID string, op *ReactionOp, fn func(tx store.MessageTx, conv store.Conversation, m *store.Message) error) (Message, error) {
	if !store.ValidID(msgID) {
		return Message{}, fmt.Errorf("%w: msgId must be a message id", ErrInvalid)
	}
	conv, err := s.resolve(ctx, a, ref, msgID)
	if err != nil {
		return Message{}, err
	}
	if err := s.allowChange(a); err != nil {
		return Message{}, err
	}
	m, err := s.store.UpdateMessage(ctx, conv.ID, msgID, func(tx store.MessageTx, m *store.Message) error {
		if !s.seen(ctx, conv, a.UserID, m.Seq) {
			return store.ErrNotFound
		}
		return fn(tx, conv, m)
	})
	unchanged := errors.Is(err, store.ErrUnchanged)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Message{}, fmt.Errorf("%w: unknown message %s", ErrNotFound, msgID)
	case err != nil && !unchanged:
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrTooLarge) {
			return Message{}, err
		}
		return Message{}, fmt.Errorf("update message: %w", err)
	}
	one := []Message{s.wireMessage(conv, m, s.now())}
	if err := s.withQuotes(ctx, conv, a.UserID, []store.Message{m}, one); err != nil {
		return Message{}, err
	}
	wire := one[0]
	if a.UserID != "" {
		s.markMine(ctx, conv, a.UserID, []*Message{&wire})
	}
	if !unchanged {
		s.pushUpdate(ctx, conv, Update{AppID: a.AppID, Origin: a.Origin, Message: &wire, Actor: a.UserID, Reaction: op})
	}
	return wire, nil
}

// pushUpdate tells the updater about u, addressed to every member of conv
// (or, for a hidden range, to the actor alone).
func (s *Service) pushUpdate(ctx context.Context, conv store.Conversation, u Update) {
	up, ok := s.notifier.(Updater)
	if !ok {
		return
	}
	var members []store.Member
	if conv.Type == store.Private { // never change: the send path keeps them
		s.privMu.Lock()
		members = s.private[conv.AppID+"\x00"+conv.Key].members
		s.privMu.Unlock()
	}
	if members == nil {
		var err error
		if members, _, err = s.store.Members(ctx, conv.ID); err != nil {
			// The change is committed: devices recover it with sync-changes.
			return
		}
	}
	for _, m := range members {
		if u.Hidden != nil && m.UserID != u.Actor {
			continue
		}
		u.Recipients = append(u.Recipients, Recipient{UserID: m.UserID, Session: SessionRef{SID: m.SID}})
	}
	up.MessageUpdated(ctx, u)
}

// Recall deletes a message's content for everyone, keeping its msgId and
// seq. Its sender may recall within the recall window; group moderators and
// the app at any time. Recalling twice is harmless.
func (s *Service) Recall(ctx context.Context, a Actor, ref ConvRef, msgID string) (Message, error) {
	ctx, ev := s.messageEvent(ctx, a.AppID, EventMessageRecalled) // webhooks.go
	return s.change(ctx, a, ref, msgID, nil, func(tx store.MessageTx, conv store.Conversation, m *store.Message) error {
		if m.Meta.Recalled() {
			return store.ErrUnchanged
		}
		if a.UserID != "" {
			mod, err := s.canModerate(ctx, conv, a.UserID)
			if err != nil {
				return err
			}
			if !mod {
				if m.SenderID != a.UserID {
					return fmt.Errorf("%w: not your message", ErrForbidden)
				}
				if w := s.life.RecallWindow; w < 0 || s.now().Sub(m.CreatedAt) > w {
					return fmt.Errorf("%w: the recall window (%s) has passed", ErrForbidden, w)
				}
			}
		}
		m.Content = store.RecalledContent
		m.Meta = store.MessageMeta{RecalledBy: a.UserID, RecalledAt: s.now().UnixMilli()}
		s.fillMessageEvent(ev, conv, m, a.UserID)
		return tx.Forget(ctx)
	})
}

// Edit replaces the content of the actor's own TEXT or CUSTOM message within
// the edit window. The same content again is harmless.
func (s *Service) Edit(ctx context.Context, a Actor, ref ConvRef, msgID string, content json.RawMessage) (Message, error) {
	if a.UserID == "" {
		return Message{}, fmt.Errorf("%w: missing userId: only a message's sender may edit it", ErrInvalid)
	}
	if len(content) > s.limits.MaxContentBytes {
		return Message{}, fmt.Errorf("%w: content is larger than %d bytes", ErrTooLarge, s.limits.MaxContentBytes)
	}
	if !isJSONObject(content) {
		return Message{}, fmt.Errorf("%w: content must be an object", ErrInvalid)
	}
	ctx, ev := s.messageEvent(ctx, a.AppID, EventMessageEdited) // webhooks.go
	return s.change(ctx, a, ref, msgID, nil, func(_ store.MessageTx, conv store.Conversation, m *store.Message) error {
		switch {
		case m.SenderID != a.UserID:
			return fmt.Errorf("%w: not your message", ErrForbidden)
		case m.Meta.Recalled():
			return fmt.Errorf("%w: the message was recalled", ErrForbidden)
		case m.Type != TypeText && m.Type != TypeCustom:
			return fmt.Errorf("%w: only text and custom messages can be edited", ErrInvalid)
		}
		if w := s.life.EditWindow; w < 0 || s.now().Sub(m.CreatedAt) > w {
			return fmt.Errorf("%w: the edit window (%s) has passed", ErrForbidden, w)
		}
		if string(m.Content) == string(content) {
			return store.ErrUnchanged
		}
		m.Content = content
		m.Meta.EditCount++
		m.Meta.EditedAt = s.now().UnixMilli()
		s.fillMessageEvent(ev, conv, m, a.UserID)
		return nil
	})
}

// React adds (on) or removes the actor's emoji reaction. Doing either twice
// is harmless.
func (s *Service) React(ctx context.Context, a Actor, ref ConvRef, msgID, emoji string, on bool) (Message, error) {
	if a.UserID == "" {
		return Message{}, fmt.Errorf("%w: missing userId", ErrInvalid)
	}
	if err := checkEmoji(emoji); err != nil {
		return Message{}, err
	}
	op := &ReactionOp{UserID: a.UserID, Emoji: emoji, Added: on}
	return s.change(ctx, a, ref, msgID, op, func(tx store.MessageTx, _ store.Conversation, m *store.Message) error {
		if m.Meta.Recalled() {
			return fmt.Errorf("%w: the message was recalled", ErrForbidden)
		}
		if on && len(m.Meta.Reactions) >= s.life.MaxReactions &&
			!slices.ContainsFunc(m.Meta.Reactions, func(r store.Reaction) bool { return r.Emoji == emoji }) {
			return fmt.Errorf("%w: too many reactions: a message holds at most %d different emoji", ErrInvalid, s.life.MaxReactions)
		}
		changed, err := tx.SetReaction(ctx, a.UserID, emoji, on)
		if err != nil {
			return err
		}
		if !changed {
			return store.ErrUnchanged
		}
		m.Meta.Reactions, err = tx.Reactions(ctx)
		return err
	})
}

// checkEmoji accepts a short string without control characters: one emoji,
// possibly several code points long.
func checkEmoji(e string) error {
	if e == "" {
		return fmt.Errorf("%w: missing emoji", ErrInvalid)
	}
	if len(e) > maxEmojiBytes || !utf8.ValidString(e) || strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: emoji must be at most %d bytes of UTF-8", ErrInvalid, maxEmojiBytes)
	}
	return nil
}

// DeleteForMe hides one message from the actor on all their devices; others
// are unaffected.
func (s *Service) DeleteForMe(ctx context.Context, a Actor, ref ConvRef, msgID string) (HiddenUpdate, error) {
	if a.UserID == "" {
		return HiddenUpdate{}, fmt.Errorf("%w: missing userId", ErrInvalid)
	}
	if !store.ValidID(msgID) {
		return HiddenUpdate{}, fmt.Errorf("%w: msgId must be a message id", ErrInvalid)
	}
	conv, err := s.resolve(ctx, a, ref, msgID)
	if err != nil {
		return HiddenUpdate{}, err
	}
	m, err := s.store.MessageByID(ctx, conv.ID, msgID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !s.seen(ctx, conv, a.UserID, m.Seq) {
		return HiddenUpdate{}, fmt.Errorf("%w: unknown message %s", ErrNotFound, msgID)
	}
	if err != nil {
		return HiddenUpdate{}, fmt.Errorf("load message: %w", err)
	}
	return s.hide(ctx, a, conv, m.Seq, m.Seq, msgID)
}

// ClearSession hides every message of the conversation so far from the
// actor, on all their devices, and marks it read.
func (s *Service) ClearSession(ctx context.Context, a Actor, ref ConvRef) (HiddenUpdate, error) {
	if a.UserID == "" {
		return HiddenUpdate{}, fmt.Errorf("%w: missing userId", ErrInvalid)
	}
	conv, err := s.resolve(ctx, a, ref, "")
	if err != nil {
		return HiddenUpdate{}, err
	}
	return s.hide(ctx, a, conv, 1, -1, "")
}

func (s *Service) hide(ctx context.Context, a Actor, conv store.Conversation, from, to int64, msgID string) (HiddenUpdate, error) {
	if err := s.allowChange(a); err != nil {
		return HiddenUpdate{}, err
	}
	h, err := s.store.Hide(ctx, conv.ID, a.UserID, from, to)
	if errors.Is(err, store.ErrNotMember) {
		return HiddenUpdate{}, fmt.Errorf("%w: %s", ErrNotMember, truncate(a.UserID))
	}
	if err != nil {
		return HiddenUpdate{}, fmt.Errorf("hide: %w", err)
	}
	u := HiddenUpdate{MsgID: msgID, FromSeq: h.FromSeq, ToSeq: h.ToSeq, Version: h.Version, Cleared: to < 0}
	s.pushUpdate(ctx, conv, Update{AppID: a.AppID, Origin: a.Origin, Hidden: &u, Actor: a.UserID})
	if to < 0 && s.notifier != nil {
		if m, err := s.store.Member(ctx, conv.ID, a.UserID); err == nil {
			s.notifier.SessionRead(ctx, ReadMark{AppID: a.AppID, UserID: a.UserID, SID: m.SID, ReadSeq: h.ToSeq, Origin: a.Origin})
		}
	}
	return u, nil
}

// SyncChanges returns what changed in the caller's session after
// afterVersion: changed messages (in their current state) and the caller's
// hidden ranges. Applying its result twice is harmless.
func (s *Service) SyncChanges(ctx context.Context, appID, userID, sid string, afterVersion int64, limit int) (Changes, error) {
	conv, _, err := s.session(ctx, appID, userID, sid)
	if err != nil {
		return Changes{}, err
	}
	if afterVersion < 0 {
		return Changes{}, fmt.Errorf("%w: afterVersion must not be negative", ErrInvalid)
	}
	n, err := s.limit(limit)
	if err != nil {
		return Changes{}, err
	}
	// The counter first: every change up to it has committed, so the
	// reads below see them all, and a caller with nothing left to fetch
	// may move its cursor to it (past changes only others see).
	ss, err := s.store.Session(ctx, conv.ID, userID)
	if err != nil {
		return Changes{}, fmt.Errorf("sync changes: %w", err)
	}
	msgs, err := s.store.Changes(ctx, conv.ID, userID, afterVersion, n)
	if err != nil {
		return Changes{}, fmt.Errorf("sync changes: %w", err)
	}
	hidden, err := s.store.HiddenRanges(ctx, conv.ID, userID, afterVersion)
	if err != nil {
		return Changes{}, fmt.Errorf("sync changes: %w", err)
	}
	out := Changes{Version: afterVersion, More: len(msgs) == n, Hidden: []HiddenUpdate{}}
	if out.More {
		out.Version = msgs[len(msgs)-1].Version
	}
	for _, h := range hidden {
		if out.More && h.Version > out.Version {
			break
		}
		out.Hidden = append(out.Hidden, HiddenUpdate{FromSeq: h.FromSeq, ToSeq: h.ToSeq, Version: h.Version, Cleared: h.FromSeq == 1 && h.FromSeq != h.ToSeq})
		out.Version = max(out.Version, h.Version)
	}
	for _, m := range msgs {
		out.Version = max(out.Version, m.Version)
	}
	if !out.More {
		out.Version = max(out.Version, ss.ChangeSeq)
	}
	out.Messages, err = s.viewerMessages(ctx, conv, userID, msgs)
	if err != nil {
		return Changes{}, err
	}
	return out, nil
}

// visiblePage returns a page of what userID sees of the conversation: up to
// limit messages before seq from (newest first), or after it (oldest first)
// when forward, leaving out the ranges userID hid. m is userID's
// membership read with conv from the store, or nil (see history). Only a
// reader who may have hidden messages (store.Member.HidMessages) pays the
// lookup of their hidden ranges.
func (s *Service) visiblePage(ctx context.Context, conv store.Conversation, m *store.Member, userID string, from int64, limit int, forward bool) ([]store.Message, error) {
	var hidden []store.Hidden
	var err error
	if m == nil || m.HidMessages {
		if hidden, err = s.store.HiddenRanges(ctx, conv.ID, userID, 0); err != nil {
			return nil, err
		}
	}
	var page []store.Message
	for {
		msgs, err := s.readPage(ctx, conv, m, userID, from, limit, forward) // historycache.go
		if err != nil || len(hidden) == 0 {
			return msgs, err
		}
		for _, m := range msgs {
			if i := slices.IndexFunc(hidden, func(h store.Hidden) bool { return h.Covers(m.Seq) }); i < 0 {
				page = append(page, m)
			}
		}
		if len(page) >= limit || len(msgs) < limit {
			return page[:min(len(page), limit)], nil
		}
		// A full page, partly hidden: go on past it, skipping whole
		// hidden ranges at its end (a cleared conversation is one range).
		from = msgs[len(msgs)-1].Seq
		for _, h := range hidden {
			if h.Covers(from) {
				if forward {
					from = max(from, h.ToSeq)
				} else {
					from = min(from, h.FromSeq)
				}
			}
		}
		if !forward && from <= 1 {
			return page, nil
		}
	}
}

// viewerMessages turns stored messages into what userID sees: quotes of
// replies filled in, and "me" set on the reactions userID made.
func (s *Service) viewerMessages(ctx context.Context, conv store.Conversation, userID string, msgs []store.Message) ([]Message, error) {
	out := s.wireMessages(conv, msgs)
	if err := s.withQuotes(ctx, conv, userID, msgs, out); err != nil {
		return nil, err
	}
	wptrs := make([]*Message, len(out))
	for i := range out {
		wptrs[i] = &out[i]
	}
	s.markMine(ctx, conv, userID, wptrs)
	return out, nil
}

// withQuotes fills the quotes of the replies among msgs (out[i] is the
// wire form of msgs[i]) that userID may see, from one query; a page without
// replies costs none. For the app (userID "") the quotes are what the
// reply's sender sees.
func (s *Service) withQuotes(ctx context.Context, conv store.Conversation, userID string, msgs []store.Message, out []Message) error {
	var want []int64
	for _, m := range msgs {
		if m.ReplySeq > 0 && !slices.Contains(want, m.ReplySeq) {
			want = append(want, m.ReplySeq)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if userID == "" {
		userID = msgs[0].SenderID
	}
	orig, err := s.store.MessagesBySeq(ctx, conv.ID, userID, want)
	if err != nil {
		return fmt.Errorf("quoted messages: %w", err)
	}
	for i, m := range msgs {
		if m.ReplySeq == 0 {
			continue
		}
		j := slices.IndexFunc(orig, func(o store.Message) bool { return o.Seq == m.ReplySeq })
		if j >= 0 {
			out[i].ReplyTo, out[i].Quote = orig[j].ID, quoteOf(orig[j])
		}
	}
	return nil
}

// quoteOf is the small quote a reply carries: enough to render it without
// fetching the original. A recalled original is quoted as recalled.
func quoteOf(o store.Message) *Quote {
	q := &Quote{MsgID: o.ID, Seq: o.Seq, SenderUserID: o.SenderID, SendUser: UserRef{Name: o.SenderName, AvatarURI: o.SenderAvatar},
		MessageType: o.Type, Recalled: o.Meta.Recalled()}
	if !q.Recalled {
		q.Excerpt = excerpt(PreviewText(o.Content), quoteRunes)
	}
	return q
}

// excerpt cuts s to at most n runes, marking the cut.
func excerpt(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// markMine sets "me" on the reactions userID made, from one query for the
// messages that have reactions.
func (s *Service) markMine(ctx context.Context, conv store.Conversation, userID string, msgs []*Message) {
	var seqs []int64
	for _, m := range msgs {
		for i, r := range m.Reactions {
			if r.Count > len(r.UserIDs) { // a sample: ask the store
				seqs = append(seqs, m.Seq)
				break
			}
			m.Reactions[i].Me = slices.Contains(r.UserIDs, userID)
		}
	}
	if len(seqs) == 0 || userID == "" {
		return
	}
	mine, err := s.store.Reacted(ctx, conv.ID, userID, seqs)
	if err != nil {
		return // "me" is a convenience: the counts are right without it
	}
	for _, m := range msgs {
		for i := range m.Reactions {
			m.Reactions[i].Me = slices.Contains(mine[m.Seq], m.Reactions[i].Emoji)
		}
	}
}

// replyAndMentions checks a send's replyTo and mentions and returns the
// store's form of them, with the original replied to (nil: none). Every
// mentioned user must be a member.
func (s *Service) replyAndMentions(ctx context.Context, in SendInput, conv store.Conversation, members []store.Member, n *store.NewMessage) (*store.Message, error) {
	var orig *store.Message
	if in.ReplyTo != "" {
		if !store.ValidID(in.ReplyTo) {
			return nil, fmt.Errorf("%w: replyTo must be a message id", ErrInvalid)
		}
		m, err := s.store.MessageByID(ctx, conv.ID, in.ReplyTo)
		if errors.Is(err, store.ErrNotFound) || err == nil && !s.seen(ctx, conv, in.SenderID, m.Seq) {
			return nil, fmt.Errorf("%w: unknown message %s in this conversation", ErrNotFound, in.ReplyTo)
		}
		if err != nil {
			return nil, fmt.Errorf("load replied message: %w", err)
		}
		orig, n.ReplySeq = &m, m.Seq
	}
	if len(in.Mentions) == 0 && !in.MentionAll {
		return orig, nil
	}
	if in.MentionAll && conv.Type != store.Group {
		return nil, fmt.Errorf("%w: mentionAll is for groups", ErrInvalid)
	}
	if in.MentionAll {
		ok, err := s.mayMentionAll(ctx, conv, in)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: only the group's owner and admins may mention everyone", ErrForbidden)
		}
	}
	if len(in.Mentions) > 0 {
		if members == nil {
			var err error
			if members, _, err = s.store.Members(ctx, conv.ID); err != nil {
				return nil, fmt.Errorf("load members: %w", err)
			}
		}
		for _, u := range in.Mentions {
			if !slices.ContainsFunc(members, func(m store.Member) bool { return m.UserID == u }) {
				return nil, fmt.Errorf("%w: cannot mention %s: not a member of this conversation", ErrInvalid, truncate(u))
			}
		}
		n.Mentions = dedupe(in.Mentions)
	}
	n.MentionAll = in.MentionAll
	return orig, nil
}

// checkMentions validates the shape of a send's mentions.
func checkMentions(in SendInput) error {
	if len(in.Mentions) > maxMentions {
		return fmt.Errorf("%w: at most %d mentions", ErrInvalid, maxMentions)
	}
	for _, u := range in.Mentions {
		if err := checkUserID("mentions", u); err != nil {
			return err
		}
	}
	return nil
}
