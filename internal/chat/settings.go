package chat

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/chatd/chatd/internal/store"
)

// Conversation settings and blocking (docs/socket-protocol.md, Conversation
// settings; README.md, Conversation settings).

// ErrBlocked refuses a private send from a user the target blocked.
var ErrBlocked = errors.New("blocked")

const (
	// maxDraftBytes bounds a session's draft.
	maxDraftBytes = 4096
	// maxBlockIDs bounds the users blocked or unblocked in one call.
	maxBlockIDs = 100
	// settingsCacheTTL bounds how long a node trusts its copy of a user's
	// blocks or a conversation's mutes. Changes are forgotten at once on
	// every node (the notifier tells them through the broker); the bound
	// covers an invalidation the best-effort broker dropped.
	settingsCacheTTL = 5 * time.Second
	// maxCachedSettings bounds each cache's entries.
	maxCachedSettings = 100_000
)

// SessionSettings is what a user set on one of their sessions, as pushed in
// session-updated and answered by session-update and session-hide.
type SessionSettings struct {
	SID      string `json:"sid"`
	Pinned   bool   `json:"pinned"`
	PinnedAt int64  `json:"pinnedAt,omitempty"` // Unix ms of the pin; the most recent pin lists first
	Muted    bool   `json:"muted"`
	Hidden   bool   `json:"hidden"` // hidden until the next message
	Draft    string `json:"draft"`
}

// SessionPatch changes some settings of a session; nil fields are kept.
type SessionPatch struct {
	Pinned *bool
	Muted  *bool
	Draft  *string
}

// SessionUpdate tells the user's devices that a session's settings changed.
type SessionUpdate struct {
	AppID          string
	UserID         string
	ConversationID string
	Origin         string // the socket that changed it, skipped; "" for HTTP
	Settings       SessionSettings
}

// SettingsNotifier is a Notifier that also syncs settings to every node:
// session-updated to the user's devices, and the caches to forget.
type SettingsNotifier interface {
	SessionUpdated(ctx context.Context, u SessionUpdate)
	BlocksChanged(ctx context.Context, appID, userID string)
}

// UnreadTotal is the unread count of a user's list, muted and hidden
// sessions excepted.
type UnreadTotal struct {
	Unread          int64 `json:"unread"`
	MentionedUnread int64 `json:"mentionedUnread"`
	Sessions        int   `json:"sessions"` // sessions with unread messages that count
}

func wireSettings(sid string, st store.SessionSettings) SessionSettings {
	out := SessionSettings{SID: sid, Pinned: !st.PinnedAt.IsZero(), Muted: st.Muted, Hidden: st.Hidden, Draft: st.Draft}
	if out.Pinned {
		out.PinnedAt = store.UnixMS(st.PinnedAt)
	}
	return out
}

// UpdateSession changes the caller's pin, mute or draft of session sid.
func (s *Service) UpdateSession(ctx context.Context, appID, userID, sid string, p SessionPatch, origin string) (SessionSettings, error) {
	if p.Pinned == nil && p.Muted == nil && p.Draft == nil {
		return SessionSettings{}, fmt.Errorf("%w: give at least one of pinned, muted, draft", ErrInvalid)
	}
	if p.Draft != nil && (len(*p.Draft) > maxDraftBytes || !utf8.ValidString(*p.Draft)) {
		return SessionSettings{}, fmt.Errorf("%w: draft must be at most %d bytes of UTF-8", ErrInvalid, maxDraftBytes)
	}
	return s.changeSession(ctx, appID, userID, sid, store.SettingsPatch{Pinned: p.Pinned, Muted: p.Muted, Draft: p.Draft}, origin)
}

// HideSession takes session sid out of the caller's list until its next
// message.
func (s *Service) HideSession(ctx context.Context, appID, userID, sid, origin string) (SessionSettings, error) {
	return s.changeSession(ctx, appID, userID, sid, store.SettingsPatch{Hide: true}, origin)
}

func (s *Service) changeSession(ctx context.Context, appID, userID, sid string, p store.SettingsPatch, origin string) (SessionSettings, error) {
	if err := checkUserID("userId", userID); err != nil {
		return SessionSettings{}, err
	}
	conv, _, err := s.session(ctx, appID, userID, sid)
	if err != nil {
		return SessionSettings{}, err
	}
	p.At = s.now()
	st, err := s.store.UpdateSessionSettings(ctx, appID, userID, conv.ID, p)
	if err != nil {
		return SessionSettings{}, fmt.Errorf("update session settings: %w", err)
	}
	out := wireSettings(sid, st)
	if p.Muted != nil {
		s.mutes.forget(conv.ID)
	}
	if sn, ok := s.notifier.(SettingsNotifier); ok {
		sn.SessionUpdated(ctx, SessionUpdate{AppID: appID, UserID: userID, ConversationID: conv.ID, Origin: origin, Settings: out})
	}
	return out, nil
}

// withSettings applies the user's settings to their session list: hidden
// sessions leave it, pinned ones come first (most recent pin first), and
// each carries pinned, muted and its draft.
func (s *Service) withSettings(ctx context.Context, appID, userID string, rows []store.SessionRow, out []Session) ([]Session, error) {
	sets, err := s.store.SessionSettings(ctx, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("session settings: %w", err)
	}
	if len(sets) == 0 {
		return out, nil
	}
	kept := out[:0]
	pinnedAt := make(map[string]int64)
	for i, r := range rows {
		st, ok := sets[r.ConversationID]
		if !ok {
			kept = append(kept, out[i])
			continue
		}
		if !st.Visible(r.LastSeq) {
			continue
		}
		w := wireSettings(out[i].SID, st)
		out[i].Pinned, out[i].PinnedAt, out[i].Muted, out[i].Draft = w.Pinned, w.PinnedAt, w.Muted, w.Draft
		if w.Pinned {
			pinnedAt[w.SID] = w.PinnedAt
		}
		kept = append(kept, out[i])
	}
	if len(pinnedAt) > 0 {
		slices.SortStableFunc(kept, func(a, b Session) int {
			return cmp.Compare(pinnedAt[b.SID], pinnedAt[a.SID]) // unpinned are 0: after every pin
		})
	}
	return kept, nil
}

// UnreadTotal counts the unread messages of the user's list, muted and
// hidden sessions excepted: the badge of the app's icon.
func (s *Service) UnreadTotal(ctx context.Context, appID, userID string) (UnreadTotal, error) {
	list, err := s.Sessions(ctx, appID, userID)
	if err != nil {
		return UnreadTotal{}, err
	}
	var t UnreadTotal
	for _, ss := range list {
		if ss.Muted || ss.Unread == 0 {
			continue
		}
		t.Unread += ss.Unread
		t.MentionedUnread += ss.MentionedUnread
		t.Sessions++
	}
	return t, nil
}

// Block records that userID blocks others: their private messages to
// userID are refused. Groups are unaffected.
func (s *Service) Block(ctx context.Context, appID, userID string, others []string) error {
	others, err := s.checkBlockIDs(userID, others)
	if err != nil {
		return err
	}
	if err := s.store.Block(ctx, appID, userID, others, s.now()); err != nil {
		return fmt.Errorf("block: %w", err)
	}
	s.blocksChanged(ctx, appID, userID)
	return nil
}

// Unblock lets others send to userID again.
func (s *Service) Unblock(ctx context.Context, appID, userID string, others []string) error {
	others, err := s.checkBlockIDs(userID, others)
	if err != nil {
		return err
	}
	if err := s.store.Unblock(ctx, appID, userID, others); err != nil {
		return fmt.Errorf("unblock: %w", err)
	}
	s.blocksChanged(ctx, appID, userID)
	return nil
}

// Blocked lists the users userID blocks.
func (s *Service) Blocked(ctx context.Context, appID, userID string) ([]string, error) {
	if err := checkUserID("userId", userID); err != nil {
		return nil, err
	}
	out, err := s.store.Blocked(ctx, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("blocked: %w", err)
	}
	return out, nil
}

func (s *Service) checkBlockIDs(userID string, others []string) ([]string, error) {
	if err := checkUserID("userId", userID); err != nil {
		return nil, err
	}
	if len(others) == 0 || len(others) > maxBlockIDs {
		return nil, fmt.Errorf("%w: blockedUserIds must list 1 to %d users", ErrInvalid, maxBlockIDs)
	}
	for _, o := range others {
		if err := checkUserID("blockedUserIds", o); err != nil {
			return nil, err
		}
		if o == userID {
			return nil, fmt.Errorf("%w: a user cannot block themselves", ErrInvalid)
		}
	}
	return dedupe(others), nil
}

func (s *Service) blocksChanged(ctx context.Context, appID, userID string) {
	s.blocks.forget(userKey(appID, userID))
	if sn, ok := s.notifier.(SettingsNotifier); ok {
		sn.BlocksChanged(ctx, appID, userID)
	}
}

// checkBlocked refuses a private send from senderID to a target who
// blocked them. It reads the target's blocks from this node's cache.
func (s *Service) checkBlocked(ctx context.Context, appID, senderID, targetID string) error {
	if senderID == targetID {
		return nil
	}
	blocked, err := s.userBlocks(ctx, appID, targetID)
	if err != nil {
		return fmt.Errorf("load blocks: %w", err)
	}
	if slices.Contains(blocked, senderID) {
		return fmt.Errorf("%w: %s does not accept your messages", ErrBlocked, truncate(targetID))
	}
	return nil
}

// blockedBy reports whether blocker blocked userID, from this node's cache
// of blocker's blocks. It says yes when the blocks cannot be read: what it
// guards (typing, read receipts in private conversations) is ephemeral,
// and the blocker must not get it (docs/socket-protocol.md, Blocking).
func (s *Service) blockedBy(ctx context.Context, appID, blocker, userID string) bool {
	return s.checkBlocked(ctx, appID, userID, blocker) != nil
}

// userBlocks returns the users userID blocked, from this node's cache.
func (s *Service) userBlocks(ctx context.Context, appID, userID string) ([]string, error) {
	return s.blocks.get(ctx, s.now(), userKey(appID, userID), func(ctx context.Context) ([]string, error) {
		return s.store.Blocked(ctx, appID, userID)
	})
}

// markMuted marks the recipients who muted the conversation, so that their
// devices show the message without a badge. A failure to read the mutes
// leaves the pushes unmarked: the session list still knows.
func (s *Service) markMuted(ctx context.Context, conversationID string, rs []Recipient) {
	muted, err := s.mutes.get(ctx, s.now(), conversationID, func(ctx context.Context) ([]string, error) {
		return s.store.MutedMembers(ctx, conversationID)
	})
	if err != nil || len(muted) == 0 {
		return
	}
	if len(muted) <= 8 {
		for i := range rs {
			rs[i].Muted = slices.Contains(muted, rs[i].UserID)
		}
		return
	}
	set := make(map[string]bool, len(muted)) // a large group where many muted it
	for _, u := range muted {
		set[u] = true
	}
	for i := range rs {
		rs[i].Muted = set[rs[i].UserID]
	}
}

// ForgetBlocks drops this node's copy of the user's blocks; the gateway
// calls it when a node reports a change (SettingsNotifier.BlocksChanged).
func (s *Service) ForgetBlocks(appID, userID string) { s.blocks.forget(userKey(appID, userID)) }

// ForgetMutes drops this node's copy of a conversation's mutes
// (SettingsNotifier.SessionUpdated).
func (s *Service) ForgetMutes(conversationID string) { s.mutes.forget(conversationID) }

// LastSeen is when a user's last socket closed.
type LastSeen = store.LastSeen

// SaveLastSeen stores when users were last online (the gateway's presence
// batches them).
func (s *Service) SaveLastSeen(ctx context.Context, seen []LastSeen) error {
	if err := s.store.SaveLastSeen(ctx, seen); err != nil {
		return fmt.Errorf("save last seen: %w", err)
	}
	return nil
}

// LastSeen returns when users of an app were last online, as stored.
func (s *Service) LastSeen(ctx context.Context, appID string, userIDs []string) (map[string]time.Time, error) {
	out, err := s.store.LastSeen(ctx, appID, userIDs)
	if err != nil {
		return nil, fmt.Errorf("last seen: %w", err)
	}
	return out, nil
}
