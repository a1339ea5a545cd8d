package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// BenchmarkDeliverGroup1000 measures the push of one group message to 1,000
// members, one websocket each, the sender among them with a second device,
// counted until every push reached its client.
func BenchmarkDeliverGroup1000(b *testing.B) {
	const members = 1000
	users := make([]string, members)
	for i := range users {
		users[i] = fmt.Sprintf("u%04d", i)
	}
	l := startLive(b, users...)
	socks := make([]*sioclient.WS, members)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, u := range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			socks[i] = l.dial(b, u, nil, nil)
		}()
	}
	wg.Wait()
	l.dial(b, users[0], nil, nil) // the sender's other device: no push
	d := chat.Delivery{AppID: l.app.ID, Origin: "elsewhere", Message: chat.Message{
		MsgID: "6b08fc75dc51166a05e6b831", Content: json.RawMessage(`{"content":"hello there, a hundred bytes or so"}`),
		ConversationType: 2, SenderUserID: users[0], TargetID: "g", MessageType: 1, Date: "10:00",
		SendUser: chat.UserRef{Name: "U0000"}, Seq: 1, Timestamp: 1,
	}}
	for i, u := range users {
		d.Recipients = append(d.Recipients, chat.Recipient{UserID: u, Session: chat.SessionRef{SID: fmt.Sprintf("6b08fc75701c630617e%05d", i), Title: "Group", Avatar: "https://a/g.png"}})
	}
	var received atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range socks[1:] {
		go func() {
			for ctx.Err() == nil {
				if _, err := c.Next(); err != nil {
					return
				}
				received.Add(1)
			}
		}()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l.g.deliverMessage(d)
	}
	want := int64(b.N) * (members - 1)
	deadline := time.Now().Add(time.Minute)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if got := received.Load(); got != want {
		b.Fatalf("received %d pushes, want %d", got, want)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/push")
}
