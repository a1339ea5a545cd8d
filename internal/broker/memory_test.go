package broker_test

import (
	"testing"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/broker/brokertest"
)

func TestMemory(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) func() broker.Broker {
		hub := broker.NewMemoryHub()
		return func() broker.Broker { return hub.Node() }
	})
}

func TestNewMemoryIsStandalone(t *testing.T) {
	a, b := broker.NewMemory(), broker.NewMemory()
	defer a.Close()
	defer b.Close()
	got := make(chan []byte, 1)
	if _, err := b.Subscribe("t", func(p []byte) { got <- p }); err != nil {
		t.Fatal(err)
	}
	mine := make(chan []byte, 1)
	if _, err := a.Subscribe("t", func(p []byte) { mine <- p }); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(t.Context(), "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	<-mine
	// Memory delivery is queued synchronously inside Publish, so the count is final.
	if n := b.Stats().Received; n != 0 {
		t.Fatalf("another standalone node received %d payloads", n)
	}
}

func BenchmarkMemory(b *testing.B) {
	hub := broker.NewMemoryHub()
	pub, sub := hub.Node(), hub.Node()
	defer pub.Close()
	defer sub.Close()
	brokertest.Benchmark(b, pub, sub)
}
