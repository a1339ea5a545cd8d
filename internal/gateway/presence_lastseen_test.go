package gateway

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/socketio"
)

// TestLastSeenOutlivesRestart: a user's lastSeen is stored when they go
// offline and a node started afterwards (an empty presence table) answers
// it, by GET /user/online and presence-subscribe alike.
func TestLastSeenOutlivesRestart(t *testing.T) {
	l := startLive(t, "alice", "bob")
	l.g.pres.mu.Lock()
	l.g.pres.grace = 10 * time.Millisecond
	l.g.pres.mu.Unlock()
	ctx := context.Background()
	if err := l.svc.CreateGroup(ctx, l.app.ID, "g", "G", "", []string{"alice", "bob"}); err != nil {
		t.Fatal(err)
	}
	alice := l.dial(t, "alice", nil, nil)
	alice.Close()
	var seen int64
	for deadline := time.Now().Add(10 * time.Second); seen == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("alice never went offline")
		}
		if st := l.g.Online(l.app.ID, []string{"alice"})[0]; !st.Online {
			seen = st.LastSeen
		}
	}
	l.g.pres.flushSeen() // what the next tick would do

	// A new node on the same store knows nothing in memory.
	br := broker.NewMemory()
	g2, err := New(l.svc, socketio.NewServer(socketio.Options{}), br, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	got := g2.Online(l.app.ID, []string{"alice", "never"})
	if got[0] != (PresenceState{UserID: "alice", LastSeen: seen}) || got[1] != (PresenceState{UserID: "never"}) {
		t.Fatalf("after restart: %+v, want alice last seen at %d", got, seen)
	}

	// presence-subscribe on the first node after its memory is lost too.
	l.g.pres.mu.Lock()
	delete(l.g.pres.users, userKey(l.app.ID, "alice"))
	l.g.pres.mu.Unlock()
	bob := l.dial(t, "bob", url.Values{"capabilities": {"presence"}}, nil)
	f := emitAck(t, bob, 1, "presence-subscribe", map[string]any{"userIds": []string{"alice"}})
	if want := fmt.Sprintf(`[{"userId":"alice","online":false,"lastSeen":%d}]`, seen); string(f.data) != want {
		t.Fatalf("presence-subscribe: %s %s, want %s", f.err, f.data, want)
	}
}

// TestLastSeenBatched: a disconnect storm is one store write per flush.
func TestLastSeenBatched(t *testing.T) {
	l := startLive(t)
	p := l.g.pres
	at := time.Now().UnixMilli()
	ids := make([]string, 1000)
	p.mu.Lock()
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
		p.saveSeenLocked(l.app.ID, ids[i], at)
		p.saveSeenLocked(l.app.ID, ids[i], at-5) // an older time changes nothing
	}
	queued := len(p.seen)
	p.mu.Unlock()
	if queued != len(ids) {
		t.Fatalf("%d queued, want %d", queued, len(ids))
	}
	p.flushSeen()
	got, err := l.svc.LastSeen(context.Background(), l.app.ID, ids)
	if err != nil || len(got) != len(ids) || got["u7"].UnixMilli() != at {
		t.Fatalf("stored %d of %d (%v)", len(got), len(ids), err)
	}
}
