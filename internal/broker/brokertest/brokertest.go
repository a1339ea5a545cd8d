// Package brokertest is the conformance suite every broker backend must pass.
package brokertest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/broker"
)

// Wait is how long the suite waits for anything to arrive. It is generous on purpose:
// the suite asserts what arrives, never how fast.
const Wait = 20 * time.Second

// Run runs the suite. newCluster is called once per sub-test and returns a factory of
// nodes that share one fresh cluster (nothing published in another sub-test may reach
// them). The suite closes the nodes it makes.
func Run(t *testing.T, newCluster func(t *testing.T) func() broker.Broker) {
	tests := []struct {
		name string
		fn   func(t *testing.T, node func() broker.Broker)
	}{
		{"PingOK", testPing},
		{"ReachesEveryNode", testReachesEveryNode},
		{"NothingBeforeSubscribe", testNothingBeforeSubscribe},
		{"Unsubscribe", testUnsubscribe},
		{"OrderPerPublisher", testOrder},
		{"ManyTopics", testManyTopics},
		{"PayloadExact", testPayloadExact},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"SlowHandlerIsolated", testSlowHandler},
		{"HandlerPanicRecovered", testHandlerPanic},
		{"Close", testClose},
		{"OwnPayloadOnce", testOwnPayloadOnce},
		{"EncodedValueStaysLocal", testEncodedValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			factory := newCluster(t)
			node := func() broker.Broker {
				t.Helper()
				b := factory()
				t.Cleanup(func() { _ = b.Close() })
				return b
			}
			tc.fn(t, node)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	t.Cleanup(cancel)
	return ctx
}

func publish(t *testing.T, b broker.Broker, topic string, p []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	if err := b.Publish(ctx, topic, p); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

// collect subscribes and returns the channel the payloads arrive on.
func collect(t *testing.T, b broker.Broker, topic string, buf int) (<-chan []byte, func()) {
	t.Helper()
	ch := make(chan []byte, buf)
	unsub, err := b.Subscribe(topic, func(p []byte) { ch <- bytes.Clone(p) })
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
	t.Cleanup(unsub)
	return ch, unsub
}

func recv(t *testing.T, ch <-chan []byte, what string) []byte {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(Wait):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

func testPing(t *testing.T, node func() broker.Broker) {
	b := node()
	if err := b.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testReachesEveryNode(t *testing.T, node func() broker.Broker) {
	nodes := []broker.Broker{node(), node(), node()}
	chans := make([]<-chan []byte, len(nodes))
	for i, b := range nodes {
		chans[i], _ = collect(t, b, "room/1", 16)
	}
	// Each node publishes once; every node, the publisher's own included, gets all.
	for i, b := range nodes {
		publish(t, b, "room/1", fmt.Appendf(nil, "from %d", i))
	}
	for i, ch := range chans {
		got := map[string]bool{}
		for range nodes {
			got[string(recv(t, ch, fmt.Sprintf("node %d", i)))] = true
		}
		for j := range nodes {
			if !got[fmt.Sprintf("from %d", j)] {
				t.Errorf("node %d missed the message from node %d (got %v)", i, j, got)
			}
		}
	}
}

func testNothingBeforeSubscribe(t *testing.T, node func() broker.Broker) {
	a, b := node(), node()
	for i := range 10 {
		publish(t, a, "early", fmt.Appendf(nil, "before %d", i))
		publish(t, b, "early", fmt.Appendf(nil, "before %d", i))
	}
	// Ping is the barrier for backends whose Publish buffers (NATS): afterwards the
	// server has seen every earlier publish of that node.
	for _, n := range []broker.Broker{a, b} {
		if err := n.Ping(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	chA, _ := collect(t, a, "early", 16)
	chB, _ := collect(t, b, "early", 16)
	publish(t, a, "early", []byte("after"))
	for name, ch := range map[string]<-chan []byte{"publisher": chA, "peer": chB} {
		if p := recv(t, ch, name); string(p) != "after" {
			t.Errorf("%s node: first payload %q, want %q", name, p, "after")
		}
	}
}

func testUnsubscribe(t *testing.T, node func() broker.Broker) {
	a, b := node(), node()
	var gone atomic.Int64
	unsub, err := b.Subscribe("t", func([]byte) { gone.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	sentinel, _ := collect(t, b, "t", 16)
	publish(t, a, "t", []byte("1"))
	recv(t, sentinel, "first payload")
	// The first payload may still be on its way to the handler; once it is handled
	// the count must stay at 1.
	deadline := time.Now().Add(Wait)
	for gone.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := gone.Load(); n != 1 {
		t.Fatalf("handler called %d times before unsubscribe, want 1", n)
	}
	unsub()
	unsub() // twice is harmless
	for i := range 5 {
		publish(t, a, "t", fmt.Appendf(nil, "after %d", i))
	}
	for range 5 {
		recv(t, sentinel, "payload after unsubscribe")
	}
	if n := gone.Load(); n != 1 {
		t.Fatalf("handler called %d times, want 1: unsubscribe did not stop delivery", n)
	}

	// The last unsubscribe of a topic, then a fresh subscribe, works.
	unsubAll, err := b.Subscribe("u", func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	unsubAll()
	ch, _ := collect(t, b, "u", 4)
	publish(t, a, "u", []byte("again"))
	if p := recv(t, ch, "payload after resubscribe"); string(p) != "again" {
		t.Fatalf("got %q, want %q", p, "again")
	}
}

// orderChecker counts payloads carrying a big-endian counter and reports the first
// one out of order.
type orderChecker struct {
	next atomic.Uint64
	bad  atomic.Pointer[string]
	done chan struct{}
	want uint64
}

func newOrderChecker(want uint64) *orderChecker {
	return &orderChecker{done: make(chan struct{}), want: want}
}

func (c *orderChecker) handle(p []byte) {
	if len(p) != 8 {
		s := fmt.Sprintf("payload of %d bytes", len(p))
		c.bad.CompareAndSwap(nil, &s)
		return
	}
	got, want := binary.BigEndian.Uint64(p), c.next.Load()
	if got != want {
		s := fmt.Sprintf("got #%d, want #%d", got, want)
		c.bad.CompareAndSwap(nil, &s)
	}
	if c.next.Add(1) == c.want {
		close(c.done)
	}
}

func testOrder(t *testing.T, node func() broker.Broker) {
	const n = 10_000
	a, b := node(), node()
	checkers := []*orderChecker{newOrderChecker(n), newOrderChecker(n)}
	for i, nd := range []broker.Broker{a, b} {
		unsub, err := nd.Subscribe("ordered", checkers[i].handle)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(unsub)
	}
	ctx := ctxT(t)
	for i := range uint64(n) {
		// Keep fewer than the smallest sensible buffer in flight, so that nothing is
		// dropped and every payload must arrive.
		for _, c := range checkers {
			for i-c.next.Load() >= 256 {
				if c.bad.Load() != nil || ctx.Err() != nil {
					t.Fatalf("stalled at #%d: %v", i, c.bad.Load())
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		if err := a.Publish(ctx, "ordered", binary.BigEndian.AppendUint64(nil, i)); err != nil {
			t.Fatalf("Publish #%d: %v", i, err)
		}
	}
	for i, c := range checkers {
		select {
		case <-c.done:
		case <-ctx.Done():
			t.Fatalf("node %d: got %d of %d payloads", i, c.next.Load(), n)
		}
		if bad := c.bad.Load(); bad != nil {
			t.Fatalf("node %d: out of order: %s", i, *bad)
		}
	}
}

func testManyTopics(t *testing.T, node func() broker.Broker) {
	const topics, each = 200, 5
	a, b := node(), node()
	chans := make([]<-chan []byte, topics)
	for i := range topics {
		chans[i], _ = collect(t, b, fmt.Sprintf("user:%d", i), each)
	}
	for j := range each {
		for i := range topics {
			publish(t, a, fmt.Sprintf("user:%d", i), fmt.Appendf(nil, "%d/%d", i, j))
		}
	}
	for i, ch := range chans {
		for j := range each {
			want := fmt.Sprintf("%d/%d", i, j)
			if p := recv(t, ch, want); string(p) != want {
				t.Fatalf("topic %d: got %q, want %q", i, p, want)
			}
		}
	}
}

func testPayloadExact(t *testing.T, node func() broker.Broker) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	payloads := []struct {
		name string
		p    []byte
	}{
		{"empty", []byte{}},
		{"nil", nil},
		{"binary", all},
		{"nul", []byte{0}},
		{"text", []byte(`{"msgId":"5f1d7c","content":{"content":"héllo ✓"}}`)},
		{"1MiB", big},
	}
	a, b := node(), node()
	chA, _ := collect(t, a, "bytes", len(payloads))
	chB, _ := collect(t, b, "bytes", len(payloads))
	for _, tc := range payloads {
		publish(t, a, "bytes", tc.p)
	}
	for name, ch := range map[string]<-chan []byte{"publisher": chA, "peer": chB} {
		for _, tc := range payloads {
			got := recv(t, ch, name+" "+tc.name)
			if !bytes.Equal(got, tc.p) {
				t.Errorf("%s node, %s: got %d bytes, want %d (content differs)", name, tc.name, len(got), len(tc.p))
			}
		}
	}
}

func testConcurrentPublishers(t *testing.T, node func() broker.Broker) {
	const pubs, each, window = 8, 250, 64
	nodes := []broker.Broker{node(), node()}
	sub := node()
	var (
		mu   sync.Mutex
		next = make([]uint32, pubs)
		bad  []string
		got  atomic.Int64
		done = make(chan struct{})
	)
	unsub, err := sub.Subscribe("busy", func(p []byte) {
		id, seq := binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
		mu.Lock()
		if seq != next[id] {
			bad = append(bad, fmt.Sprintf("publisher %d: got #%d, want #%d", id, seq, next[id]))
		}
		next[id] = seq + 1
		mu.Unlock()
		if got.Add(1) == pubs*each {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsub)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, pubs)
	for id := range uint32(pubs) {
		wg.Go(func() {
			b := nodes[id%2]
			for seq := range uint32(each) {
				for {
					mu.Lock()
					inFlight := seq - next[id]
					mu.Unlock()
					if inFlight < window || ctx.Err() != nil {
						break
					}
					time.Sleep(100 * time.Microsecond)
				}
				p := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, id), seq)
				if err := b.Publish(ctx, "busy", p); err != nil {
					errs <- fmt.Errorf("publisher %d #%d: %w", id, seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("got %d of %d payloads", got.Load(), pubs*each)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("order broken: %v", bad[:min(len(bad), 5)])
	}
}

func stats(t *testing.T, b broker.Broker) broker.Stats {
	t.Helper()
	r, ok := b.(broker.StatsReporter)
	if !ok {
		t.Fatalf("%T does not report Stats", b)
	}
	return r.Stats()
}

func testSlowHandler(t *testing.T, node func() broker.Broker) {
	a, b := node(), node()
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	var slowCalls atomic.Int64
	unsub, err := b.Subscribe("slow", func([]byte) {
		slowCalls.Add(1)
		<-release
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsub)
	fast, _ := collect(t, b, "fast", 4)

	// Publish to the stuck subscription until the node reports drops: Publish must
	// keep returning and the buffer must stay bounded.
	ctx := ctxT(t)
	before := stats(t, b).Dropped
	const limit = 200_000
	sent := 0
	for stats(t, b).Dropped == before {
		if sent >= limit {
			t.Fatalf("no drop counted after %d payloads to a stuck handler", sent)
		}
		for range 256 {
			if err := a.Publish(ctx, "slow", []byte("x")); err != nil {
				t.Fatalf("Publish to slow topic: %v", err)
			}
			sent++
		}
		if sent%4096 == 0 {
			// Let a remote node catch up before asking again.
			if err := a.Ping(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(t, a, "fast", []byte("still flowing"))
	if p := recv(t, fast, "payload on another topic"); string(p) != "still flowing" {
		t.Fatalf("got %q", p)
	}
	// The stuck handler's first call may still be starting; it must never overlap.
	deadline := time.Now().Add(Wait)
	for slowCalls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := slowCalls.Load(); n != 1 {
		t.Fatalf("stuck handler called %d times, want 1 (one at a time)", n)
	}
	unblock()
	// After release the subscription works again.
	ch, _ := collect(t, b, "slow", 1)
	publish(t, a, "slow", []byte("after"))
	for {
		if p := recv(t, ch, "payload after release"); string(p) == "after" {
			break
		}
	}
}

func testHandlerPanic(t *testing.T, node func() broker.Broker) {
	a, b := node(), node()
	var calls atomic.Int64
	unsub, err := b.Subscribe("boom", func(p []byte) {
		calls.Add(1)
		if string(p) == "panic" {
			panic("handler bug")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsub)
	ch, _ := collect(t, b, "boom", 4)
	publish(t, a, "boom", []byte("panic"))
	publish(t, a, "boom", []byte("ok"))
	recv(t, ch, "first")
	recv(t, ch, "second")
	deadline := time.Now().Add(Wait)
	for calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("handler called %d times after a panic, want 2", n)
	}
	if st := stats(t, b); st.HandlerPanics == 0 {
		t.Errorf("HandlerPanics = 0, want > 0")
	}
}

func testClose(t *testing.T, node func() broker.Broker) {
	a, b := node(), node()
	unsub, err := a.Subscribe("c", func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := collect(t, b, "c", 4)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	unsub() // after Close: harmless
	ctx := ctxT(t)
	if err := a.Publish(ctx, "c", []byte("x")); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := a.Subscribe("c", func([]byte) {}); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if err := a.Ping(ctx); err == nil {
		t.Fatalf("Ping after Close: nil, want an error")
	}
	// The other node is unaffected.
	publish(t, b, "c", []byte("y"))
	if p := recv(t, ch, "payload on the open node"); string(p) != "y" {
		t.Fatalf("got %q", p)
	}
}

// Benchmark measures Publish on pub and delivery to one subscriber on sub.
func Benchmark(b *testing.B, pub, sub broker.Broker) {
	ctx := context.Background()
	payload := bytes.Repeat([]byte("m"), 256)
	var got atomic.Int64
	done := make(chan struct{}, 1)
	var want atomic.Int64
	unsub, err := sub.Subscribe("bench", func([]byte) {
		if got.Add(1) == want.Load() {
			done <- struct{}{}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer unsub()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	want.Store(int64(b.N))
	for i := 0; i < b.N; i++ {
		// Stay well inside the subscription buffer so nothing is dropped.
		for int64(i)-got.Load() >= 512 {
			time.Sleep(10 * time.Microsecond)
		}
		if err := pub.Publish(ctx, "bench", payload); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(Wait):
		b.Fatalf("delivered %d of %d", got.Load(), b.N)
	}
}

// testOwnPayloadOnce: the publisher's own subscribers get each payload once,
// whether the backend echoes it through its server or hands it over
// directly and drops the echo (broker.EchoSkipper).
func testOwnPayloadOnce(t *testing.T, node func() broker.Broker) {
	a, b := node(), node()
	ch, _ := collect(t, a, "own", 64)
	for i := range 3 {
		publish(t, a, "own", fmt.Appendf(nil, "a%d", i))
	}
	// Once a's publishes are on the server, b's sentinel comes after every
	// copy of them, echo included, on a's connection.
	if err := a.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "own", []byte("end"))
	var got []string
	for {
		p := string(recv(t, ch, "publisher's payloads"))
		if p == "end" {
			break
		}
		got = append(got, p)
	}
	if fmt.Sprint(got) != "[a0 a1 a2]" {
		t.Errorf("publisher got %q before the sentinel, want [a0 a1 a2] once each", got)
	}
}

// testEncodedValue: through PublishEncoded, the publisher's SubscribeValue
// handlers get the value itself (nothing to decode), its Subscribe handlers
// and the other nodes the encoding.
func testEncodedValue(t *testing.T, node func() broker.Broker) {
	a, b := node(), node()
	ea, ok := a.(broker.EchoSkipper)
	if !ok {
		t.Skipf("%T does not skip its echo", a)
	}
	eb := b.(broker.EchoSkipper)
	type value struct{ n int }
	vals := make(chan any, 4)
	for _, e := range []broker.EchoSkipper{ea, eb} {
		unsub, err := e.SubscribeValue("enc", func(v any) { vals <- v })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(unsub)
	}
	raw, _ := collect(t, a, "enc", 4)
	v := &value{n: 7}
	if err := ea.PublishEncoded(ctxT(t), "enc", v, []byte("seven")); err != nil {
		t.Fatal(err)
	}
	if p := recv(t, raw, "encoding on the publisher's Subscribe"); string(p) != "seven" {
		t.Errorf("publisher's Subscribe handler got %q, want %q", p, "seven")
	}
	var gotValue, gotBytes bool
	for range 2 {
		select {
		case x := <-vals:
			switch x := x.(type) {
			case *value:
				gotValue = x == v
			case []byte:
				gotBytes = string(x) == "seven"
			default:
				t.Errorf("SubscribeValue handler got %T", x)
			}
		case <-time.After(Wait):
			t.Fatal("timed out waiting for SubscribeValue handlers")
		}
	}
	if !gotValue || !gotBytes {
		t.Errorf("publisher got the value: %v, peer got the encoding: %v", gotValue, gotBytes)
	}
	// Nothing more: the echo of the value does not come back as bytes.
	if err := ea.(broker.Broker).Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "enc", []byte("end"))
	for range 2 {
		select {
		case x := <-vals:
			if p, _ := x.([]byte); string(p) != "end" {
				t.Errorf("after the value, a handler got %v, want only the sentinel", x)
			}
		case <-time.After(Wait):
			t.Fatal("timed out waiting for the sentinel")
		}
	}
}
