package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkUseNonce is what persisting a signed request's nonce costs.
func BenchmarkUseNonce(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	exp := time.Now().Add(5 * time.Minute)
	i := 0
	for b.Loop() {
		i++
		if ok, err := s.UseNonce(ctx, "app", fmt.Sprint("n", i), exp); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkUseNonceParallel is many signed requests at once: their nonces
// share commits.
func BenchmarkUseNonceParallel(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	exp := time.Now().Add(5 * time.Minute)
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, err := s.UseNonce(ctx, "app", fmt.Sprint("n", n.Add(1)), exp); err != nil || !ok {
				b.Error(ok, err)
				return
			}
		}
	})
}
