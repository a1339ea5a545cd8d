package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

func benchStore(b *testing.B, maxBatch int) *Store {
	b.Helper()
	s, err := open(context.Background(), filepath.Join(b.TempDir(), "chatd.db"), maxBatch)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchGroup(b *testing.B, s *Store, members int) (app string, c store.Conversation, users []string) {
	b.Helper()
	ctx := context.Background()
	app = store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Name: "bench", Secret: "s"}); err != nil {
		b.Fatal(err)
	}
	for i := range members {
		users = append(users, fmt.Sprintf("u%d", i))
	}
	c, err := s.UpsertGroup(ctx, app, "g", "g", "", users)
	if err != nil {
		b.Fatal(err)
	}
	return app, c, users
}

var benchContent = json.RawMessage(`{"content":"hello, this is a fairly ordinary chat message 你好，这是一条普通的聊天消息"}`)

func BenchmarkSend(b *testing.B) {
	s := benchStore(b, defaultMaxBatch)
	_, c, _ := benchGroup(b, s, 2)
	ctx := context.Background()
	b.ResetTimer()
	cpu := startCPU()
	for b.Loop() {
		if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "u0", Type: 1, Content: benchContent}); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkSendParallel sends into one hot conversation from 32 goroutines
// per core, with group commit and with one commit per message.
func BenchmarkSendParallel(b *testing.B) {
	for _, tc := range []struct {
		name     string
		maxBatch int
	}{{"batched", defaultMaxBatch}, {"unbatched", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			s := benchStore(b, tc.maxBatch)
			_, c, users := benchGroup(b, s, 64)
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				sender := users[int(next.Add(1))%len(users)]
				for pb.Next() {
					if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: sender, Type: 1, Content: benchContent}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			b.ReportMetric(float64(b.N)/float64(s.batches.Load()), "msg/commit")
		})
	}
}

func BenchmarkHistory(b *testing.B) {
	s := benchStore(b, defaultMaxBatch)
	_, c, _ := benchGroup(b, s, 2)
	ctx := context.Background()
	const n = 2000
	seedSends(b, s, c.ID, []string{"u0", "u1"}, n)
	b.ResetTimer()
	cpu := startCPU()
	i := 0
	for b.Loop() {
		before := int64(51 + i%(n-50))
		i++
		h, err := s.History(ctx, c.ID, "u0", before, 50)
		if err != nil || len(h) != 50 {
			b.Fatalf("History = %d, %v", len(h), err)
		}
	}
	cpu.report(b)
}

// cpuClock measures the process's CPU time (user+system, every thread:
// the driver's, the GC's) across a benchmark loop; on a shared machine it
// moves less than wall time.
type cpuClock time.Duration

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock(processCPU()) }

// report adds the CPU per op, in µs, to b's results.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-time.Duration(c))/1e3/float64(b.N), "cpu-µs/op")
}

// BenchmarkSessions lists the sessions of a user in 200 conversations.
func BenchmarkSessions(b *testing.B) {
	s := benchStore(b, defaultMaxBatch)
	ctx := context.Background()
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Name: "bench", Secret: "s"}); err != nil {
		b.Fatal(err)
	}
	const convs = 200
	for i := range convs {
		peer := fmt.Sprintf("peer%d", i)
		if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: peer, Name: peer}); err != nil {
			b.Fatal(err)
		}
		var c store.Conversation
		var err error
		if i%4 == 0 {
			c, err = s.UpsertGroup(ctx, app, fmt.Sprintf("g%d", i), "group", "", []string{"me", peer})
		} else {
			c, err = s.OpenPrivate(ctx, app, "me", peer)
		}
		if err != nil {
			b.Fatal(err)
		}
		seedSends(b, s, c.ID, []string{"me", peer}, 3)
	}
	b.ResetTimer()
	for b.Loop() {
		ss, err := s.Sessions(ctx, app, "me")
		if err != nil || len(ss) != convs {
			b.Fatalf("Sessions = %d, %v", len(ss), err)
		}
	}
}

// seedSends sends n messages concurrently so group commit makes seeding quick.
func seedSends(b *testing.B, s *Store, conv string, senders []string, n int) {
	b.Helper()
	ctx := context.Background()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, _, err := s.Send(ctx, store.NewMessage{ConversationID: conv, SenderID: senders[i%len(senders)], Type: 1, Content: benchContent})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}
