package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUseNonce(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	later := time.Now().Add(time.Minute)
	for _, c := range []struct {
		app, nonce string
		expires    time.Time
		want       bool
	}{
		{"a", "n1", later, true},
		{"a", "n1", later, false}, // a replay
		{"b", "n1", later, true},  // apps are separate
		{"a", "n2", time.Now().Add(-time.Second), true},
		{"a", "n2", later, true}, // an expired nonce may be used again
		{"a", "n2", later, false},
	} {
		got, err := s.UseNonce(ctx, c.app, c.nonce, c.expires)
		if err != nil || got != c.want {
			t.Fatalf("UseNonce(%s, %s) = %v, %v; want %v", c.app, c.nonce, got, err, c.want)
		}
	}
}

// TestUseNonceRace: of many nodes using one nonce at once, exactly one wins.
func TestUseNonceRace(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.UseNonce(context.Background(), "app", "same", time.Now().Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d winners; want 1", wins.Load())
	}
}
