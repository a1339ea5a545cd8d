// Package ratelimit keeps token buckets by key (an app, a user, an IP) for
// chatd's abuse limits. Buckets live in a sharded map and are forgotten once
// they have been idle long enough to be full again, so memory follows the
// number of recently active keys, not every key ever seen.
package ratelimit

import (
	"time"

	"github.com/chatd/chatd/internal/shard"
)

// Limiter allows Rate events per second per key, with bursts up to Burst.
// A nil *Limiter or a Rate <= 0 allows everything.
type Limiter struct {
	rate    float64
	burst   float64
	now     func() time.Time
	buckets *shard.Map[*bucket]
	sweep   []time.Time // per shard: when it was last swept; guarded by the shard's lock
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
	l := &Limiter{rate: rate, burst: float64(burst), now: time.Now, buckets: shard.New[*bucket](32)}
	l.sweep = make([]time.Time, l.buckets.Shards())
	return l
}

// Allow takes one token from key's bucket and reports whether there was one.
func (l *Limiter) Allow(key string) bool {
	if l == nil {
		return true
	}
	now := l.now()
	var ok bool
	l.buckets.With(key, func(i int, buckets map[string]*bucket) {
		l.sweepLocked(i, buckets, now)
		b := buckets[key]
		if b == nil {
			b = &bucket{tokens: l.burst, last: now}
			buckets[key] = b
		}
		b.tokens, b.last = l.refilled(b, now), now
		if ok = b.tokens >= 1; ok {
			b.tokens--
		}
	})
	return ok
}

// Peek reports whether key's bucket holds a token, without taking it: a
// check before costly work whose failures alone are counted (with Allow).
func (l *Limiter) Peek(key string) bool {
	if l == nil {
		return true
	}
	now := l.now()
	ok := true
	l.buckets.With(key, func(_ int, buckets map[string]*bucket) {
		if b := buckets[key]; b != nil {
			ok = l.refilled(b, now) >= 1
		}
	})
	return ok
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
func (l *Limiter) sweepLocked(shard int, buckets map[string]*bucket, now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	if now.Sub(l.sweep[shard]) < full+time.Second {
		return
	}
	l.sweep[shard] = now
	for k, b := range buckets {
		if now.Sub(b.last) > full {
			delete(buckets, k)
		}
	}
}

// Len is the number of buckets held (for tests and metrics).
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	return l.buckets.Len()
}
