package broker

import (
	"sync"
	"sync/atomic"
)

// DefaultQueueLen is the number of payloads a subscription buffers while its handler is
// busy; beyond that, payloads for it are dropped, counted and handed to the
// overflow function (OnOverflow), so that no loss goes unnoticed.
const DefaultQueueLen = 1024

// Fanout is a node's local subscription table, shared by the backends. Each
// subscription owns a bounded queue drained by at most one goroutine, which exists
// only while the queue is non-empty: idle subscriptions cost no goroutine.
//
// A subscription is either active (it receives payloads passed to Deliver) or pending
// (added, but the backend has not yet confirmed that the server routes the topic to
// this node); Activate turns pending subscriptions of a topic active.
type Fanout struct {
	queueLen int

	mu     sync.RWMutex
	topics map[string]map[*Sub]struct{}
	closed bool

	received, delivered, dropped, panics atomic.Uint64
	subs                                 atomic.Int64
	overflow                             atomic.Pointer[func(topic string, payload any)]
}

// OnOverflow sets fn, called with every payload that a full subscription
// could not take (after counting it as dropped), in the delivering goroutine.
// fn must be quick and must not add or remove subscriptions.
func (f *Fanout) OnOverflow(fn func(topic string, payload any)) { f.overflow.Store(&fn) }

// NewFanout returns an empty table whose subscriptions buffer up to queueLen payloads
// (DefaultQueueLen when queueLen <= 0).
func NewFanout(queueLen int) *Fanout {
	if queueLen <= 0 {
		queueLen = DefaultQueueLen
	}
	return &Fanout{queueLen: queueLen, topics: make(map[string]map[*Sub]struct{})}
}

// Sub is one subscription in a Fanout.
type Sub struct {
	f       *Fanout
	topic   string
	handler func(any) // gets a []byte, or a value from DeliverValue
	raw     bool      // added with Add: wants the encoded payload of DeliverBoth

	active atomic.Bool

	mu      sync.Mutex
	queue   []any // ring buffer of len f.queueLen, allocated on first use
	head, n int
	running bool
	closed  bool
}

// Topic returns the subscription's topic.
func (s *Sub) Topic() string { return s.topic }

// Add registers handler for topic. first reports whether the topic had no
// subscription before. ok is false when the table is closed. The handler sees
// the payloads passed to Deliver, not the values passed to DeliverValue.
func (f *Fanout) Add(topic string, handler func([]byte), active bool) (s *Sub, first, ok bool) {
	return f.add(topic, func(p any) {
		if b, ok := p.([]byte); ok {
			handler(b)
		}
	}, active, true)
}

// AddValue is Add for a handler that also receives the values passed to
// DeliverValue; payloads passed to Deliver reach it as []byte.
func (f *Fanout) AddValue(topic string, handler func(any), active bool) (s *Sub, first, ok bool) {
	return f.add(topic, handler, active, false)
}

func (f *Fanout) add(topic string, handler func(any), active, raw bool) (s *Sub, first, ok bool) {
	s = &Sub{f: f, topic: topic, handler: handler, raw: raw}
	s.active.Store(active)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, false, false
	}
	set := f.topics[topic]
	if set == nil {
		set = make(map[*Sub]struct{})
		f.topics[topic] = set
		first = true
	}
	set[s] = struct{}{}
	f.subs.Add(1)
	return s, first, true
}

// Remove unregisters s and discards what it has queued; a handler call already running
// finishes. last reports whether s was the topic's last subscription. Removing twice is
// harmless (the second call reports last=false).
func (f *Fanout) Remove(s *Sub) (last bool) {
	s.close()
	f.mu.Lock()
	defer f.mu.Unlock()
	set, ok := f.topics[s.topic]
	if !ok {
		return false
	}
	if _, ok := set[s]; !ok {
		return false
	}
	delete(set, s)
	f.subs.Add(-1)
	if len(set) == 0 {
		delete(f.topics, s.topic)
		return true
	}
	return false
}

// Has reports whether topic has any subscription.
func (f *Fanout) Has(topic string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.topics[topic]) > 0
}

// Topics returns the topics that have subscriptions.
func (f *Fanout) Topics() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	ts := make([]string, 0, len(f.topics))
	for t := range f.topics {
		ts = append(ts, t)
	}
	return ts
}

// Deliver queues payload for every active subscription of topic. It never blocks on a
// handler. It returns the number of subscriptions that accepted the payload.
func (f *Fanout) Deliver(topic string, payload []byte) int {
	return f.DeliverValue(topic, payload)
}

// DeliverValue is Deliver for an in-process value, handed as is to the
// handlers added with AddValue (the others skip it).
func (f *Fanout) DeliverValue(topic string, v any) int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := 0
	for s := range f.topics[topic] {
		if s.active.Load() && s.push(v) {
			n++
		}
	}
	return n
}

// DeliverBoth is DeliverValue for a value that has an encoding too: the
// handlers added with AddValue get v, those added with Add get payload. A
// broker that skips its own echo uses it for its local subscribers.
func (f *Fanout) DeliverBoth(topic string, v any, payload []byte) int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := 0
	for s := range f.topics[topic] {
		p := v
		if s.raw {
			p = payload
		}
		if s.active.Load() && s.push(p) {
			n++
		}
	}
	return n
}

// Push queues payload for s alone, whether or not it is active.
func (s *Sub) Push(payload []byte) bool { return s.push(payload) }

// Activate turns every pending subscription of topic active.
func (f *Fanout) Activate(topic string) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for s := range f.topics[topic] {
		s.active.Store(true)
	}
}

// ActivateAll turns every pending subscription active.
func (f *Fanout) ActivateAll() {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, set := range f.topics {
		for s := range set {
			s.active.Store(true)
		}
	}
}

// Active reports whether s receives payloads passed to Deliver.
func (s *Sub) Active() bool { return s.active.Load() }

// Close removes every subscription; later Adds fail.
func (f *Fanout) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	for _, set := range f.topics {
		for s := range set {
			s.close()
			f.subs.Add(-1)
		}
	}
	clear(f.topics)
}

// Stats returns the table's counters (the delivery side of Stats).
func (f *Fanout) Stats() Stats {
	return Stats{
		Received:      f.received.Load(),
		Delivered:     f.delivered.Load(),
		Dropped:       f.dropped.Load(),
		HandlerPanics: f.panics.Load(),
		Subscriptions: f.subs.Load(),
	}
}

// CountReceived adds n to the Received counter (for payloads a backend got but had no
// local subscription to hand to, Deliver is not called).
func (f *Fanout) CountReceived(n uint64) { f.received.Add(n) }

// CountDropped adds n to the Dropped counter (for drops a backend's client library
// reports itself).
func (f *Fanout) CountDropped(n uint64) { f.dropped.Add(n) }

func (s *Sub) push(p any) bool {
	s.f.received.Add(1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if s.n == s.f.queueLen {
		s.mu.Unlock()
		s.f.dropped.Add(1)
		if fn := s.f.overflow.Load(); fn != nil {
			(*fn)(s.topic, p)
		}
		return false
	}
	if s.queue == nil {
		// Most subscriptions see little traffic: start small, grow up to queueLen.
		s.queue = make([]any, min(8, s.f.queueLen))
	}
	if s.n == len(s.queue) {
		s.grow()
	}
	s.queue[(s.head+s.n)%len(s.queue)] = p
	s.n++
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.drain()
	}
	return true
}

// grow doubles the ring (capped at queueLen), keeping order. Called with s.mu held.
func (s *Sub) grow() {
	q := make([]any, min(2*len(s.queue), s.f.queueLen))
	for i := range s.n {
		q[i] = s.queue[(s.head+i)%len(s.queue)]
	}
	s.queue, s.head = q, 0
}

func (s *Sub) close() {
	s.mu.Lock()
	s.closed = true
	s.queue, s.head, s.n = nil, 0, 0
	s.mu.Unlock()
}

// drain runs the handler over the queue, one payload at a time, and exits when the
// queue is empty.
func (s *Sub) drain() {
	for {
		s.mu.Lock()
		if s.n == 0 || s.closed {
			s.running = false
			s.mu.Unlock()
			return
		}
		p := s.queue[s.head]
		s.queue[s.head] = nil
		s.head = (s.head + 1) % len(s.queue)
		s.n--
		s.mu.Unlock()
		s.call(p)
	}
}

// call runs the handler, recovering a panic so that one bad handler cannot take the
// node down.
func (s *Sub) call(p any) {
	defer func() {
		if r := recover(); r != nil {
			s.f.panics.Add(1)
		}
	}()
	s.f.delivered.Add(1)
	s.handler(p)
}
