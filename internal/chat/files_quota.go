package chat

import (
	"context"
	"fmt"

	"github.com/chatd/chatd/internal/store"
)

// RecordFileWithin stores the record of an upload unless the app's recorded
// uploads would then pass maxAppBytes (0: no limit), in which case it
// records nothing and the error wraps store.ErrQuota.
func (s *Service) RecordFileWithin(ctx context.Context, f store.File, maxAppBytes int64) error {
	if err := s.store.CreateFileWithin(ctx, f, maxAppBytes); err != nil {
		return fmt.Errorf("record file: %w", err)
	}
	return nil
}

// FileUsage returns what an app's recorded uploads add up to.
func (s *Service) FileUsage(ctx context.Context, appID string) (store.FileUsage, error) {
	u, err := s.store.FileUsage(ctx, appID)
	if err != nil {
		return store.FileUsage{}, fmt.Errorf("file usage: %w", err)
	}
	return u, nil
}
