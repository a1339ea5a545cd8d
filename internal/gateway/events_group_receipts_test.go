package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
	"github.com/chatd/chatd/internal/store/sqlite"
)

// startLiveWith is startLive with chat options of the test's own.
func startLiveWith(tb testing.TB, opts chat.Options, users ...string) *liveGateway {
	return startLiveWithBroker(tb, opts, broker.NewMemory(), users...)
}

func startLiveWithBroker(tb testing.TB, opts chat.Options, br broker.Broker, users ...string) *liveGateway {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "gw.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	opts.Notifier = NewNotifier(br, nil)
	svc := chat.New(st, opts)
	sio := socketio.NewServer(socketio.Options{PingInterval: time.Hour, PingTimeout: time.Hour, SendQueue: 1 << 16})
	g, err := New(svc, sio, br, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(sio)
	tb.Cleanup(func() { ts.Close(); sio.Close(); g.Close() })
	app, err := svc.CreateApp(ctx, "push", "")
	if err != nil {
		tb.Fatal(err)
	}
	for _, u := range users {
		if _, err := svc.GetToken(ctx, app, u, strings.ToUpper(u), ""); err != nil {
			tb.Fatal(err)
		}
	}
	return &liveGateway{g: g, svc: svc, app: app, base: ts.URL}
}

// TestGroupReceiptsNoStorm: 499 members of a 500-member group read a
// message: its sender's receipts socket learns of every reader in at most
// one read-receipts push per second (not one per reader), and the
// node-chat socket gets none.
func TestGroupReceiptsNoStorm(t *testing.T) {
	const size = 500
	l := startLiveWith(t, chat.Options{ReceiptsMaxGroup: size}, "alice")
	ctx := context.Background()
	members := []string{"alice"}
	for i := range size - 1 {
		members = append(members, fmt.Sprintf("m%03d", i))
	}
	if err := l.svc.CreateGroup(ctx, l.app.ID, "big", "Big", "", members); err != nil {
		t.Fatal(err)
	}
	alice := l.dial(t, "alice", url.Values{"capabilities": {"receipts"}}, nil)
	alicePlain := l.dial(t, "alice", nil, nil)
	sent, err := l.svc.SendGroup(ctx, chat.SendInput{AppID: l.app.ID, SenderID: "alice", TargetID: "big", Type: 1, Content: json.RawMessage(`{"content":"read me"}`)})
	if err != nil {
		t.Fatal(err)
	}
	sids := map[string]string{}
	for _, u := range members[1:] {
		ss, err := l.svc.Sessions(ctx, l.app.ID, u)
		if err != nil || len(ss) != 1 {
			t.Fatalf("sessions of %s: %v %v", u, ss, err)
		}
		sids[u] = ss[0].SID
	}

	start := time.Now()
	for _, u := range members[1:] {
		if _, err := l.svc.MarkRead(ctx, l.app.ID, u, sids[u], ""); err != nil {
			t.Fatal(err)
		}
	}
	readers := map[string]int64{}
	pushes := 0
	for len(readers) < size-1 {
		f := nextFrame(t, alice)
		var r struct {
			SID     string       `json:"sid"`
			Readers []ReaderMark `json:"readers"`
		}
		if err := json.Unmarshal(f.data, &r); err != nil || f.event != "read-receipts" || r.SID != sent.SendSession.SID {
			t.Fatalf("got %s %s, want read-receipts of %s", f.event, f.data, sent.SendSession.SID)
		}
		pushes++
		for _, m := range r.Readers {
			readers[m.UserID] = m.ReadSeq
		}
	}
	elapsed := time.Since(start)
	for u, seq := range readers {
		if seq != sent.Seq {
			t.Fatalf("%s read to %d, want %d", u, seq, sent.Seq)
		}
	}
	// At most one push per interval begun since the first read, whatever
	// the machine's speed.
	if max := int(elapsed/groupReceiptInterval) + 1; pushes > max {
		t.Fatalf("%d read-receipts pushes in %v for %d readers; want at most %d", pushes, elapsed, size-1, max)
	}
	t.Logf("%d readers, %d pushes in %v", len(readers), pushes, elapsed)
	if got := l.g.receiptPushes(); got != pushes {
		t.Fatalf("batcher counted %d pushes, the socket got %d", got, pushes)
	}
	// Barrier: the node-chat socket got nothing.
	emitAck(t, alicePlain, 1, "session-list", nil)
	if len(pending[alicePlain]) != 0 {
		t.Fatalf("node-chat socket got %+v", pending[alicePlain])
	}
	delete(pending, alicePlain)
	delete(pending, alice)
}

// TestGroupReceiptsOverSize: above ReceiptsMaxGroup nobody is pushed
// receipts; the readers are only counted by message-readers.
func TestGroupReceiptsOverSize(t *testing.T) {
	l := startLiveWith(t, chat.Options{ReceiptsMaxGroup: 2}, "alice", "bob", "carol")
	ctx := context.Background()
	if err := l.svc.CreateGroup(ctx, l.app.ID, "g", "G", "", []string{"alice", "bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	alice := l.dial(t, "alice", url.Values{"capabilities": {"receipts"}}, nil)
	if _, err := l.svc.SendGroup(ctx, chat.SendInput{AppID: l.app.ID, SenderID: "alice", TargetID: "g", Type: 1, Content: json.RawMessage(`{"content":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	ss, _ := l.svc.Sessions(ctx, l.app.ID, "bob")
	if _, err := l.svc.MarkRead(ctx, l.app.ID, "bob", ss[0].SID, ""); err != nil {
		t.Fatal(err)
	}
	emitAck(t, alice, 1, "session-list", nil)
	if len(pending[alice]) != 0 || l.g.receiptPushes() != 0 {
		t.Fatalf("receipts pushed in a group over the size: %+v", pending[alice])
	}
	delete(pending, alice)
}
