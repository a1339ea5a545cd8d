// Package broker carries opaque payloads between chatd nodes (cross-node fan-out).
//
// The store is the truth and the broker is best effort: delivery is at-most-once and
// nothing is persisted. Every pushed chat message carries its conversation seq, so a
// client that misses one recovers it with a sync call. Backends must never crash the
// process, must reconnect on their own and must report their health through Ping.
//
// The in-process Memory broker is the default; broker/redis and broker/nats connect
// several nodes.
package broker

import (
	"context"
	"errors"
)

// Broker carries opaque payloads between chatd nodes. Publish reaches every subscriber
// of the topic on every node (including the publishing node), at most once, in publish
// order per publisher.
//
// Payloads are shared, not copied, where that is safe: a caller must not modify a
// payload after passing it to Publish, and handlers must not modify the payload they
// receive.
type Broker interface {
	Publish(ctx context.Context, topic string, payload []byte) error
	// Subscribe calls handler for each payload published on topic from now on. Handlers
	// of one subscription run one at a time, in order; a slow handler must not block
	// other subscriptions forever (bounded buffer; when it overflows, drop and count,
	// never block Publish or the connection).
	Subscribe(topic string, handler func(payload []byte)) (unsubscribe func(), err error)
	// Ping returns nil when the broker is connected (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// Local is implemented by brokers whose subscribers all run in this process
// (Memory). PublishValue hands v itself to the handlers of SubscribeValue:
// nothing is encoded on the way. Those handlers also receive the payloads of
// Publish, as []byte; Subscribe's handlers receive only those. As with
// payloads, v is shared: neither the publisher nor a handler may modify it.
type Local interface {
	PublishValue(ctx context.Context, topic string, v any) error
	SubscribeValue(topic string, handler func(v any)) (unsubscribe func(), err error)
}

// EchoSkipper is implemented by the brokers that reach other nodes through a
// server (Redis, NATS). They hand the publisher's own subscribers their
// payloads directly and drop the copy the server sends back, so a node never
// decodes its own messages (docs/benchmarks.md, cluster). PublishEncoded is
// Publish where payload is v's encoding: the SubscribeValue handlers of this
// node get v itself, its Subscribe handlers and every other node payload.
// As with payloads, v is shared: neither the publisher nor a handler may
// modify it.
type EchoSkipper interface {
	PublishEncoded(ctx context.Context, topic string, v any, payload []byte) error
	SubscribeValue(topic string, handler func(v any)) (unsubscribe func(), err error)
}

// OverflowReporter is implemented by every broker in this module: fn gets each
// payload that a full subscription buffer of this node dropped (Subscribe's
// "drop and count"), in the delivering goroutine, so that the subscriber can
// act on the loss (chatd disconnects the recipients, who then resync). fn
// must be quick and must not subscribe or unsubscribe.
type OverflowReporter interface {
	OnOverflow(fn func(topic string, payload any))
}

// ErrClosed is returned by Publish, Subscribe and Ping after Close.
var ErrClosed = errors.New("broker: closed")

// ErrUnavailable is returned (wrapped) when the broker's server cannot be reached.
var ErrUnavailable = errors.New("broker: unavailable")

// Stats are a node's cumulative counters, for /metrics.
type Stats struct {
	Published     uint64 // Publish calls that succeeded
	PublishErrors uint64 // Publish calls that failed
	Received      uint64 // payloads offered to local subscriptions (one per subscription)
	Delivered     uint64 // handler calls
	Dropped       uint64 // payloads dropped because a subscription's buffer was full
	HandlerPanics uint64 // handler calls that panicked (recovered)
	Reconnects    uint64 // times the connection to the server was restored
	Subscriptions int64  // live subscriptions (gauge)
}

// StatsReporter is implemented by every broker in this module.
type StatsReporter interface {
	Stats() Stats
}
