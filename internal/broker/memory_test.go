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

// TestMemoryLocalValues checks the in-process path: values reach every node's
// SubscribeValue handlers as is, bytes from Publish reach them as []byte, and
// Subscribe's handlers only ever see bytes.
func TestMemoryLocalValues(t *testing.T) {
	hub := broker.NewMemoryHub()
	a, b := hub.Node(), hub.Node()
	defer a.Close()
	defer b.Close()
	type delivery struct{ N int }
	values := make(chan any, 4)
	if _, err := b.SubscribeValue("t", func(v any) { values <- v }); err != nil {
		t.Fatal(err)
	}
	bytes := make(chan []byte, 4)
	if _, err := b.Subscribe("t", func(p []byte) { bytes <- p }); err != nil {
		t.Fatal(err)
	}
	want := &delivery{N: 7}
	if err := a.PublishValue(t.Context(), "t", want); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(t.Context(), "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := <-values; got != want {
		t.Fatalf("value handler got %#v, want the published pointer", got)
	}
	if got, ok := (<-values).([]byte); !ok || string(got) != "x" {
		t.Fatalf("value handler got %#v for Publish, want []byte x", got)
	}
	// Handlers of one subscription run in order, so once "x" arrived the value
	// before it was skipped, not queued.
	if got := <-bytes; string(got) != "x" {
		t.Fatalf("bytes handler got %q, want x", got)
	}
	select {
	case got := <-bytes:
		t.Fatalf("bytes handler got a second payload %q", got)
	default:
	}
}
