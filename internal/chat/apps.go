package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatd/chatd/internal/store"
)

// SetSignRoute turns the app's route-bound signatures on or off: when on,
// each signed request must also sign its method and path, so that a request
// signed for one route is refused on every other (see SECURITY.md).
func (s *Service) SetSignRoute(ctx context.Context, appID string, on bool) error {
	if !store.ValidID(appID) {
		return fmt.Errorf("%w: %q", ErrUnknownApp, truncate(appID))
	}
	err := s.store.SetAppSignRoute(ctx, appID, on)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownApp, appID)
	}
	if err != nil {
		return fmt.Errorf("set sign route: %w", err)
	}
	return nil
}
