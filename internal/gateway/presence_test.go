package gateway

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// TestPresence: a subscriber sees a contact go online with their first
// socket and offline after the grace period that follows their last; a
// stranger's presence is not disclosed; node-chat sockets get no push.
func TestPresence(t *testing.T) {
	l := startLive(t, "alice", "bob", "carol")
	l.g.pres.mu.Lock()
	l.g.pres.grace = 50 * time.Millisecond
	l.g.pres.mu.Unlock()
	ctx := context.Background()
	if _, err := l.svc.SendPrivate(ctx, chat.SendInput{AppID: l.app.ID, SenderID: "bob", TargetID: "alice", Type: 1, Content: json.RawMessage(`{"content":"hi"}`)}); err != nil {
		t.Fatal(err)
	}
	caps := url.Values{"capabilities": {"presence"}}
	alice := l.dial(t, "alice", caps, nil)
	alicePlain := l.dial(t, "alice", nil, nil)

	f := emitAck(t, alice, 1, "presence-subscribe", map[string]any{"userIds": []string{"bob", "carol"}})
	var states []PresenceState
	if json.Unmarshal(f.data, &states); f.err != nil || len(states) != 1 || states[0] != (PresenceState{UserID: "bob"}) {
		t.Fatalf("subscribe ack %s %s: want bob offline only (carol is a stranger)", f.err, f.data)
	}
	emitAck(t, alicePlain, 2, "presence-subscribe", map[string]any{"userIds": []string{"bob"}})
	for i, tc := range []struct {
		arg  any
		want string
	}{
		{nil, "missing event payload"},
		{map[string]any{"userIds": []string{}}, "non-empty"},
		{map[string]any{"userIds": make([]string, DefaultPresenceMaxSubscriptions+1)}, "at most"},
	} {
		if f := emitAck(t, alice, 3+i, "presence-subscribe", tc.arg); !strings.Contains(string(f.err), tc.want) {
			t.Errorf("presence-subscribe %v: %s, want %q", tc.arg, f.err, tc.want)
		}
	}

	expect := func(online bool) PresenceState {
		t.Helper()
		f := nextFrame(t, alice)
		var st PresenceState
		json.Unmarshal(f.data, &st)
		if f.event != "presence" || st.UserID != "bob" || st.Online != online {
			t.Fatalf("got %s %s, want bob online=%v", f.event, f.data, online)
		}
		return st
	}
	bob := l.dial(t, "bob", nil, nil)
	expect(true)
	bob2 := l.dial(t, "bob", nil, nil)
	bob.Close() // bob2 remains: still online
	before := time.Now().UnixMilli()
	bob2.Close()
	if st := expect(false); st.LastSeen < before-1000 || st.LastSeen > time.Now().UnixMilli() {
		t.Fatalf("lastSeen %d, closed at about %d", st.LastSeen, before)
	}
	f = emitAck(t, alice, 10, "presence-subscribe", map[string]any{"userIds": []string{"bob"}})
	if json.Unmarshal(f.data, &states); len(states) != 1 || states[0].Online || states[0].LastSeen == 0 {
		t.Fatalf("re-subscribe ack %s", f.data)
	}
	if online := l.g.Online(l.app.ID, []string{"bob", "alice"}); online[0].Online || !online[1].Online {
		t.Fatalf("Online = %+v", online)
	}

	// After unsubscribing, bob's return is not pushed; the barrier ack proves
	// it (the push would be queued first).
	emitAck(t, alice, 11, "presence-unsubscribe", map[string]any{"userIds": []string{"bob"}})
	l.dial(t, "bob", nil, nil)
	deadline := time.Now().Add(10 * time.Second)
	for !l.g.Online(l.app.ID, []string{"bob"})[0].Online && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // until the table has bob back, whose push would precede the acks below
	}
	for i, s := range []*sioclient.WS{alice, alicePlain} {
		emitAck(t, s, 20+i, "session-list", nil)
		if len(pending[s]) > 0 {
			t.Errorf("socket %d got %+v", i, pending[s])
		}
	}
}

// TestPresenceSweepGone: the users of a node taken as dead who have no
// socket left on a live node are the ones handed on for user.offline; one
// still connected here is not.
func TestPresenceSweepGone(t *testing.T) {
	l := startLive(t, "alice", "bob", "carol")
	l.dial(t, "carol", nil, nil)
	p := l.g.pres
	// carol's "up" from this node comes back through the broker.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		var here bool
		if u := p.users[userKey(l.app.ID, "carol")]; u != nil {
			_, here = u.nodes[p.node]
		}
		p.mu.Unlock()
		if here {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("carol's socket is not in the presence table")
		}
	}
	for _, u := range []string{"bob", "carol"} {
		p.deliver(presenceNote{Node: "dead", Kind: "up", AppID: l.app.ID, UserID: u})
	}
	if gone := p.sweepLocked(time.Now()); len(gone) != 0 {
		t.Fatalf("a node just heard of taken as dead: %v", gone)
	}
	heard := p.nodes["dead"]
	gone := p.sweepLocked(time.Now().Add(presenceNodeTimeout + time.Second))
	if len(gone) != 1 || len(gone["dead"]) != 1 {
		t.Fatalf("gone %v, want bob of node dead", gone)
	}
	if g := gone["dead"][0]; g.AppID != l.app.ID || g.UserID != "bob" || !g.At.Equal(heard) {
		t.Fatalf("gone %+v, want bob last seen %v", g, heard)
	}
	if st := l.g.Online(l.app.ID, []string{"bob", "carol"}); st[0].Online || !st[1].Online {
		t.Fatalf("Online = %+v", st)
	}
}
