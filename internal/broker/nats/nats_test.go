package nats_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/broker/brokertest"
	"github.com/chatd/chatd/internal/broker/nats"
	"github.com/chatd/chatd/internal/testenv"
)

var seq atomic.Int64

// uniquePrefix keeps parallel runs on the shared server apart.
func uniquePrefix() string {
	return fmt.Sprintf("chatdtest.%d-%d.", time.Now().UnixNano(), seq.Add(1))
}

func open(t testing.TB, url string, opts nats.Options) *nats.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := nats.Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	url := testenv.URL(t, "CHATD_TEST_NATS")
	brokertest.Run(t, func(t *testing.T) func() broker.Broker {
		prefix := uniquePrefix()
		return func() broker.Broker { return open(t, url, nats.Options{Prefix: prefix}) }
	})
}

func TestTopicsWithSubjectCharacters(t *testing.T) {
	url := testenv.URL(t, "CHATD_TEST_NATS")
	prefix := uniquePrefix()
	a, b := open(t, url, nats.Options{Prefix: prefix}), open(t, url, nats.Options{Prefix: prefix})
	topics := []string{"", "a.b", "a.*", ">", "a b", "u:app:alice", "é", "a_2Eb"}
	got := make([]chan string, len(topics))
	for i, topic := range topics {
		got[i] = make(chan string, len(topics))
		if _, err := b.Subscribe(topic, func(p []byte) { got[i] <- string(p) }); err != nil {
			t.Fatalf("Subscribe(%q): %v", topic, err)
		}
	}
	for _, topic := range topics {
		if err := a.Publish(t.Context(), topic, []byte(topic)); err != nil {
			t.Fatalf("Publish(%q): %v", topic, err)
		}
	}
	// Wildcard-looking topics must not catch other topics: each channel gets exactly
	// its own payload, checked after a marker on the last topic arrives.
	for i, topic := range topics {
		select {
		case p := <-got[i]:
			if p != topic {
				t.Errorf("topic %q got %q", topic, p)
			}
		case <-time.After(brokertest.Wait):
			t.Fatalf("topic %q: nothing arrived", topic)
		}
	}
	if err := a.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, topic := range topics {
		select {
		case p := <-got[i]:
			t.Errorf("topic %q also got %q", topic, p)
		default:
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b, err := nats.Open(ctx, "nats://127.0.0.1:1", nats.Options{}); err == nil {
		b.Close()
		t.Fatal("Open of an unreachable server: nil error")
	}
}

// server is a private nats-server, so that an outage does not disturb anyone else.
func TestOutage(t *testing.T) {
	srv := testenv.StartServer(t, testenv.Binary(t, "/usr/sbin/nats-server"), func(port int) []string {
		return []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}
	})

	log := slog.New(slog.NewTextHandler(brokertest.LogWriter{TB: t}, nil))
	opts := nats.Options{Logger: log, MaxBackoff: 500 * time.Millisecond}
	url := fmt.Sprintf("nats://127.0.0.1:%d", srv.Port)
	a, b := open(t, url, opts), open(t, url, opts)

	got := make(chan string, 1024)
	if _, err := b.Subscribe("room", func(p []byte) { got <- "room:" + string(p) }); err != nil {
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
	err := a.Publish(pctx, "room", []byte("lost"))
	if err == nil || !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Publish during outage: %v, want ErrUnavailable", err)
	}
	if pctx.Err() != nil {
		t.Fatalf("Publish during outage returned only when its context expired: %v", err)
	}
	cancel()
	if _, err := b.Subscribe("late", func(p []byte) { got <- "late:" + string(p) }); err != nil {
		t.Fatalf("Subscribe during outage: %v", err)
	}

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
	if st := b.Stats(); st.Reconnects == 0 {
		t.Errorf("Reconnects = 0 after an outage")
	}
}

func BenchmarkNATS(bm *testing.B) {
	url := testenv.URL(bm, "CHATD_TEST_NATS")
	prefix := uniquePrefix()
	brokertest.Benchmark(bm, open(bm, url, nats.Options{Prefix: prefix}), open(bm, url, nats.Options{Prefix: prefix}))
}

// TestHalfOpen cuts the network silently: sockets stay open but carry nothing. Only
// the client's pings can notice; recovery needs a fresh connection.
func TestHalfOpen(t *testing.T) {
	url := testenv.URL(t, "CHATD_TEST_NATS")
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := brokertest.NewProxy(t, u.Host)
	prefix := uniquePrefix()
	log := slog.New(slog.NewTextHandler(brokertest.LogWriter{TB: t}, nil))
	a := open(t, url, nats.Options{Prefix: prefix})
	b := open(t, "nats://"+proxy.Addr(), nats.Options{Prefix: prefix, Logger: log,
		PingInterval: 200 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})

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
	// Once the client knows, Publish fails instead of buffering.
	testenv.WaitFor(t, "Publish to fail behind a silent network", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := b.Publish(pctx, "room", []byte("lost"))
		if pctx.Err() != nil {
			t.Fatalf("Publish returned only when its context expired: %v", err)
		}
		return errors.Is(err, broker.ErrUnavailable)
	})

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
