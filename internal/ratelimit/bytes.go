package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Bytes meters a volume (bytes uploaded) per key with a token bucket that
// may go into debt: a transfer is admitted while the key's bucket is not
// empty, and the bytes it moves are charged as they come, so a transfer is
// never cut off half-way, and the key's next transfer waits until the debt
// is repaid. Over time a key moves at most Rate bytes per second, plus Burst
// and one transfer. A nil *Bytes admits everything.
type Bytes struct {
	rate, burst float64
	now         func() time.Time
	mu          sync.Mutex
	buckets     map[string]*bucket
	sweep       time.Time
}

// NewBytes returns a meter of rate bytes per second with bursts up to burst
// bytes; rate <= 0 disables it (returns nil).
func NewBytes(rate float64, burst int64) *Bytes {
	if rate <= 0 {
		return nil
	}
	return &Bytes{rate: rate, burst: float64(max(burst, 1)), now: time.Now, buckets: make(map[string]*bucket)}
}

// refill brings b up to now and returns its tokens.
func (l *Bytes) refill(b *bucket, now time.Time) float64 {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
	return b.tokens
}

// Admit reports whether key may start a transfer, and if not, how long
// until it may.
func (l *Bytes) Admit(key string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return true, 0
	}
	if t := l.refill(b, now); t <= 0 {
		wait := (-t + 1) / l.rate
		return false, time.Duration(math.Ceil(wait)) * time.Second
	}
	return true, 0
}

// Charge takes n bytes from key's bucket, into debt if need be.
func (l *Bytes) Charge(key string, n int64) {
	if l == nil || n <= 0 {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	b.tokens -= float64(n)
}

// sweepLocked forgets buckets that have refilled completely (a new bucket
// starts full, so nothing changes), at most once per refill period.
func (l *Bytes) sweepLocked(now time.Time) {
	if now.Sub(l.sweep).Seconds() < l.burst/l.rate+1 {
		return
	}
	l.sweep = now
	for k, b := range l.buckets {
		if l.refill(b, now) >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// Len is the number of buckets held (for tests and metrics).
func (l *Bytes) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
