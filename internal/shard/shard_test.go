package shard

import (
	"fmt"
	"sync"
	"testing"
)

func TestMap(t *testing.T) {
	t.Parallel()
	m := New[int](8)
	if m.Shards() != 8 {
		t.Fatalf("Shards = %d, want 8", m.Shards())
	}
	if _, ok := m.Load("a"); ok {
		t.Fatal("empty map has a")
	}
	m.Store("a", 1)
	m.Store("b", 2)
	m.With("a", func(_ int, mm map[string]int) { mm["a"]++ })
	if v, ok := m.Load("a"); !ok || v != 2 {
		t.Fatalf("a = %d, %v; want 2, true", v, ok)
	}
	m.With("b", func(_ int, mm map[string]int) { delete(mm, "b") })
	if _, ok := m.Load("b"); ok {
		t.Fatal("b still there after delete")
	}
	if m.Len() != 1 {
		t.Fatalf("Len = %d, want 1", m.Len())
	}
	var seen []string
	m.Range(func(mm map[string]int) {
		for k := range mm {
			seen = append(seen, k)
		}
	})
	if len(seen) != 1 || seen[0] != "a" {
		t.Fatalf("Range saw %v, want [a]", seen)
	}
}

// With hands out the same shard, with the same index, for a key every time,
// and a shard's map holds only its own keys.
func TestWithIsStablePerKey(t *testing.T) {
	t.Parallel()
	m := New[int](4)
	index := map[string]int{}
	for i := range 100 {
		k := fmt.Sprint("k", i)
		m.With(k, func(i int, mm map[string]int) { index[k] = i; mm[k] = i })
	}
	for k, want := range index {
		m.With(k, func(i int, mm map[string]int) {
			if i != want {
				t.Errorf("%s: shard %d, then %d", k, want, i)
			}
			for other, at := range mm {
				if at != i {
					t.Errorf("shard %d holds %s of shard %d", i, other, at)
				}
			}
		})
	}
	if m.Len() != 100 {
		t.Fatalf("Len = %d, want 100", m.Len())
	}
}

func TestNewAtLeastOneShard(t *testing.T) {
	t.Parallel()
	m := New[string](0)
	m.Store("x", "y")
	if v, _ := m.Load("x"); v != "y" || m.Shards() != 1 {
		t.Fatalf("got %q with %d shards", v, m.Shards())
	}
}

// Concurrent updates of one key are serialised (run with -race).
func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	m := New[int](2)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				m.With("n", func(_ int, mm map[string]int) { mm["n"]++ })
				m.Load("n")
				m.Len()
			}
		})
	}
	wg.Wait()
	if v, _ := m.Load("n"); v != 8000 {
		t.Fatalf("n = %d, want 8000", v)
	}
}
