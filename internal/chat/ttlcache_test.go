package chat

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTTLCache(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	loads := 0
	val := 1
	load := func(context.Context) (int, error) { loads++; return val, nil }
	c := newTTLCache[int](5*time.Second, 2)

	steps := []struct {
		name      string
		at        time.Duration
		forget    string
		key       string
		want      int
		wantLoads int
	}{
		{"first read loads", 0, "", "a", 1, 1},
		{"fresh read is kept", 4 * time.Second, "", "a", 1, 1},
		{"expired read loads again", 5 * time.Second, "", "a", 1, 2},
		{"a clock going back loads again", -time.Second, "", "a", 1, 3},
		{"forget drops the key", 0, "a", "a", 1, 4},
	}
	for _, s := range steps {
		if s.forget != "" {
			c.forget(s.forget)
		}
		got, err := c.get(ctx, t0.Add(s.at), s.key, load)
		if err != nil || got != s.want || loads != s.wantLoads {
			t.Fatalf("%s: got %d, %v after %d loads; want %d after %d", s.name, got, err, loads, s.want, s.wantLoads)
		}
	}

	// A load racing a forget of its key is not kept.
	val = 2
	got, _ := c.get(ctx, t0.Add(time.Minute), "a", func(ctx context.Context) (int, error) {
		c.forget("a")
		return load(ctx)
	})
	if got != 2 {
		t.Fatalf("racing load: got %d, want 2", got)
	}
	if _, ok := c.m["a"]; ok {
		t.Fatal("a load that raced a forget was kept")
	}

	// A failing load returns the stale value with the error.
	c.get(ctx, t0, "b", load)
	boom := errors.New("store down")
	got, err := c.get(ctx, t0.Add(time.Hour), "b", func(context.Context) (int, error) { return 0, boom })
	if !errors.Is(err, boom) || got != 2 {
		t.Fatalf("failing load: got %d, %v; want the stale 2 and the error", got, err)
	}

	// The cache stays within max entries.
	for _, k := range []string{"c", "d", "e"} {
		c.get(ctx, t0, k, load)
	}
	if len(c.m) > 2 {
		t.Fatalf("%d entries, want at most 2", len(c.m))
	}
}
