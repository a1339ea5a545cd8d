package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
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

func open(t testing.TB, url string, opts ...redis.Option) *redis.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := redis.Open(ctx, url, opts...)
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
		return func() broker.Broker { return open(t, url, redis.WithPrefix(prefix)) }
	})
}

func TestOpenBadURL(t *testing.T) {
	for _, url := range []string{"", "http://127.0.0.1:6379", "redis://127.0.0.1:1/0"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b, err := redis.Open(ctx, url)
		cancel()
		if err == nil {
			b.Close()
			t.Errorf("Open(%q): nil error", url)
		}
	}
}

// server is a private redis-server, so that an outage does not disturb anyone else.
type server struct {
	t    *testing.T
	bin  string
	port int
	cmd  *exec.Cmd
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(brokertest.Wait)
	for {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d did not come up: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) stop() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *server) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOutage(t *testing.T) {
	srv := &server{t: t, bin: testenv.Binary(t, "/usr/bin/redis-server"), port: freePort(t)}
	srv.start()
	t.Cleanup(srv.stop)

	log := slog.New(slog.NewTextHandler(brokertest.LogWriter{TB: t}, nil))
	opts := []redis.Option{redis.WithLogger(log), redis.WithHealthCheck(300 * time.Millisecond)}
	a, b := open(t, srv.url(), opts...), open(t, srv.url(), opts...)

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

	srv.stop()
	waitFor(t, "Ping to fail on both nodes", func() bool {
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

	srv.start()
	seen := map[string]bool{}
	waitFor(t, "delivery to resume on both subscriptions", func() bool {
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
	waitFor(t, "Ping to succeed", func() bool { return a.Ping(ctx) == nil && b.Ping(ctx) == nil })
	// Redis itself agrees: the node listens to exactly its live topics.
	raw := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", srv.port)})
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
	brokertest.Benchmark(bm, open(bm, url, redis.WithPrefix(prefix)), open(bm, url, redis.WithPrefix(prefix)))
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
	a := open(t, url, redis.WithPrefix(prefix))
	b := open(t, fmt.Sprintf("redis://%s/%d", proxy.Addr(), ro.DB), redis.WithPrefix(prefix),
		redis.WithLogger(log), redis.WithHealthCheck(200*time.Millisecond))

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
	waitFor(t, "Ping to fail behind a silent network", func() bool { return b.Ping(ctx) != nil })
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
	waitFor(t, "delivery to resume through a fresh connection", func() bool {
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
	waitFor(t, "Ping to succeed", func() bool { return b.Ping(ctx) == nil })
}
