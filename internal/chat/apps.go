package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/chatd/chatd/internal/store"
)

// EnsureApp creates the app with a fixed id unless it exists (the demo's):
// an existing app is left as it is, secret included.
func (s *Service) EnsureApp(ctx context.Context, id, name, description string) error {
	if !store.ValidID(id) {
		return fmt.Errorf("%w: app id %q", ErrInvalid, truncate(id))
	}
	var secret [appSecretBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return fmt.Errorf("app secret: %w", err)
	}
	err := s.store.CreateApp(ctx, store.App{
		ID:          id,
		Name:        name,
		Description: description,
		Secret:      hex.EncodeToString(secret[:]),
		CreatedAt:   s.now(),
	})
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("create app: %w", err)
	}
	return nil
}

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

// SetAppLocked locks or unlocks the app: a locked app's requests and tokens
// are refused. ErrUnknownApp if there is no such app.
func (s *Service) SetAppLocked(ctx context.Context, appID string, locked bool) error {
	status := 0
	if locked {
		status = 1
	}
	err := s.store.SetAppStatus(ctx, appID, status)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrUnknownApp, appID)
	}
	if err != nil {
		return fmt.Errorf("set app status: %w", err)
	}
	return nil
}
