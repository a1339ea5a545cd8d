// Package ratelimit keeps token buckets by key (an app, a user, an IP) for
// chatd's abuse limits. Buckets live in a sharded map and are forgotten once
// they have been idle long enough to be full again, so memory follows the
// number of recently active keys, not every key ever seen.
package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

// Limiter allows Rate events per second per key, with bursts up to Burst.
// A nil *Limiter or a Rate <= 0 allows everything.
type Limiter struct {
	rate   float64
	burst  float64
	now    func() time.Time
	seed   maphash.Seed
	shards [32]shard
}

type shard struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter; rate <= 0 disables it (returns nil).
func New(rate float64, burst int) *Limiter {
	if rate <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	l := &Limiter{rate: rate, burst: float64(burst), now: time.Now, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]*bucket)
	}
	return l
}

// Allow takes one token from key's bucket and reports whether there was one.
func (l *Limiter) Allow(key string) bool {
	if l == nil {
		return true
	}
	sh, now := l.shard(key), l.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l.sweepLocked(sh, now)
	b := sh.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		sh.buckets[key] = b
	}
	b.tokens, b.last = l.refilled(b, now), now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Peek reports whether key's bucket holds a token, without taking it: a
// check before costly work whose failures alone are counted (with Allow).
func (l *Limiter) Peek(key string) bool {
	if l == nil {
		return true
	}
	sh, now := l.shard(key), l.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.buckets[key]
	return b == nil || l.refilled(b, now) >= 1
}

func (l *Limiter) shard(key string) *shard {
	return &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
}

// refilled is b's token count at now.
func (l *Limiter) refilled(b *bucket, now time.Time) float64 {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		return min(l.burst, b.tokens+el*l.rate)
	}
	return b.tokens
}

// sweepLocked drops buckets that have refilled completely: forgetting them
// changes nothing, since a new bucket starts full.
func (l *Limiter) sweepLocked(sh *shard, now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	if now.Sub(sh.sweep) < full+time.Second {
		return
	}
	sh.sweep = now
	for k, b := range sh.buckets {
		if now.Sub(b.last) > full {
			delete(sh.buckets, k)
		}
	}
}

// Len is the number of buckets held (for tests and metrics).
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}
