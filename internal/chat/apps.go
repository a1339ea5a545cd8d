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
