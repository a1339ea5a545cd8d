package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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

var content = json.RawMessage(`{"content":"hello, this is a benchmark message of ordinary length 你好，这是一条普通长度的消息"}`)

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
		h, err := s.History(ctx, c.ID, "u00", before, 50)
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

// BenchmarkSessions lists the sessions of a user in 1,000 of 10,000
// conversations (one in five a group) holding about 60,000 messages, the
// shape measured in the storage notes. The data is generated in SQL.
func BenchmarkSessions(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO users (app_id, user_id, name, avatar_uri, created_at)
		 SELECT $1, 'p' || i, 'Peer ' || i, 'p.png', 1 FROM generate_series(0, 9999) AS i`,
		`INSERT INTO conversations (id, app_id, type, key, name, last_seq, last_msg_at, created_at)
		 SELECT substr(md5(i::text), 1, 24), $1, CASE WHEN i % 5 = 0 THEN 2 ELSE 1 END,
		        convert_to('k' || i, 'UTF8'), 'group ' || i, 1 + i % 11, 1700000000000 + i * 1000, 1
		 FROM generate_series(0, 9999) AS i`,
		`INSERT INTO members (conversation_id, app_id, user_id, sid, peer_id, read_seq, created_at)
		 SELECT substr(md5(i::text), 1, 24), $1, u.me, substr(md5('s' || i || u.me), 1, 24),
		        CASE WHEN i % 5 = 0 THEN '' WHEN u.me = 'p' || i THEN CASE WHEN i < 1000 THEN 'me' ELSE 'o' || i % 50 END ELSE 'p' || i END,
		        0, 1
		 FROM generate_series(0, 9999) AS i,
		      LATERAL (VALUES (CASE WHEN i < 1000 THEN 'me' ELSE 'o' || i % 50 END), ('p' || i)) AS u(me)`,
		`INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, created_at)
		 SELECT substr(md5(i::text), 1, 24), q, substr(md5('m' || i || '.' || q), 1, 24), 'p' || i, 1,
		        '{"text":"hello, this is a benchmark message of ordinary length"}', 1700000000000 + i * 1000
		 FROM generate_series(0, 9999) AS i, generate_series(1, 1 + i % 11) AS q`,
		`ANALYZE`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{app}
		}
		if _, err := s.pool.Exec(ctx, q, args...); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		ss, err := s.Sessions(ctx, app, "me")
		if err != nil || len(ss) != 1000 {
			b.Fatalf("Sessions = %d, %v", len(ss), err)
		}
	}
}
