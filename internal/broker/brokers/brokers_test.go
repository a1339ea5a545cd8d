package brokers_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/broker/brokers"
	"github.com/chatd/chatd/internal/broker/nats"
	"github.com/chatd/chatd/internal/broker/redis"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		spec, env string
		check     func(broker.Broker) bool
	}{
		{"", "", func(b broker.Broker) bool { _, ok := b.(*broker.Memory); return ok }},
		{"memory", "", func(b broker.Broker) bool { _, ok := b.(*broker.Memory); return ok }},
		{"", "CHATD_TEST_REDIS", func(b broker.Broker) bool { _, ok := b.(*redis.Broker); return ok }},
		{"", "CHATD_TEST_NATS", func(b broker.Broker) bool { _, ok := b.(*nats.Broker); return ok }},
	}
	for _, tc := range tests {
		spec := tc.spec
		if tc.env != "" {
			spec = os.Getenv(tc.env)
			if spec == "" {
				continue // the backend packages' own tests enforce CI=true
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b, err := brokers.Open(ctx, spec, nil)
		cancel()
		if err != nil {
			t.Fatalf("Open(%q): %v", spec, err)
		}
		if !tc.check(b) {
			t.Errorf("Open(%q) = %T", spec, b)
		}
		if err := b.Ping(context.Background()); err != nil {
			t.Errorf("Open(%q).Ping: %v", spec, err)
		}
		b.Close()
	}
}

func TestOpenUnknown(t *testing.T) {
	_, err := brokers.Open(context.Background(), "kafka://user:secret@host:9092", nil)
	if err == nil {
		t.Fatal("unknown scheme: nil error")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

// TestOpenHidesCredentials: whatever fails, the broker's password is never
// in the error chatd prints.
func TestOpenHidesCredentials(t *testing.T) {
	for _, spec := range []string{
		"kafka://user:hunter2@host:9092",
		"redis://user:hunter2@127.0.0.1:notaport/0",
		"redis://user:hunter2@127.0.0.1:1/0",
		"rediss://:hunter2@127.0.0.1:1/0",
		"nats://user:hunter2@127.0.0.1:1",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := brokers.Open(ctx, spec, nil)
		cancel()
		if err == nil {
			b.Close()
			t.Fatalf("Open(%s) succeeded", spec)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%s): error leaks the password: %v", spec, err)
		}
	}
}
