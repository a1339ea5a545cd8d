package redis_test

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/broker/redis"
	"github.com/chatd/chatd/internal/testenv"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRedisOwnAndPeer is a chatd cluster's delivery through Redis: node
// a publishes, a subscriber on a (its own gateway) and one on b get each
// payload. cpu-ns/op is both nodes' CPU (this process, not redis-server)
// per payload, one publish at a time as at a low rate.
func BenchmarkRedisOwnAndPeer(bm *testing.B) {
	url := testenv.URL(bm, "CHATD_TEST_REDIS")
	prefix := uniquePrefix(bm)
	a, b := open(bm, url, redis.Options{Prefix: prefix}), open(bm, url, redis.Options{Prefix: prefix})
	var got atomic.Int64
	done := make(chan struct{}, 1)
	h := func([]byte) {
		if got.Add(1)%2 == 0 {
			done <- struct{}{}
		}
	}
	if _, err := a.Subscribe("t", h); err != nil {
		bm.Fatal(err)
	}
	if _, err := b.Subscribe("t", h); err != nil {
		bm.Fatal(err)
	}
	payload := make([]byte, 600)
	ctx := context.Background()
	start := cpuTime()
	for bm.Loop() {
		if err := a.Publish(ctx, "t", payload); err != nil {
			bm.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			bm.Fatal("payload lost")
		}
	}
	bm.ReportMetric(float64(cpuTime()-start)/float64(bm.N), "cpu-ns/op")
}
