package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/broker/brokertest"
	"github.com/chatd/chatd/internal/broker/redis"
	"github.com/chatd/chatd/internal/testenv"
)

var seq atomic.Int64

// uniquePrefix keeps parallel runs on the shared server apart.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("chatdtest:%d:%d:%d:", time.Now().UnixNano(), seq.Add(1), len(t.Name()))
}

func open(t testing.TB, url string, opts redis.Options) *redis.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := redis.Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	url := testenv.URL(t, "CHATD_TEST_REDIS")
	brokertest.Run(t, func(t *testing.T) func() broker.Broker {
		prefix := uniquePrefix(t)
		return func() broker.Broker { return open(t, url, redis.Options{Prefix: prefix}) }
	})
}

func TestOpenBadURL(t *testing.T) {
	for _, url := range []string{"", "http://127.0.0.1:6379", "redis://127.0.0.1:1/0"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b, err := redis.Open(ctx, url, redis.Options{})
		cancel()
		if err == nil {
			b.Close()
			t.Errorf("Open(%q): nil error", url)
		}
	}
}

// server is a private redis-server, so that an outage does not disturb anyone else.
func TestOutage(t *testing.T) {
	srv := testenv.StartServer(t, testenv.Binary(t, "/usr/bin/redis-server"), func(port int) []string {
		return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""}
	})

	log := slog.New(slog.NewTextHandler(brokertest.LogWriter{TB: t}, nil))
	opts := redis.Options{Logger: log, HealthCheck: 300 * time.Millisecond}
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", srv.Port)
	a, b := open(t, url, opts), open(t, url, opts)

	got := make(chan string, 1024)
	if _, err := b.Subscribe("room", func(p []byte) { got <- "room:" + string(p) }); err != nil {
		t.Fatal(err)
	}
	leave, err := b.Subscribe("gone", func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := a.Publish(ctx, "room", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "room:before" {
		t.Fatalf("got %q", m)
	}

	srv.Stop()
	testenv.WaitFor(t, "Ping to fail on both nodes", func() bool {
		return a.Ping(ctx) != nil && b.Ping(ctx) != nil
	})
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = a.Publish(pctx, "room", []byte("lost"))
	if err == nil || !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Publish during outage: %v, want ErrUnavailable", err)
	}
	if pctx.Err() != nil {
		t.Fatalf("Publish during outage returned only when its context expired: %v", err)
	}
	cancel()
	// Subscribing during the outage succeeds and takes effect once Redis is back.
	if _, err := b.Subscribe("late", func(p []byte) { got <- "late:" + string(p) }); err != nil {
		t.Fatalf("Subscribe during outage: %v", err)
	}
	leave() // during the outage: must not come back with the reconnect

	srv.Start()
	seen := map[string]bool{}
	testenv.WaitFor(t, "delivery to resume on both subscriptions", func() bool {
		_ = a.Publish(ctx, "room", []byte("after"))
		_ = a.Publish(ctx, "late", []byte("after"))
		for {
			select {
			case m := <-got:
				seen[m] = true
				continue
			default:
			}
			break
		}
		return seen["room:after"] && seen["late:after"]
	})
	testenv.WaitFor(t, "Ping to succeed", func() bool { return a.Ping(ctx) == nil && b.Ping(ctx) == nil })
	// Redis itself agrees: the node listens to exactly its live topics.
	raw := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", srv.Port)})
	defer raw.Close()
	numsub, err := raw.PubSubNumSub(ctx, "chatd:room", "chatd:late", "chatd:gone").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"chatd:room": 1, "chatd:late": 1, "chatd:gone": 0}
	for ch, n := range want {
		if numsub[ch] != n {
			t.Errorf("PUBSUB NUMSUB %s = %d, want %d", ch, numsub[ch], n)
		}
	}
	if st := b.Stats(); st.Reconnects == 0 {
		t.Errorf("Reconnects = 0 after an outage")
	}
}

func BenchmarkRedis(bm *testing.B) {
	url := testenv.URL(bm, "CHATD_TEST_REDIS")
	prefix := uniquePrefix(bm)
	brokertest.Benchmark(bm, open(bm, url, redis.Options{Prefix: prefix}), open(bm, url, redis.Options{Prefix: prefix}))
}

// TestHalfOpen cuts the network silently: sockets stay open but carry nothing. Only
// the broker's own health check can notice; recovery needs a fresh connection.
func TestHalfOpen(t *testing.T) {
	url := testenv.URL(t, "CHATD_TEST_REDIS")
	ro, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := brokertest.NewProxy(t, ro.Addr)
	prefix := uniquePrefix(t)
	log := slog.New(slog.NewTextHandler(brokertest.LogWriter{TB: t}, nil))
	a := open(t, url, redis.Options{Prefix: prefix})
	b := open(t, fmt.Sprintf("redis://%s/%d", proxy.Addr(), ro.DB), redis.Options{
		Prefix: prefix, Logger: log, HealthCheck: 200 * time.Millisecond})

	got := make(chan string, 1024)
	if _, err := b.Subscribe("room", func(p []byte) { got <- string(p) }); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := a.Publish(ctx, "room", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "before" {
		t.Fatalf("got %q", m)
	}

	proxy.Blackhole()
	testenv.WaitFor(t, "Ping to fail behind a silent network", func() bool { return b.Ping(ctx) != nil })
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = b.Publish(pctx, "room", []byte("lost"))
	if err == nil {
		t.Fatal("Publish behind a silent network: nil error")
	}
	if pctx.Err() != nil {
		t.Fatalf("Publish behind a silent network returned only when its context expired: %v", err)
	}
	cancel()

	proxy.Heal()
	testenv.WaitFor(t, "delivery to resume through a fresh connection", func() bool {
		_ = a.Publish(ctx, "room", []byte("after"))
		for {
			select {
			case m := <-got:
				if m == "after" {
					return true
				}
				continue
			default:
			}
			return false
		}
	})
	testenv.WaitFor(t, "Ping to succeed", func() bool { return b.Ping(ctx) == nil })
}
