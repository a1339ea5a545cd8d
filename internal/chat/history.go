package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatd/chatd/internal/store"
)

// Who sees a group's history: by default a member sees the messages sent
// since they last joined. A group's setting shows every member the whole
// history; a grant at join shows it to those members only. The store applies
// the rule in every read (see Visibility in package store).

// SetGroupHistory sets whether every member of the group sees its whole
// history, whenever they joined.
func (s *Service) SetGroupHistory(ctx context.Context, appID, groupID string, full bool) error {
	if err := checkUserID("groupId", groupID); err != nil {
		return err
	}
	err := s.store.SetGroupFullHistory(ctx, appID, groupID, full)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownGroup, truncate(groupID))
	}
	if err != nil {
		return fmt.Errorf("set group history: %w", err)
	}
	return nil
}

// GrantHistory shows the whole history of the group to these members
// (until they leave it). Users that are not members are ignored.
func (s *Service) GrantHistory(ctx context.Context, appID, groupID string, userIDs []string) error {
	if err := checkUserID("groupId", groupID); err != nil {
		return err
	}
	if err := s.checkUserIDs(userIDs); err != nil {
		return err
	}
	err := s.store.SetMembersFullHistory(ctx, appID, groupID, userIDs, true)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownGroup, truncate(groupID))
	}
	if err != nil {
		return fmt.Errorf("grant history: %w", err)
	}
	return nil
}

// visible reports whether userID may see message seq of the conversation,
// by the store's rule (a read error counts as not visible).
func (s *Service) visible(ctx context.Context, convID, userID string, seq int64) bool {
	msgs, err := s.store.History(ctx, convID, userID, seq+1, 1)
	return err == nil && len(msgs) == 1 && msgs[0].Seq == seq
}
