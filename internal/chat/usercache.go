package chat

import (
	"context"
	"sync"
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
type userCache struct {
	mu    sync.Mutex
	gen   uint64 // bumped by every forget, so a read racing one is not kept
	users map[string]cachedUser
}

type cachedUser struct {
	u  store.User
	at time.Time
}

func newUserCache() *userCache { return &userCache{users: make(map[string]cachedUser)} }

func userKey(appID, userID string) string { return appID + "\x00" + userID }

// get returns the user from memory when fresh, else from st, keeping it
// unless it was forgotten while being read.
func (c *userCache) get(ctx context.Context, st store.Store, now time.Time, appID, userID string) (store.User, error) {
	k := userKey(appID, userID)
	c.mu.Lock()
	e, ok := c.users[k]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Sub(e.at) < userCacheTTL && !now.Before(e.at) {
		return e.u, nil
	}
	u, err := st.User(ctx, appID, userID)
	if err != nil {
		return u, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if _, had := c.users[k]; !had && len(c.users) >= maxCachedUsers {
			for old := range c.users { // evict an arbitrary entry: any one is cheap to reload
				delete(c.users, old)
				break
			}
		}
		c.users[k] = cachedUser{u: u, at: now}
	}
	c.mu.Unlock()
	return u, nil
}

func (c *userCache) forget(appID, userID string) {
	c.mu.Lock()
	delete(c.users, userKey(appID, userID))
	c.gen++
	c.mu.Unlock()
}

// ForgetUser drops what this node remembers of the user, so that the next
// send reads their name and avatar from the store. The gateway calls it when
// another node reports a change (Notifier.UserChanged, TokensRevoked).
func (s *Service) ForgetUser(appID, userID string) {
	s.users.forget(appID, userID)
	s.hist.forgetSender(userID) // historycache.go
}
