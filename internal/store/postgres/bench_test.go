package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chatd/chatd/internal/store"
)

// benchGroup makes an app and a group of n members u00…, returning the group.
func benchGroup(b *testing.B, s *Store, n int) (app string, c store.Conversation) {
	b.Helper()
	ctx := context.Background()
	app = store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
		b.Fatal(err)
	}
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("u%02d", i)
		if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: users[i], Name: "User " + users[i]}); err != nil {
			b.Fatal(err)
		}
	}
	c, err := s.UpsertGroup(ctx, app, "hot", "hot", "", users)
	if err != nil {
		b.Fatal(err)
	}
	return app, c
}

var content = json.RawMessage(`{"text":"hello, this is a benchmark message of ordinary length"}`)

// BenchmarkSendSerial is one sender: the latency of a lone Send.
func BenchmarkSendSerial(b *testing.B) {
	for _, mode := range []struct {
		name     string
		batching bool
	}{{"batched", true}, {"txn-per-message", false}} {
		b.Run(mode.name, func(b *testing.B) {
			s := openMode(b, mode.batching)
			_, c := benchGroup(b, s, 1)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "u00", Type: 1, Content: content}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// BenchmarkSendParallel is 32 senders on one hot conversation, the case
// group commit is for, against a transaction per message.
func BenchmarkSendParallel(b *testing.B) {
	for _, mode := range []struct {
		name     string
		batching bool
	}{{"batched", true}, {"txn-per-message", false}} {
		b.Run(mode.name, func(b *testing.B) {
			const senders = 32
			s := openMode(b, mode.batching)
			_, c := benchGroup(b, s, senders)
			ctx := context.Background()
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := range senders {
				wg.Go(func() {
					sender := fmt.Sprintf("u%02d", g)
					for next.Add(1) <= int64(b.N) {
						if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: sender, Type: 1, Content: content}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			if got, err := s.Conversation(ctx, c.ID); err != nil || got.LastSeq != int64(b.N) {
				b.Fatalf("LastSeq = %d, %v; want %d", got.LastSeq, err, b.N)
			}
		})
	}
}

// BenchmarkHistory reads a page of 50 from a conversation of 2,000 messages.
func BenchmarkHistory(b *testing.B) {
	s := openTest(b)
	_, c := benchGroup(b, s, 4)
	sendMany(b, s, c.ID, 4, 2000)
	ctx := context.Background()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		before := int64(2000 - (i*50)%1900)
		i++
		h, err := s.History(ctx, c.ID, before, 50)
		if err != nil || len(h) != 50 {
			b.Fatalf("History = %d, %v", len(h), err)
		}
	}
}

// sendMany sends n messages into conv from members u00…u(senders-1), in parallel.
func sendMany(b *testing.B, s *Store, conv string, senders, n int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, _, err := s.Send(context.Background(), store.NewMessage{ConversationID: conv,
					SenderID: fmt.Sprintf("u%02d", g), Type: 1, Content: content}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkSessions lists the sessions of a user in 1,000 conversations
// (800 private, 200 groups) with messages, in a store of 5,000.
func BenchmarkSessions(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
		b.Fatal(err)
	}
	var convs []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < 5000; i += 8 {
				var c store.Conversation
				var err error
				me := "me"
				if i >= 1000 {
					me = fmt.Sprintf("other%d", i%50)
				}
				peer := fmt.Sprintf("p%04d", i)
				if i%5 == 0 {
					c, err = s.UpsertGroup(ctx, app, fmt.Sprintf("g%04d", i), "group", "", []string{me, peer, "x", "y"})
				} else {
					c, err = s.OpenPrivate(ctx, app, me, peer)
				}
				if err == nil {
					_, err = s.UpsertUser(ctx, store.User{AppID: app, UserID: peer, Name: "Peer " + peer})
				}
				for j := 0; err == nil && j < 2; j++ {
					_, _, err = s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: peer, Type: 1, Content: content})
				}
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				convs = append(convs, c.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if _, err := s.pool.Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ss, err := s.Sessions(ctx, app, "me")
		if err != nil || len(ss) != 1000 {
			b.Fatalf("Sessions = %d, %v", len(ss), err)
		}
	}
}
