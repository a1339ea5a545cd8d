package chat

import (
	"context"
	"sync"
	"time"
)

// ttlCache keeps values the send path reads from the store (users, blocks,
// mutes, group sizes, webhook endpoints), each for ttl at most, and drops
// a key at once when it changes. Changes are normally forgotten on every
// node through the broker; ttl covers a notice the best-effort broker
// dropped. A leaf lock: load runs without it.
type ttlCache[V any] struct {
	ttl time.Duration
	max int // entries; past it an arbitrary one is dropped (any is cheap to reload)

	mu  sync.Mutex
	gen uint64 // bumped by every forget, so a load racing one is not kept
	m   map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v  V
	at time.Time
}

func newTTLCache[V any](ttl time.Duration, max int) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, m: make(map[string]ttlEntry[V])}
}

// get returns key's value when it is fresh at now, else load's, kept unless
// key was forgotten while loading. When load fails, get returns the stale
// value (the zero V if none) with the error.
func (c *ttlCache[V]) get(ctx context.Context, now time.Time, key string, load func(context.Context) (V, error)) (V, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl && !now.Before(e.at) {
		return e.v, nil
	}
	v, err := load(ctx)
	if err != nil {
		return e.v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if _, had := c.m[key]; !had && len(c.m) >= c.max {
			for old := range c.m {
				delete(c.m, old)
				break
			}
		}
		c.m[key] = ttlEntry[V]{v: v, at: now}
	}
	c.mu.Unlock()
	return v, nil
}

func (c *ttlCache[V]) forget(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.gen++
	c.mu.Unlock()
}
