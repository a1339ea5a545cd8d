package chat

import (
	"context"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// userCacheTTL bounds how long a user row read for the send path is trusted.
// Changes are normally forgotten at once on every node (GetToken and
// RevokeTokens tell the notifier, which tells every node through the
// broker); the bound covers an invalidation the best-effort broker dropped.
const userCacheTTL = 5 * time.Second

// maxCachedUsers bounds the cache (about 200 bytes an entry).
const maxCachedUsers = 100_000

// userCache remembers the users the send path reads for names, avatars and
// the target's existence. It is never used to check a token: Authenticate
// reads the token version from the store, and a socket authenticated before
// a revocation is disconnected through the broker.
type userCache struct{ c *ttlCache[store.User] }

func newUserCache() userCache {
	return userCache{newTTLCache[store.User](userCacheTTL, maxCachedUsers)}
}

func userKey(appID, userID string) string { return appID + "\x00" + userID }

func (u userCache) get(ctx context.Context, st store.Store, now time.Time, appID, userID string) (store.User, error) {
	return u.c.get(ctx, now, userKey(appID, userID), func(ctx context.Context) (store.User, error) {
		return st.User(ctx, appID, userID)
	})
}

func (u userCache) forget(appID, userID string) { u.c.forget(userKey(appID, userID)) }

// ForgetUser drops what this node remembers of the user, so that the next
// send reads their name and avatar from the store. The gateway calls it when
// another node reports a change (Notifier.UserChanged, TokensRevoked).
func (s *Service) ForgetUser(appID, userID string) {
	s.users.forget(appID, userID)
	s.hist.forgetSender(userID) // historycache.go
}
