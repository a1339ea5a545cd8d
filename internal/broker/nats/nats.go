// Package nats is the chatd broker on core NATS (not JetStream: the broker is at-most-once
// and the store is the truth).
//
// Each local subscription is its own NATS subscription, and all of them feed one
// channel read by one dispatcher goroutine, which hands payloads to the subscriptions'
// bounded queues. The client reconnects forever with backoff and restores the
// subscriptions itself. The connection asks the server not to echo its own
// publishes (NoEcho): a node hands them to its own subscribers directly, so it
// never decodes its own messages (docs/benchmarks.md, cluster).
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/chatd/chatd/internal/broker"
)

// DefaultPrefix is put before every encoded topic to form the subject.
const DefaultPrefix = "chatd."

// Options configures Open. Zero values take the defaults.
type Options struct {
	Prefix   string       // put before every encoded topic; should end with '.'; default DefaultPrefix
	Logger   *slog.Logger // where disconnects and reconnects are logged; default nowhere
	QueueLen int          // payloads each subscription buffers; default broker.DefaultQueueLen
	// ReconnectBuffer is the bytes the client holds for publishes that race a
	// disconnect, flushed on reconnect (default 1 MiB). Once the broker knows
	// it is disconnected, Publish fails instead of buffering.
	ReconnectBuffer int
	// PingInterval is how often the client pings the server to detect a dead
	// connection (default 5s; two unanswered pings drop the connection).
	PingInterval time.Duration
	MaxBackoff   time.Duration // cap on the wait between reconnect attempts; default 2s
}

const (
	subTimeout = 5 * time.Second // bounds the flush that confirms a subscription
	inboxLen   = 1 << 16         // messages the dispatcher's inbox holds
)

// Broker is a broker.Broker on core NATS.
type Broker struct {
	opt Options
	nc  *natsgo.Conn
	fan *broker.Fanout
	log *slog.Logger

	inbox chan *natsgo.Msg
	stop  chan struct{}
	done  chan struct{}

	// mu guards subs. Subscribe holds it across creating the NATS subscription and
	// recording it, so the dispatcher never sees a message for an unknown one.
	mu   sync.RWMutex
	subs map[*natsgo.Subscription]*broker.Sub

	closed atomic.Bool

	published, publishErrors, reconnects, natsDropped atomic.Uint64
}

var (
	_ broker.Broker      = (*Broker)(nil)
	_ broker.EchoSkipper = (*Broker)(nil)
)

// Open connects to NATS at url (nats://host:port, or a comma-separated list). The first
// connection must succeed within ctx; after that the client reconnects forever.
func Open(ctx context.Context, url string, o Options) (*Broker, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.QueueLen <= 0 {
		o.QueueLen = broker.DefaultQueueLen
	}
	if o.ReconnectBuffer <= 0 {
		o.ReconnectBuffer = 1 << 20
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		opt:   o,
		fan:   broker.NewFanout(o.QueueLen),
		log:   o.Logger.With("broker", "nats"),
		inbox: make(chan *natsgo.Msg, inboxLen),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		subs:  make(map[*natsgo.Subscription]*broker.Sub),
	}
	dial := 2 * time.Second
	if d, ok := ctx.Deadline(); ok {
		dial = max(min(dial, time.Until(d)), time.Millisecond)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nats broker: connect: %w", err)
	}
	nc, err := natsgo.Connect(url,
		natsgo.Name("chatd"),
		natsgo.NoEcho(),
		natsgo.Timeout(dial),
		natsgo.MaxReconnects(-1),
		natsgo.CustomReconnectDelay(func(attempts int) time.Duration {
			// 50ms, 100ms, 200ms … up to maxBackoff.
			return min(50*time.Millisecond<<min(attempts, 10), o.MaxBackoff)
		}),
		natsgo.ReconnectBufSize(o.ReconnectBuffer),
		natsgo.PingInterval(o.PingInterval),
		natsgo.MaxPingsOutstanding(2),
		natsgo.FlusherTimeout(2*time.Second),
		natsgo.NoCallbacksAfterClientClose(),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			b.log.Warn("nats connection lost; reconnecting", "err", err)
		}),
		natsgo.ReconnectHandler(func(c *natsgo.Conn) {
			b.reconnects.Add(1)
			b.log.Info("nats connection restored", "server", c.ConnectedUrlRedacted())
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, s *natsgo.Subscription, err error) {
			b.log.Warn("nats async error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("nats broker: connect: %w", err)
	}
	b.nc = nc
	go b.dispatch()
	return b, nil
}

func (b *Broker) subject(topic string) string { return b.opt.Prefix + encodeTopic(topic) }

// dispatch moves messages from the shared inbox to their subscriptions' queues.
func (b *Broker) dispatch() {
	defer close(b.done)
	for {
		select {
		case m := <-b.inbox:
			b.mu.RLock()
			s := b.subs[m.Sub]
			b.mu.RUnlock()
			if s != nil {
				s.Push(m.Data)
			}
		case <-b.stop:
			return
		}
	}
}

// Publish implements broker.Broker. It returns once the payload is in the client's
// write buffer, which is flushed right after; Ping waits until the server has every
// earlier publish. While the client is disconnected Publish fails at once with an
// error wrapping broker.ErrUnavailable.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte) error {
	return b.PublishEncoded(ctx, topic, payload, payload)
}

// PublishEncoded implements broker.EchoSkipper: as Publish, but this node's
// SubscribeValue handlers get v rather than payload.
func (b *Broker) PublishEncoded(ctx context.Context, topic string, v any, payload []byte) error {
	if err := b.publish(ctx, topic, payload); err != nil {
		b.publishErrors.Add(1)
		return err
	}
	b.published.Add(1)
	// The server does not echo (NoEcho): this node's subscribers get it here.
	b.fan.DeliverBoth(topic, v, payload)
	return nil
}

func (b *Broker) publish(ctx context.Context, topic string, payload []byte) error {
	if b.closed.Load() {
		return broker.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nats broker: publish: %w", err)
	}
	if !b.nc.IsConnected() {
		return fmt.Errorf("nats broker: publish %q: %w (%s)", topic, broker.ErrUnavailable, b.nc.Status())
	}
	if err := b.nc.Publish(b.subject(topic), payload); err != nil {
		if errors.Is(err, natsgo.ErrConnectionClosed) {
			return broker.ErrClosed
		}
		return fmt.Errorf("nats broker: publish %q: %w", topic, err)
	}
	return nil
}

// Subscribe implements broker.Broker. While connected it returns once the server has
// registered the interest, so a payload published anywhere afterwards arrives. While
// disconnected it returns at once; the client registers it on reconnect.
func (b *Broker) Subscribe(topic string, handler func([]byte)) (func(), error) {
	return b.subscribe(topic, func() (*broker.Sub, bool, bool) { return b.fan.Add(topic, handler, true) })
}

// SubscribeValue implements broker.EchoSkipper: handler gets the values
// this node publishes with PublishEncoded, and []byte from other nodes.
func (b *Broker) SubscribeValue(topic string, handler func(any)) (func(), error) {
	return b.subscribe(topic, func() (*broker.Sub, bool, bool) { return b.fan.AddValue(topic, handler, true) })
}

func (b *Broker) subscribe(topic string, add func() (*broker.Sub, bool, bool)) (func(), error) {
	if b.closed.Load() {
		return nil, broker.ErrClosed
	}
	s, _, ok := add()
	if !ok {
		return nil, broker.ErrClosed
	}
	b.mu.Lock()
	ns, err := b.nc.ChanSubscribe(b.subject(topic), b.inbox)
	if err == nil {
		b.subs[ns] = s
	}
	b.mu.Unlock()
	if err != nil {
		b.fan.Remove(s)
		if errors.Is(err, natsgo.ErrConnectionClosed) {
			return nil, broker.ErrClosed
		}
		return nil, fmt.Errorf("nats broker: subscribe %q: %w", topic, err)
	}
	if b.nc.IsConnected() {
		ctx, cancel := context.WithTimeout(context.Background(), subTimeout)
		// A round trip: once the server answers, it has processed the SUB.
		if err := b.nc.FlushWithContext(ctx); err != nil {
			b.log.Warn("subscribe not confirmed; the client restores it on reconnect", "topic", topic, "err", err)
		}
		cancel()
	}
	var once sync.Once
	return func() { once.Do(func() { b.unsubscribe(ns, s) }) }, nil
}

func (b *Broker) unsubscribe(ns *natsgo.Subscription, s *broker.Sub) {
	if n, err := ns.Dropped(); err == nil && n > 0 {
		b.natsDropped.Add(uint64(n))
	}
	// After Close the connection's subscriptions are gone already.
	if err := ns.Unsubscribe(); err != nil && !b.closed.Load() && !errors.Is(err, natsgo.ErrConnectionClosed) {
		b.log.Warn("unsubscribe failed", "topic", s.Topic(), "err", err)
	}
	b.mu.Lock()
	delete(b.subs, ns)
	b.mu.Unlock()
	b.fan.Remove(s)
}

// Ping implements broker.Broker: nil when connected and the server answers a round
// trip within ctx (or 5s when ctx has no deadline).
func (b *Broker) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return broker.ErrClosed
	}
	if !b.nc.IsConnected() {
		return fmt.Errorf("nats broker: %w (%s)", broker.ErrUnavailable, b.nc.Status())
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("nats broker: ping: %w: %w", broker.ErrUnavailable, err)
	}
	return nil
}

// Close closes the connection and stops the dispatcher. It is idempotent.
func (b *Broker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.fan.Close()
	b.nc.Close()
	close(b.stop)
	<-b.done
	return nil
}

// Stats implements broker.StatsReporter. Dropped includes payloads the NATS client
// dropped because the shared inbox was full.
func (b *Broker) Stats() broker.Stats {
	s := b.fan.Stats()
	s.Published = b.published.Load()
	s.PublishErrors = b.publishErrors.Load()
	s.Reconnects = b.reconnects.Load()
	dropped := b.natsDropped.Load()
	b.mu.RLock()
	for ns := range b.subs {
		if n, err := ns.Dropped(); err == nil && n > 0 {
			dropped += uint64(n)
		}
	}
	b.mu.RUnlock()
	s.Dropped += dropped
	return s
}

// OnOverflow implements broker.OverflowReporter.
func (b *Broker) OnOverflow(fn func(topic string, payload any)) { b.fan.OnOverflow(fn) }
