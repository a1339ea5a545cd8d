// Package shard is a map from string keys split over shards, each behind
// its own lock, so that operations on different keys rarely contend. The
// registries of the realtime path are built on it: the gateway's sockets by
// user, the socketio namespace's sockets and rooms, the rate limiter's
// buckets (docs/architecture.md, Concurrency in the realtime transport).
//
// A shard's lock is held only while the function given to it runs; that
// function must not take a lock that a caller of this map may hold (see the
// lock order in docs/architecture.md).
package shard

import (
	"hash/maphash"
	"sync"
)

// Map is a sharded map[string]V. The zero value is not usable: call New.
type Map[V any] struct {
	seed   maphash.Seed
	shards []shard[V]
}

type shard[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

// New returns an empty map of n shards (at least 1).
func New[V any](n int) *Map[V] {
	sm := &Map[V]{seed: maphash.MakeSeed(), shards: make([]shard[V], max(n, 1))}
	for i := range sm.shards {
		sm.shards[i].m = make(map[string]V)
	}
	return sm
}

// Shards returns the number of shards, for state the caller keeps per shard
// (indexed as With reports).
func (sm *Map[V]) Shards() int { return len(sm.shards) }

func (sm *Map[V]) index(key string) int {
	return int(maphash.String(sm.seed, key) % uint64(len(sm.shards)))
}

// With calls fn with key's shard locked for writing. fn may read and change
// m, which holds the keys of that shard only; i is the shard's index.
func (sm *Map[V]) With(key string, fn func(i int, m map[string]V)) {
	i := sm.index(key)
	sh := &sm.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	fn(i, sh.m)
}

// View calls fn with key's shard locked for reading; fn must not change m.
func (sm *Map[V]) View(key string, fn func(m map[string]V)) {
	sh := &sm.shards[sm.index(key)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	fn(sh.m)
}

// Load returns key's value.
func (sm *Map[V]) Load(key string) (v V, ok bool) {
	sm.View(key, func(m map[string]V) { v, ok = m[key] })
	return v, ok
}

// Store sets key's value.
func (sm *Map[V]) Store(key string, v V) {
	sm.With(key, func(_ int, m map[string]V) { m[key] = v })
}

// Range calls fn for every shard in turn, each locked for reading while fn
// runs; fn must not change m. It sees each shard at one moment, not the
// whole map.
func (sm *Map[V]) Range(fn func(m map[string]V)) {
	for i := range sm.shards {
		sh := &sm.shards[i]
		sh.mu.RLock()
		fn(sh.m)
		sh.mu.RUnlock()
	}
}

// Len returns the number of keys.
func (sm *Map[V]) Len() int {
	n := 0
	sm.Range(func(m map[string]V) { n += len(m) })
	return n
}
