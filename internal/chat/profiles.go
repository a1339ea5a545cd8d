package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/chatd/chatd/internal/store"
)

// User profiles: update without issuing a token, read, and delete an account.

// Profile is a user's profile as clients see it.
type Profile struct {
	UserID    string          `json:"userId"`
	Name      string          `json:"name"`
	AvatarURI string          `json:"avatarUri"`
	Extra     json.RawMessage `json:"extra"`
}

// ProfileInput is /user/update; nil fields are left as they are.
type ProfileInput struct {
	Name, AvatarURI *string
	Extra           json.RawMessage
}

// MaxUserInfoIDs bounds one /user/info or user-info request.
const MaxUserInfoIDs = 100

func wireProfile(p store.Profile) Profile {
	extra := p.Extra
	if len(extra) == 0 {
		extra = json.RawMessage(`{}`)
	}
	return Profile{UserID: p.UserID, Name: p.Name, AvatarURI: p.AvatarURI, Extra: extra}
}

// UpdateUser changes an existing user's name, avatar or extra. Session
// titles and the sendUser of later messages follow on every node.
func (s *Service) UpdateUser(ctx context.Context, appID, userID string, in ProfileInput) (Profile, error) {
	if err := checkUserID("userId", userID); err != nil {
		return Profile{}, err
	}
	if in.Name == nil && in.AvatarURI == nil && in.Extra == nil {
		return Profile{}, fmt.Errorf("%w: give name, avatarUri or extra", ErrInvalid)
	}
	if in.Name != nil {
		if err := checkText("name", *in.Name, 0, 256); err != nil {
			return Profile{}, err
		}
	}
	if in.AvatarURI != nil {
		if err := checkText("avatarUri", *in.AvatarURI, 0, 2048); err != nil {
			return Profile{}, err
		}
	}
	if err := checkExtra(in.Extra); err != nil {
		return Profile{}, err
	}
	p, err := s.store.UpdateProfile(ctx, appID, userID, store.ProfileUpdate{Name: in.Name, AvatarURI: in.AvatarURI, Extra: in.Extra})
	if errors.Is(err, store.ErrNotFound) {
		return Profile{}, fmt.Errorf("%w: %s", ErrUnknownUser, truncate(userID))
	}
	if err != nil {
		return Profile{}, fmt.Errorf("update user: %w", err)
	}
	s.users.forget(appID, userID)
	s.hist.forgetSender(userID)
	if s.notifier != nil {
		s.notifier.UserChanged(ctx, appID, userID)
	}
	return wireProfile(p), nil
}

// UserInfo returns profiles: any of the app's users to the app backend,
// and to a user only themselves and those who share a conversation with
// them (others are left out, as are unknown users).
func (s *Service) UserInfo(ctx context.Context, a Actor, userIDs []string) ([]Profile, error) {
	if len(userIDs) == 0 {
		return nil, fmt.Errorf("%w: userIds must be a non-empty array", ErrInvalid)
	}
	if len(userIDs) > MaxUserInfoIDs {
		return nil, fmt.Errorf("%w: at most %d userIds at once", ErrInvalid, MaxUserInfoIDs)
	}
	for _, id := range userIDs {
		if err := checkUserID("userIds", id); err != nil {
			return nil, err
		}
	}
	ids := dedupe(userIDs)
	if !a.backend() {
		visible := ids[:0:0]
		for _, id := range ids {
			ok := id == a.UserID
			if !ok {
				var err error
				if ok, err = s.store.ShareConversation(ctx, a.AppID, a.UserID, id); err != nil {
					return nil, fmt.Errorf("check contact: %w", err)
				}
			}
			if ok {
				visible = append(visible, id)
			}
		}
		ids = visible
	}
	out := []Profile{}
	if len(ids) == 0 {
		return out, nil
	}
	ps, err := s.store.Profiles(ctx, a.AppID, ids)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	for _, p := range ps {
		out = append(out, wireProfile(p))
	}
	return out, nil
}

// DeleteUser removes an account: its tokens are void, its sockets closed,
// its sessions gone; its messages stay (from a user without a name) or,
// with removeMessages, are deleted.
func (s *Service) DeleteUser(ctx context.Context, app store.App, userID string, removeMessages bool) error {
	if err := checkUserID("userId", userID); err != nil {
		return err
	}
	_, err := s.store.DeleteUser(ctx, app.ID, userID, removeMessages)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownUser, truncate(userID))
	}
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	s.users.forget(app.ID, userID)
	s.hist.forgetSender(userID)
	s.forgetPrivate(app.ID, userID)
	if s.notifier != nil {
		s.notifier.TokensRevoked(ctx, app.ID, userID)
		// Other nodes forget the name, and the cached pages of the user's
		// messages, which may be deleted (historycache.go).
		s.notifier.UserChanged(ctx, app.ID, userID)
	}
	// The store deleted the user's blocks: every node forgets its copy. (A
	// blocker's cached list may name the deleted user for a few seconds.)
	s.blocksChanged(ctx, app.ID, userID)
	return nil
}

// forgetPrivate drops this node's private conversations of a user.
func (s *Service) forgetPrivate(appID, userID string) {
	prefix := appID + "\x00"
	s.privMu.Lock()
	defer s.privMu.Unlock()
	for k := range s.private {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if a, b := splitPrivateKey(rest); a == userID || b == userID {
			delete(s.private, k)
		}
	}
}
