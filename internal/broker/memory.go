package broker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// MemoryHub connects in-process Memory nodes, standing in for a shared server (tests,
// benchmarks). A single-node chatd uses NewMemory.
type MemoryHub struct {
	mu    sync.RWMutex
	nodes map[*Memory]struct{}
}

// NewMemoryHub returns a hub without nodes.
func NewMemoryHub() *MemoryHub {
	return &MemoryHub{nodes: make(map[*Memory]struct{})}
}

// Node returns a new broker node attached to the hub, with subscription buffers of
// DefaultQueueLen.
func (h *MemoryHub) Node() *Memory {
	return h.NodeWithQueue(DefaultQueueLen)
}

// NodeWithQueue is Node with subscription buffers of queueLen payloads.
func (h *MemoryHub) NodeWithQueue(queueLen int) *Memory {
	m := &Memory{hub: h, fan: NewFanout(queueLen)}
	h.mu.Lock()
	h.nodes[m] = struct{}{}
	h.mu.Unlock()
	return m
}

// Memory is the in-process broker: Publish hands the payload itself (no copy) to the
// subscribers of every node on its hub.
type Memory struct {
	hub    *MemoryHub
	fan    *Fanout
	closed atomic.Bool

	published, publishErrors atomic.Uint64
}

var (
	_ Broker = (*Memory)(nil)
	_ Local  = (*Memory)(nil)
)

// NewMemory returns a standalone in-process broker (the default for one node).
func NewMemory() *Memory {
	return NewMemoryHub().Node()
}

// Publish delivers payload to the subscribers of topic on every node of the hub. It
// never blocks on a handler.
func (m *Memory) Publish(ctx context.Context, topic string, payload []byte) error {
	return m.PublishValue(ctx, topic, payload)
}

// PublishValue implements Local: v reaches the SubscribeValue handlers of
// every node of the hub, not encoded. It never blocks on a handler.
func (m *Memory) PublishValue(ctx context.Context, topic string, v any) error {
	if m.closed.Load() {
		m.publishErrors.Add(1)
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		m.publishErrors.Add(1)
		return fmt.Errorf("broker: publish: %w", err)
	}
	m.hub.mu.RLock()
	for n := range m.hub.nodes {
		n.fan.DeliverValue(topic, v)
	}
	m.hub.mu.RUnlock()
	m.published.Add(1)
	return nil
}

// Subscribe implements Broker.
func (m *Memory) Subscribe(topic string, handler func([]byte)) (func(), error) {
	return m.SubscribeValue(topic, func(v any) {
		if b, ok := v.([]byte); ok {
			handler(b)
		}
	})
}

// SubscribeValue implements Local.
func (m *Memory) SubscribeValue(topic string, handler func(any)) (func(), error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	s, _, ok := m.fan.AddValue(topic, handler, true)
	if !ok {
		return nil, ErrClosed
	}
	var once sync.Once
	return func() { once.Do(func() { m.fan.Remove(s) }) }, nil
}

// Ping implements Broker: an open Memory broker is always ready.
func (m *Memory) Ping(ctx context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Close detaches the node from its hub and drops its subscriptions. It is idempotent.
func (m *Memory) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.hub.mu.Lock()
	delete(m.hub.nodes, m)
	m.hub.mu.Unlock()
	m.fan.Close()
	return nil
}

// Stats implements StatsReporter.
func (m *Memory) Stats() Stats {
	s := m.fan.Stats()
	s.Published = m.published.Load()
	s.PublishErrors = m.publishErrors.Load()
	return s
}

// OnOverflow implements OverflowReporter.
func (m *Memory) OnOverflow(fn func(topic string, payload any)) { m.fan.OnOverflow(fn) }
