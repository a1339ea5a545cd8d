package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newAt(rate float64, burst int) (*Limiter, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := New(rate, burst)
	l.now = c.now
	return l, c
}

func TestBurstThenRate(t *testing.T) {
	t.Parallel()
	l, c := newAt(10, 5)
	for i := 0; i < 5; i++ {
		if !l.Allow("k") {
			t.Fatalf("burst event %d refused", i)
		}
	}
	if l.Allow("k") {
		t.Fatal("event past the burst allowed")
	}
	if !l.Allow("other") {
		t.Fatal("keys are not independent")
	}
	c.add(100 * time.Millisecond) // one token at 10/s
	if !l.Allow("k") || l.Allow("k") {
		t.Fatal("refill is not one token per 100ms")
	}
	c.add(time.Hour)
	for i := 0; i < 5; i++ {
		if !l.Allow("k") {
			t.Fatal("bucket does not refill to the burst")
		}
	}
	if l.Allow("k") {
		t.Fatal("bucket refilled past the burst")
	}
}

func TestDisabled(t *testing.T) {
	t.Parallel()
	l := New(0, 10)
	for i := 0; i < 1000; i++ {
		if !l.Allow("k") {
			t.Fatal("a disabled limiter refused")
		}
	}
}

func TestIdleBucketsAreForgotten(t *testing.T) {
	t.Parallel()
	l, c := newAt(100, 10)
	for i := 0; i < 1000; i++ {
		l.Allow(fmt.Sprint("user", i))
	}
	if l.Len() != 1000 {
		t.Fatalf("%d buckets; want 1000", l.Len())
	}
	c.add(10 * time.Second)
	for i := 0; i < 2000; i++ { // touches every shard, so each sweeps
		l.Allow(fmt.Sprint("fresh", i))
	}
	if n := l.Len(); n != 2000 {
		t.Fatalf("%d buckets after sweeping; idle ones should be gone", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	l := New(1, 100) // 100 tokens now, refilling slowly
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if l.Allow("shared") {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	// 400 attempts against a burst of 100 at 1/s: about 100 pass (a few more if the test is slow).
	if allowed < 100 || allowed > 110 {
		t.Fatalf("%d allowed; want about 100", allowed)
	}
}

// TestPeek: Peek tells whether a token is there and never takes one.
func TestPeek(t *testing.T) {
	l, c := newAt(1, 2)
	for range 5 {
		if !l.Peek("k") {
			t.Fatal("Peek refused a full bucket")
		}
	}
	l.Allow("k")
	l.Allow("k")
	if l.Peek("k") {
		t.Fatal("Peek saw a token in an empty bucket")
	}
	c.add(time.Second)
	if !l.Peek("k") || !l.Allow("k") || l.Peek("k") {
		t.Fatal("after a second: want exactly one token")
	}
	if !(*Limiter)(nil).Peek("k") {
		t.Fatal("a nil limiter refused")
	}
}
