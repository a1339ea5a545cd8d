package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatd/chatd/internal/store"
)

// RecordFile records an upload whose bytes are already in blob storage.
func (s *Service) RecordFile(ctx context.Context, f store.File) error {
	if err := s.store.CreateFile(ctx, f); err != nil {
		return fmt.Errorf("record file: %w", err)
	}
	return nil
}

// File returns the record of one of the app's uploads; ErrNotFound when it
// has none by that id.
func (s *Service) File(ctx context.Context, appID, fid string) (store.File, error) {
	f, err := s.store.File(ctx, appID, fid)
	if errors.Is(err, store.ErrNotFound) {
		return store.File{}, fmt.Errorf("%w: file", ErrNotFound)
	}
	if err != nil {
		return store.File{}, fmt.Errorf("load file: %w", err)
	}
	return f, nil
}
