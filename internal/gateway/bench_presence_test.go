package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// countingBroker counts what the gateway publishes on the presence topic.
type countingBroker struct {
	*broker.Memory
	presence atomic.Int64
}

func (c *countingBroker) PublishValue(ctx context.Context, topic string, v any) error {
	if topic == topicPresence {
		c.presence.Add(1)
	}
	return c.Memory.PublishValue(ctx, topic, v)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPresenceChurn: b.N users each connect a websocket and leave,
// one after another, while one socket watches them all; every user is one
// presence change up and one down. Reported per change: the broker
// messages published (ups, downs, and the node's beats meanwhile), the
// process CPU (the clients' included: an upper bound of the server's) and
// the presence pushes to the watcher. Run with -benchtime=10000x for the
// 10,000-user scenario of docs/benchmarks.md.
func BenchmarkPresenceChurn(b *testing.B) {
	br := &countingBroker{Memory: broker.NewMemory()}
	l := startLiveOn(b, br)
	l.g.pres.mu.Lock()
	l.g.pres.grace = time.Millisecond
	l.g.pres.max = b.N + 1
	l.g.pres.mu.Unlock()
	ctx := context.Background()
	users := make([]string, b.N)
	tokens := make([]string, b.N)
	for i := range users {
		users[i] = fmt.Sprintf("p%06d", i)
		tok, err := l.svc.GetToken(ctx, l.app, users[i], "", "")
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	if _, err := l.svc.GetToken(ctx, l.app, "watcher", "", ""); err != nil {
		b.Fatal(err)
	}
	watcher := l.dial(b, "watcher", url.Values{"capabilities": {"presence"}}, nil)
	s := l.g.reg.sockets(nil, userKey(l.app.ID, "watcher"))[0]
	if _, err := l.g.pres.watch(s, l.app.ID, users); err != nil {
		b.Fatal(err)
	}
	var pushes atomic.Int64
	go func() {
		for {
			if _, err := watcher.NextText(); err != nil {
				return
			}
			pushes.Add(1)
		}
	}()
	published, cpu := br.presence.Load(), cpuTime()
	b.ResetTimer()
	for i := range b.N {
		q := url.Values{"token": {tokens[i]}, "appId": {l.app.ID}}
		c, err := sioclient.DialWS(ctx, l.base, 4, q)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Send("40"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.NextText(); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	// Every user went up and down: wait for the downs after the grace.
	for deadline := time.Now().Add(time.Minute); pushes.Load() < int64(2*b.N); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d presence pushes of %d", pushes.Load(), 2*b.N)
		}
	}
	b.StopTimer()
	changes := float64(2 * b.N)
	b.ReportMetric(float64(br.presence.Load()-published)/changes, "broker-msgs/change")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/changes, "cpu-µs/change")
	b.ReportMetric(float64(pushes.Load())/changes, "pushes/change")
}

// startLiveOn is startLive on a broker of the test's own.
func startLiveOn(tb testing.TB, br broker.Broker) *liveGateway {
	tb.Helper()
	return startLiveWithBroker(tb, chat.Options{}, br)
}

// BenchmarkGroupReceipts500: a message in a 500-member group is read by the
// 499 other members, one mark-read each; the sender's receipts socket is
// pushed the readers. Reported: the time per read (the mark, the senders'
// lookup, the receipt published and batched) and the read-receipts pushes
// per message (at most one per second per device; two or three here where
// a push per reader would be 499).
func BenchmarkGroupReceipts500(b *testing.B) { groupReads(b, true) }

// BenchmarkGroupReads500NoReceipts is the same reads in a group over
// ReceiptsMaxGroup: the cost of a mark-read without receipts, to compare.
func BenchmarkGroupReads500NoReceipts(b *testing.B) { groupReads(b, false) }

func groupReads(b *testing.B, receipts bool) {
	const size = 500
	opts := chat.Options{ReceiptsMaxGroup: size}
	if !receipts {
		opts.ReceiptsMaxGroup = size - 1
	}
	l := startLiveWith(b, opts, "alice")
	ctx := context.Background()
	members := []string{"alice"}
	for i := range size - 1 {
		members = append(members, fmt.Sprintf("m%03d", i))
	}
	if err := l.svc.CreateGroup(ctx, l.app.ID, "big", "Big", "", members); err != nil {
		b.Fatal(err)
	}
	alice := l.dial(b, "alice", url.Values{"capabilities": {"receipts"}}, nil)
	var mu sync.Mutex
	told := map[string]int64{} // reader → the furthest read the sender was told of
	go func() {
		for {
			t, err := alice.NextText()
			if err != nil {
				return
			}
			var ev []json.RawMessage
			if len(t) > 2 && json.Unmarshal([]byte(t[2:]), &ev) == nil && len(ev) == 2 {
				var r struct{ Readers []ReaderMark }
				json.Unmarshal(ev[1], &r)
				mu.Lock()
				for _, m := range r.Readers {
					told[m.UserID] = max(told[m.UserID], m.ReadSeq)
				}
				mu.Unlock()
			}
		}
	}()
	sids := map[string]string{}
	for _, u := range members[1:] {
		ss, err := l.svc.Sessions(ctx, l.app.ID, u)
		if err != nil || len(ss) != 1 {
			b.Fatalf("sessions of %s: %v", u, err)
		}
		sids[u] = ss[0].SID
	}
	var last int64
	b.ResetTimer()
	for range b.N {
		m, err := l.svc.SendGroup(ctx, chat.SendInput{AppID: l.app.ID, SenderID: "alice", TargetID: "big", Type: 1, Content: json.RawMessage(`{"content":"read me"}`)})
		if err != nil {
			b.Fatal(err)
		}
		last = m.Seq
		for _, u := range members[1:] {
			if _, err := l.svc.MarkRead(ctx, l.app.ID, u, sids[u], ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	// The sender learns of every reader of the last message (the last
	// batch goes within a second).
	complete := func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, seq := range told {
			if seq >= last {
				n++
			}
		}
		return n == size-1
	}
	for deadline := time.Now().Add(10 * time.Second); receipts && !complete(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the sender was not told of every reader")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*(size-1)), "µs/read")
	b.ReportMetric(float64(l.g.receiptPushes())/float64(b.N), "pushes/msg")
}
