// Package redis is the chatd broker on Redis pub/sub.
//
// A node uses one pooled client for PUBLISH and one pub/sub connection for all of its
// subscriptions: the first local subscriber of a topic sends SUBSCRIBE, the last one to
// leave sends UNSUBSCRIBE. When the connection drops, the receive loop reconnects with
// backoff and go-redis subscribes again to every channel.
package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/chatd/chatd/internal/broker"
)

// DefaultPrefix is put before every topic to form the Redis channel name.
const DefaultPrefix = "chatd:"

// Options configures Open. Zero values take the defaults.
type Options struct {
	Prefix   string       // put before every topic to form the channel name; default DefaultPrefix
	Logger   *slog.Logger // where connection losses and reconnects are logged; default nowhere
	QueueLen int          // payloads each subscription buffers; default broker.DefaultQueueLen
	// HealthCheck is how long the pub/sub connection may be silent before it
	// is pinged (default 5s); a ping unanswered for another period marks the
	// broker down.
	HealthCheck time.Duration
}

// subTimeout bounds a SUBSCRIBE or UNSUBSCRIBE waiting for its confirmation.
const subTimeout = 5 * time.Second

const (
	// hdrLen is the header before every payload on the wire: magic, then
	// the publishing node's id. The magic cannot start JSON, so a payload
	// without it (from a chatd that predates the header) is delivered whole.
	hdrLen   = 2 + idLen
	idLen    = 8
	magic    = "\xffc"
	maxBatch = 512      // publishes per pipeline
	maxQueue = 32 << 20 // bytes of queued publishes; beyond, Publish fails
	// pubTimeout bounds one pipeline, like the client's read timeout would.
	pubTimeout = 5 * time.Second
	// failFast is how long after a failed pipeline or ping Publish fails at
	// once, the server being presumably unreachable.
	failFast = time.Second
)

// pub is one queued publish, or a barrier (done) that Ping waits on.
type pub struct {
	channel string
	payload []byte // header and payload
	done    chan struct{}
}

// Broker is a broker.Broker on Redis pub/sub.
type Broker struct {
	opt    Options
	client *goredis.Client
	ps     *goredis.PubSub
	fan    *broker.Fanout
	log    *slog.Logger

	// subMu orders the table change and the (UN)SUBSCRIBE that goes with it, so that
	// a topic's last unsubscribe and a new first subscribe cannot cross.
	subMu sync.Mutex

	up      atomic.Bool // the pub/sub connection is healthy
	closed  atomic.Bool
	stop    context.CancelFunc
	stopped chan struct{}

	wakeMu sync.Mutex
	wake   chan struct{} // closed and replaced when a confirmation arrives or the connection drops

	id string // this node's id in payload headers

	pubMu    sync.Mutex
	pubQ     []pub
	pubBytes int
	pubWake  chan struct{} // capacity 1: the writer has work
	pubDone  chan struct{} // closed when the writer has exited
	pubCtx   context.Context
	pubStop  context.CancelFunc // ends the writer's pipelines (Close, after a grace)
	failedAt atomic.Int64       // UnixNano of the last failed pipeline or ping; 0 after a success

	published, publishErrors, reconnects atomic.Uint64
}

var (
	_ broker.Broker      = (*Broker)(nil)
	_ broker.EchoSkipper = (*Broker)(nil)
)

// Open connects to Redis at url (redis://host:port/db) and starts the node's pub/sub
// receive loop. It fails if Redis does not answer a PING within ctx.
func Open(ctx context.Context, url string, o Options) (*Broker, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.QueueLen <= 0 {
		o.QueueLen = broker.DefaultQueueLen
	}
	if o.HealthCheck <= 0 {
		o.HealthCheck = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ro, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis broker: %w", err)
	}
	// Fail fast during an outage: the store is the truth and clients resync, so a
	// Publish that cannot be sent soon is better reported than retried for long.
	if ro.DialTimeout == 0 || ro.DialTimeout > 2*time.Second {
		ro.DialTimeout = 2 * time.Second
	}
	ro.MaxRetries = 1
	ro.DialerRetries = 1
	ro.DialerRetryTimeout = 50 * time.Millisecond
	client := goredis.NewClient(ro)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis broker: ping %s: %w", ro.Addr, err)
	}
	loopCtx, stop := context.WithCancel(context.Background())
	b := &Broker{
		opt:     o,
		client:  client,
		ps:      client.Subscribe(ctx),
		fan:     broker.NewFanout(o.QueueLen),
		log:     o.Logger.With("broker", "redis", "addr", ro.Addr),
		stop:    stop,
		stopped: make(chan struct{}),
		wake:    make(chan struct{}),
		id:      rand.Text()[:idLen],
		pubWake: make(chan struct{}, 1),
		pubDone: make(chan struct{}),
	}
	b.pubCtx, b.pubStop = context.WithCancel(context.Background())
	b.up.Store(true)
	go b.receive(loopCtx)
	go b.write()
	return b, nil
}

func (b *Broker) channel(topic string) string { return b.opt.Prefix + topic }

// Publish implements broker.Broker. It queues payload for the writer and hands
// it to this node's subscribers; Ping returns once Redis has every payload
// queued before it. While the node's pub/sub connection is known to be down
// it fails at once with an error wrapping broker.ErrUnavailable, and so it
// does when the queue is full; a payload that Redis then refuses is counted
// in PublishErrors and logged.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte) error {
	return b.PublishEncoded(ctx, topic, payload, payload)
}

// PublishEncoded implements broker.EchoSkipper: as Publish, but this node's
// SubscribeValue handlers get v rather than payload.
func (b *Broker) PublishEncoded(ctx context.Context, topic string, v any, payload []byte) error {
	if err := b.enqueue(ctx, topic, payload); err != nil {
		b.publishErrors.Add(1)
		return err
	}
	b.fan.DeliverBoth(topic, v, payload)
	return nil
}

func (b *Broker) enqueue(ctx context.Context, topic string, payload []byte) error {
	if b.closed.Load() {
		return broker.ErrClosed
	}
	if !b.up.Load() {
		// The pub/sub connection is known down, so the server is unreachable or
		// silent: fail now rather than after dial and read timeouts.
		return fmt.Errorf("redis broker: publish %q: %w (pub/sub connection down)", topic, broker.ErrUnavailable)
	}
	if t := b.failedAt.Load(); t != 0 && time.Since(time.Unix(0, t)) < failFast {
		return fmt.Errorf("redis broker: publish %q: %w (the last attempt failed)", topic, broker.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis broker: publish %q: %w", topic, err)
	}
	p := make([]byte, 0, hdrLen+len(payload))
	p = append(append(append(p, magic...), b.id...), payload...)
	b.pubMu.Lock()
	if b.pubBytes+len(p) > maxQueue {
		b.pubMu.Unlock()
		return fmt.Errorf("redis broker: publish %q: %w (publish queue full)", topic, broker.ErrUnavailable)
	}
	b.pubQ = append(b.pubQ, pub{channel: b.channel(topic), payload: p})
	b.pubBytes += len(p)
	b.pubMu.Unlock()
	b.kick()
	return nil
}

func (b *Broker) kick() {
	select {
	case b.pubWake <- struct{}{}:
	default:
	}
}

// write sends the queued publishes, as many per pipeline as are waiting,
// until Close; then it sends what is left once and exits.
func (b *Broker) write() {
	defer close(b.pubDone)
	var spare []pub
	for {
		<-b.pubWake
		for {
			b.pubMu.Lock()
			batch := b.pubQ
			if len(batch) == 0 {
				b.pubMu.Unlock()
				break
			}
			// Two slices take turns: the queue and the batch being sent.
			b.pubQ, b.pubBytes = spare[:0], 0
			b.pubMu.Unlock()
			for i := 0; i < len(batch); i += maxBatch {
				b.send(batch[i:min(i+maxBatch, len(batch))])
			}
			clear(batch) // the payloads are sent: let them go
			spare = batch[:0]
		}
		if b.closed.Load() {
			// Close kicks once more after it sets closed: nothing can be
			// queued after this drain.
			b.pubMu.Lock()
			left := len(b.pubQ)
			b.pubMu.Unlock()
			if left == 0 {
				return
			}
		}
	}
}

// send runs one pipeline and releases the barriers in it.
func (b *Broker) send(batch []pub) {
	ctx, cancel := context.WithTimeout(b.pubCtx, pubTimeout)
	defer cancel()
	pipe := b.client.Pipeline()
	n := 0
	for _, p := range batch {
		if p.done == nil {
			pipe.Publish(ctx, p.channel, p.payload)
			n++
		}
	}
	if n > 0 {
		cmds, err := pipe.Exec(ctx)
		failed := 0
		for _, c := range cmds {
			if c.Err() != nil {
				failed++
			}
		}
		if err != nil && len(cmds) == 0 {
			failed = n
		}
		b.published.Add(uint64(n - failed))
		b.publishErrors.Add(uint64(failed))
		if failed == 0 {
			b.failedAt.Store(0)
		} else if !b.closed.Load() {
			b.failedAt.Store(time.Now().UnixNano())
			b.log.Warn("publish failed", "payloads", failed, "err", err)
		}
	}
	for _, p := range batch {
		if p.done != nil {
			close(p.done)
		}
	}
}

// flush waits until Redis has answered every publish queued before it.
func (b *Broker) flush(ctx context.Context) error {
	done := make(chan struct{})
	b.pubMu.Lock()
	b.pubQ = append(b.pubQ, pub{done: done})
	b.pubMu.Unlock()
	b.kick()
	select {
	case <-done:
		return nil
	case <-b.pubDone:
		return broker.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe implements broker.Broker. While Redis is reachable it returns once Redis
// has confirmed the subscription, so a payload published anywhere afterwards arrives.
// During an outage it returns at once; the subscription starts when Redis is back.
func (b *Broker) Subscribe(topic string, handler func([]byte)) (func(), error) {
	return b.subscribe(topic, func() (*broker.Sub, bool, bool) { return b.fan.Add(topic, handler, false) })
}

// SubscribeValue implements broker.EchoSkipper: handler gets the values
// this node publishes with PublishEncoded, and []byte from other nodes.
func (b *Broker) SubscribeValue(topic string, handler func(any)) (func(), error) {
	return b.subscribe(topic, func() (*broker.Sub, bool, bool) { return b.fan.AddValue(topic, handler, false) })
}

func (b *Broker) subscribe(topic string, add func() (*broker.Sub, bool, bool)) (func(), error) {
	if b.closed.Load() {
		return nil, broker.ErrClosed
	}
	b.subMu.Lock()
	s, _, ok := add()
	if !ok {
		b.subMu.Unlock()
		return nil, broker.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), subTimeout)
	defer cancel()
	if b.up.Load() {
		// SUBSCRIBE even when the topic is already subscribed: the confirmation that
		// comes back marks the point after which payloads are this subscription's.
		err := b.ps.Subscribe(ctx, b.channel(topic))
		b.subMu.Unlock()
		if err != nil {
			// go-redis keeps the channel and subscribes again when it reconnects.
			b.log.Warn("subscribe failed; will retry on reconnect", "topic", topic, "err", err)
		} else {
			b.waitActive(ctx, s)
		}
	} else {
		// Down: do not wait for a dial; resync subscribes every topic on reconnect.
		b.subMu.Unlock()
	}
	var once sync.Once
	return func() { once.Do(func() { b.unsubscribe(s) }) }, nil
}

// waitActive waits for the confirmation of s's SUBSCRIBE, unless the connection is
// down (the resubscription after reconnect will confirm it).
func (b *Broker) waitActive(ctx context.Context, s *broker.Sub) {
	for !s.Active() && b.up.Load() && !b.closed.Load() {
		b.wakeMu.Lock()
		wake := b.wake
		b.wakeMu.Unlock()
		if s.Active() {
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}

func (b *Broker) signal() {
	b.wakeMu.Lock()
	close(b.wake)
	b.wake = make(chan struct{})
	b.wakeMu.Unlock()
}

func (b *Broker) unsubscribe(s *broker.Sub) {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	if !b.fan.Remove(s) || b.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), subTimeout)
	defer cancel()
	if !b.up.Load() {
		// Down: a cancelled context makes go-redis forget the channel (so that the
		// reconnect does not restore it) without waiting for a dial.
		cancel()
	}
	// On error go-redis has already forgotten the channel, so it is not resubscribed
	// after reconnect; stray payloads meanwhile find no local subscriber.
	if err := b.ps.Unsubscribe(ctx, b.channel(s.Topic())); err != nil && ctx.Err() == nil {
		b.log.Warn("unsubscribe failed", "topic", s.Topic(), "err", err)
	}
}

// receive reads the pub/sub connection until Close, reconnecting with backoff.
func (b *Broker) receive(ctx context.Context) {
	defer close(b.stopped)
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	pinged := false
	for ctx.Err() == nil {
		msg, err := b.ps.ReceiveTimeout(ctx, b.opt.HealthCheck)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A quiet connection: ping it, and call it down if the previous ping
				// went unanswered too.
				if pinged {
					// Half-open: the socket looks fine but nothing comes back. go-redis
					// keeps a connection that only times out, so start a fresh one.
					b.down(errors.New("health-check ping unanswered"))
					b.replacePubSub(ctx)
					pinged = false
					continue
				}
				pinged = true
				if err := b.ps.Ping(ctx); err != nil {
					b.down(err)
				}
				continue
			}
			b.down(err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff, pinged = minBackoff, false
		if !b.up.Swap(true) {
			b.reconnects.Add(1)
			b.log.Info("redis pub/sub connection restored", "topics", len(b.fan.Topics()))
			b.resync(ctx)
		}
		switch m := msg.(type) {
		case *goredis.Message:
			topic, ok := strings.CutPrefix(m.Channel, b.opt.Prefix)
			if !ok {
				continue
			}
			p := m.Payload
			if len(p) >= hdrLen && p[:2] == magic {
				if p[2:hdrLen] == b.id {
					continue // this node's own: delivered when published
				}
				p = p[hdrLen:]
			}
			b.fan.Deliver(topic, []byte(p))
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				if topic, ok := strings.CutPrefix(m.Channel, b.opt.Prefix); ok {
					b.fan.Activate(topic)
					b.signal()
				}
			}
		case *goredis.Pong:
		}
	}
}

// replacePubSub drops the pub/sub connection for a new one that subscribes to every
// local topic (on its first dial, or on the next attempt of the receive loop).
func (b *Broker) replacePubSub(ctx context.Context) {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	if ctx.Err() != nil {
		return // Close owns b.ps now
	}
	old := b.ps
	b.ps = b.client.Subscribe(ctx)
	_ = old.Close()
	if chans := b.channels(); len(chans) > 0 {
		sctx, cancel := context.WithTimeout(ctx, subTimeout)
		defer cancel()
		// On error go-redis still records the channels and subscribes on its next dial.
		_ = b.ps.Subscribe(sctx, chans...)
	}
}

func (b *Broker) channels() []string {
	topics := b.fan.Topics()
	chans := make([]string, len(topics))
	for i, t := range topics {
		chans[i] = b.channel(t)
	}
	return chans
}

// resync subscribes every local topic after a reconnect: go-redis restores the
// channels it knows, but Subscribe skips Redis while the connection is down.
func (b *Broker) resync(ctx context.Context) {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	chans := b.channels()
	if len(chans) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, subTimeout)
	defer cancel()
	if err := b.ps.Subscribe(ctx, chans...); err != nil {
		b.log.Warn("resubscribe failed; will retry on reconnect", "topics", len(chans), "err", err)
	}
}

func (b *Broker) down(err error) {
	if b.closed.Load() {
		return
	}
	if b.up.Swap(false) {
		lvl := slog.LevelWarn
		if errors.Is(err, io.EOF) {
			lvl = slog.LevelInfo
		}
		b.log.Log(context.Background(), lvl, "redis pub/sub connection lost; reconnecting", "err", err)
		b.signal() // waiting Subscribes stop waiting
	}
}

// Ping implements broker.Broker: nil when both the publishing client and the pub/sub
// connection are healthy, once Redis has answered every publish queued before the
// call. Without a deadline in ctx it waits at most 2s.
func (b *Broker) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return broker.ErrClosed
	}
	if !b.up.Load() {
		return fmt.Errorf("redis broker: pub/sub connection down: %w", broker.ErrUnavailable)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	if err := b.flush(ctx); err != nil {
		return fmt.Errorf("redis broker: ping: %w: %w", broker.ErrUnavailable, err)
	}
	if err := b.client.Ping(ctx).Err(); err != nil {
		b.failedAt.Store(time.Now().UnixNano())
		return fmt.Errorf("redis broker: ping: %w: %w", broker.ErrUnavailable, err)
	}
	b.failedAt.Store(0)
	return nil
}

// Close stops the receive loop and closes both connections. It is idempotent.
func (b *Broker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.fan.Close()
	// What is queued goes out if Redis answers within a second.
	b.kick()
	select {
	case <-b.pubDone:
	case <-time.After(time.Second):
		b.pubStop()
		<-b.pubDone
	}
	b.pubStop()
	b.stop()
	b.subMu.Lock()
	ps := b.ps
	b.subMu.Unlock()
	errPS := ps.Close()
	<-b.stopped
	errC := b.client.Close()
	if err := errors.Join(errPS, errC); err != nil {
		return fmt.Errorf("redis broker: close: %w", err)
	}
	return nil
}

// Stats implements broker.StatsReporter.
func (b *Broker) Stats() broker.Stats {
	s := b.fan.Stats()
	s.Published = b.published.Load()
	s.PublishErrors = b.publishErrors.Load()
	s.Reconnects = b.reconnects.Load()
	return s
}

// OnOverflow implements broker.OverflowReporter.
func (b *Broker) OnOverflow(fn func(topic string, payload any)) { b.fan.OnOverflow(fn) }
