// Package bench holds chatd's cross-package benchmarks: the hot paths that
// the per-package benchmarks (internal/socketio, internal/store/...) do not
// cover on their own — the chat service's send path with its reads, token
// authentication, and whole socket round trips through an in-process chatd.
//
//	go test ./bench -run '^$' -bench . -benchmem
//	go test ./bench -run '^$' -bench E2E -cpuprofile cpu.out   # then go tool pprof
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/server"
	"github.com/chatd/chatd/internal/socketio"
	"github.com/chatd/chatd/internal/socketio/sioclient"
	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/sqlite"
)

// newService returns a chat service over a fresh SQLite store with an app
// and users u0…u(n-1).
func newService(tb testing.TB, users int) (*chat.Service, store.App) {
	tb.Helper()
	return newServiceWith(tb, users, chat.Options{})
}

func newServiceWith(tb testing.TB, users int, opts chat.Options) (*chat.Service, store.App) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "chatd.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	svc := chat.New(st, opts)
	app, err := svc.CreateApp(ctx, "bench", "")
	if err != nil {
		tb.Fatal(err)
	}
	for i := range users {
		if _, err := svc.GetToken(ctx, app, fmt.Sprintf("u%d", i), fmt.Sprintf("User %d", i), ""); err != nil {
			tb.Fatal(err)
		}
	}
	return svc, app
}

func content(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"content":"message %d"}`, i))
}

// BenchmarkServiceSendPrivate is one private send through the chat service:
// the user reads, the conversation lookup, the stored send and the member
// list, without any socket. It is the per-message floor of the socket path.
func BenchmarkServiceSendPrivate(b *testing.B) {
	svc, app := newService(b, 2)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := svc.SendPrivate(ctx, chat.SendInput{AppID: app.ID, SenderID: "u0", TargetID: "u1", Type: 1, Content: content(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServiceSendPrivateParallel is the same from many goroutines, as
// many sockets send at once (the store batches their commits).
func BenchmarkServiceSendPrivateParallel(b *testing.B) {
	svc, app := newService(b, 64)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		me := (next.Add(1) - 1) % 32
		from, to := fmt.Sprintf("u%d", 2*me), fmt.Sprintf("u%d", 2*me+1)
		for i := 0; pb.Next(); i++ {
			if _, err := svc.SendPrivate(ctx, chat.SendInput{AppID: app.ID, SenderID: from, TargetID: to, Type: 1, Content: content(i)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkServiceSendGroup1000 is one group send to 1,000 members through
// the service: the member list read dominates, and the notifier (here a
// no-op) gets 1,000 recipients.
func BenchmarkServiceSendGroup1000(b *testing.B) {
	svc, app := newServiceWith(b, 1000, chat.Options{Notifier: nopNotifier{}})
	ctx := context.Background()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
	}
	if err := svc.CreateGroup(ctx, app.ID, "g", "Group", "", ids); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := svc.SendGroup(ctx, chat.SendInput{AppID: app.ID, SenderID: "u0", TargetID: "g", Type: 1, Content: content(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate is a socket handshake's token check: MAC and one
// user read.
func BenchmarkAuthenticate(b *testing.B) {
	svc, app := newService(b, 1)
	ctx := context.Background()
	tok, err := svc.GetToken(ctx, app, "u0", "User 0", "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Authenticate(ctx, app.ID, tok); err != nil {
			b.Fatal(err)
		}
	}
}

type nopNotifier struct{}

func (nopNotifier) MessageSent(context.Context, chat.Delivery)    {}
func (nopNotifier) SessionRead(context.Context, chat.ReadMark)    {}
func (nopNotifier) TokensRevoked(context.Context, string, string) {}
func (nopNotifier) UserChanged(context.Context, string, string)   {}

// startChatd runs a whole chatd (store, broker, gateway, HTTP) in process on
// a loopback listener and returns its URL and a token maker.
func startChatd(tb testing.TB, users int) (base string, appID string, tokens []string, srv *server.Server) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	cfg := config.Default()
	dir := tb.TempDir()
	cfg.Store = "sqlite:" + filepath.Join(dir, "chatd.db")
	cfg.Blobs = "file:" + filepath.Join(dir, "files")
	cfg.UserSendRate, cfg.AppSendRate, cfg.HandshakeRateIP, cfg.MaxUserSockets, cfg.UserEventRate = 0, 0, 0, 0, 0
	cfg.UserAnswerRate = 0
	srv, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	hs := httptest.NewServer(srv.Handler)
	tb.Cleanup(hs.Close)
	app, err := srv.Chat.CreateApp(ctx, "bench", "")
	if err != nil {
		tb.Fatal(err)
	}
	for i := range users {
		tok, err := srv.Chat.GetToken(ctx, app, fmt.Sprintf("u%d", i), fmt.Sprintf("User %d", i), "")
		if err != nil {
			tb.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	return hs.URL, app.ID, tokens, srv
}

// connect opens a Socket.IO v4 websocket client authenticated by query.
func connect(tb testing.TB, base, appID, token string) *sioclient.WS {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.DialWS(ctx, base, 4, url.Values{"token": {token}, "appId": {appID}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if err := c.Send("40"); err != nil {
		tb.Fatal(err)
	}
	m, err := c.NextText()
	if err != nil || !strings.HasPrefix(m, "40") {
		tb.Fatalf("connect: %q %v", m, err)
	}
	return c
}

// next returns the next packet that starts with prefix, skipping others.
func next(tb testing.TB, c *sioclient.WS, prefix string) string {
	tb.Helper()
	for {
		m, err := c.NextText()
		if err != nil {
			if err == io.EOF {
				tb.Fatal("connection closed")
			}
			tb.Fatal(err)
		}
		if strings.HasPrefix(m, prefix) {
			return m
		}
	}
}

// BenchmarkE2EPrivateSend is one private message through a whole in-process
// chatd: the sender's event and ack, and the push read by the receiver.
func BenchmarkE2EPrivateSend(b *testing.B) {
	base, appID, tokens, _ := startChatd(b, 2)
	a := connect(b, base, appID, tokens[0])
	r := connect(b, base, appID, tokens[1])
	b.ReportAllocs()
	// The process's CPU (server and both clients) per message: wall time
	// alone hides a change on a shared machine.
	defer reportCPU(b, cpuTime())
	for i := 0; b.Loop(); i++ {
		if err := a.Send(fmt.Sprintf(`42%d["send-private-message",{"targetId":"u1","messageType":1,"content":{"content":"m%d"}}]`, i, i)); err != nil {
			b.Fatal(err)
		}
		if ack := next(b, a, "43"); !strings.Contains(ack, "[null,") {
			b.Fatalf("ack %s", ack)
		}
		next(b, r, `42["message"`)
	}
}

// BenchmarkE2EGroupFanout100 is one group message to 100 connected members,
// until every member has read its push; ns/op divided by 99 is the cost of
// one delivery, client reads included.
func BenchmarkE2EGroupFanout100(b *testing.B) {
	const n = 100
	base, appID, tokens, srv := startChatd(b, n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
	}
	if err := srv.Chat.CreateGroup(context.Background(), appID, "g", "Group", "", ids); err != nil {
		b.Fatal(err)
	}
	cs := make([]*sioclient.WS, n)
	for i := range cs {
		cs[i] = connect(b, base, appID, tokens[i])
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := cs[0].Send(fmt.Sprintf(`42%d["send-group-message",{"targetId":"g","messageType":1,"content":{"content":"m%d"}}]`, i, i)); err != nil {
			b.Fatal(err)
		}
		next(b, cs[0], "43")
		for _, c := range cs[1:] {
			next(b, c, `42["message"`)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n-1)), "ns/delivery")
}

// cachedReads is the read cache proposed for the send path, as a store
// wrapper so that its effect can be measured here: users, private
// conversations and member lists are kept in memory (this benchmark never
// changes them; a real cache invalidates on UpsertUser, BumpTokenVersion,
// AddMembers, RemoveMembers and UpsertGroup).
type cachedReads struct {
	store.Store
	mu       sync.Mutex
	users    map[[2]string]store.User
	privates map[[3]string]store.Conversation
	members  map[string]versionedMembers
}

func newCachedReads(st store.Store) *cachedReads {
	return &cachedReads{Store: st, users: map[[2]string]store.User{}, privates: map[[3]string]store.Conversation{}, members: map[string]versionedMembers{}}
}

func (c *cachedReads) User(ctx context.Context, appID, userID string) (store.User, error) {
	k := [2]string{appID, userID}
	c.mu.Lock()
	u, ok := c.users[k]
	c.mu.Unlock()
	if ok {
		return u, nil
	}
	u, err := c.Store.User(ctx, appID, userID)
	if err == nil {
		c.mu.Lock()
		c.users[k] = u
		c.mu.Unlock()
	}
	return u, err
}

func (c *cachedReads) OpenPrivate(ctx context.Context, appID, a, b string) (store.Conversation, error) {
	k := [3]string{appID, a, b}
	c.mu.Lock()
	conv, ok := c.privates[k]
	c.mu.Unlock()
	if ok {
		return conv, nil
	}
	conv, err := c.Store.OpenPrivate(ctx, appID, a, b)
	if err == nil {
		c.mu.Lock()
		c.privates[k] = conv
		c.mu.Unlock()
	}
	return conv, err
}

func (c *cachedReads) Members(ctx context.Context, conversationID string) ([]store.Member, int64, error) {
	c.mu.Lock()
	e, ok := c.members[conversationID]
	c.mu.Unlock()
	if ok {
		return e.ms, e.version, nil
	}
	ms, v, err := c.Store.Members(ctx, conversationID)
	if err == nil {
		c.mu.Lock()
		c.members[conversationID] = versionedMembers{ms, v}
		c.mu.Unlock()
	}
	return ms, v, err
}

type versionedMembers struct {
	ms      []store.Member
	version int64
}

// BenchmarkServiceSendPrivateCachedReads is BenchmarkServiceSendPrivate with
// the read cache: what the send path costs when only the write remains.
func BenchmarkServiceSendPrivateCachedReads(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "chatd.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := chat.New(newCachedReads(st), chat.Options{})
	app, err := svc.CreateApp(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	for _, u := range []string{"u0", "u1"} {
		if _, err := svc.GetToken(ctx, app, u, "User "+u, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := svc.SendPrivate(ctx, chat.SendInput{AppID: app.ID, SenderID: "u0", TargetID: "u1", Type: 1, Content: content(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSendPacket is the Socket.IO decode of one send event.
func BenchmarkDecodeSendPacket(b *testing.B) {
	pkt := []byte(`217["send-private-message",{"targetId":"u1","messageType":1,"content":{"content":"hello there"},"clientMsgId":"c-123"}]`)
	b.ReportAllocs()
	for b.Loop() {
		p, err := socketio.DecodePacket(pkt)
		if err != nil || len(p.Args) != 2 {
			b.Fatal(err)
		}
	}
}
