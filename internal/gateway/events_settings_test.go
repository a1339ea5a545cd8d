package gateway

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// TestSessionSettingsAndBlocks: a user's pin, mute, draft and hide reach
// their other devices that declared session-settings (never node-chat's),
// shape their session list and unread total, mark pushes of a muted session;
// a block refuses the blocked user's private sends, storing nothing, and
// lets group sends through. Only the session's owner may change it.
func TestSessionSettingsAndBlocks(t *testing.T) {
	l := startLive(t, "alice", "bob", "carol")
	ctx := context.Background()
	caps := url.Values{"capabilities": {"session-settings"}}
	alice := l.dial(t, "alice", caps, nil)
	alice2 := l.dial(t, "alice", nil, map[string]any{"capabilities": []string{"session-settings"}})
	alicePlain := l.dial(t, "alice", nil, nil)
	bob := l.dial(t, "bob", nil, nil)
	carol := l.dial(t, "carol", caps, nil)
	all := []*sioclient.WS{alice, alice2, alicePlain, bob, carol}

	hi := map[string]any{"targetId": "alice", "messageType": 1, "content": map[string]any{"content": "hi"}}
	push := func(c *sioclient.WS) (chat.SendResult, bool) {
		t.Helper()
		f := nextFrame(t, c)
		var r struct {
			Data struct {
				chat.SendResult
				Muted bool `json:"muted"`
			}
		}
		json.Unmarshal(f.data, &r)
		if f.event != "message" {
			t.Fatalf("want a message push, got %s %s", f.event, f.data)
		}
		return r.Data.SendResult, r.Data.Muted
	}
	emitAck(t, bob, 1, "send-private-message", hi)
	m, _ := push(alice)
	sid := m.SendSession.SID
	for _, c := range []*sioclient.WS{alice2, alicePlain} {
		push(c)
	}
	if err := l.svc.CreateGroup(ctx, l.app.ID, "g", "G", "", []string{"alice", "bob"}); err != nil {
		t.Fatal(err)
	}

	// Authorization and bad input: nothing changes.
	for i, tc := range []struct {
		c     *sioclient.WS
		event string
		arg   any
		want  string
	}{
		{carol, "session-update", map[string]any{"sid": sid, "pinned": true}, "not found"},
		{bob, "session-update", map[string]any{"sid": sid, "muted": true}, "not found"},
		{carol, "session-hide", map[string]any{"sid": sid}, "not found"},
		{alice, "session-update", map[string]any{"sid": sid}, "at least one"},
		{alice, "session-update", map[string]any{"sid": sid, "draft": strings.Repeat("x", 5000)}, "draft must be"},
		{alice, "session-update", nil, "missing event payload"},
		{alice, "session-hide", map[string]any{}, "sid must be"},
		{alice, "block-user", map[string]any{}, "give userIds"},
		{alice, "block-user", map[string]any{"userId": "alice"}, "cannot block themselves"},
		{alice, "unblock-user", map[string]any{"userIds": []string{""}}, "missing blockedUserIds"},
	} {
		f := emitAck(t, tc.c, 10+i, tc.event, tc.arg)
		if !strings.Contains(string(f.err), tc.want) {
			t.Errorf("%s %v: ack %s %s, want an error with %q", tc.event, tc.arg, f.err, f.data, tc.want)
		}
	}

	// Pin, mute and draft from one device: the other is told.
	f := emitAck(t, alice, 30, "session-update", map[string]any{"sid": sid, "pinned": true, "muted": true, "draft": "to do"})
	var st chat.SessionSettings
	if json.Unmarshal(f.data, &st); f.err != nil || !st.Pinned || !st.Muted || st.Draft != "to do" || st.SID != sid || st.PinnedAt == 0 {
		t.Fatalf("session-update ack %s %s", f.err, f.data)
	}
	f = nextFrame(t, alice2)
	var pushed chat.SessionSettings
	if json.Unmarshal(f.data, &pushed); f.event != "session-updated" || pushed != st {
		t.Fatalf("alice2 got %s %s, want session-updated %+v", f.event, f.data, st)
	}
	ss, err := l.svc.Sessions(ctx, l.app.ID, "alice")
	if err != nil || len(ss) != 2 || ss[0].SID != sid || !ss[0].Pinned || !ss[0].Muted || ss[0].Draft != "to do" || ss[1].Pinned {
		t.Fatalf("alice's sessions %+v, %v: want the pinned one first", ss, err)
	}

	// A message in the muted session still arrives, marked muted where
	// the socket understands it, and counts in no total.
	emitAck(t, bob, 31, "send-private-message", hi)
	if _, muted := push(alice); !muted {
		t.Fatal("push to a muted session not marked muted")
	}
	push(alice2)
	if _, muted := push(alicePlain); muted {
		t.Fatal("node-chat socket told muted")
	}
	emitAck(t, bob, 32, "send-group-message", map[string]any{"targetId": "g", "messageType": 1, "content": map[string]any{"content": "all"}})
	for _, c := range []*sioclient.WS{alice, alice2, alicePlain} {
		if _, muted := push(c); muted {
			t.Fatal("group push marked muted")
		}
	}
	f = emitAck(t, alice, 33, "session-unread-total", nil)
	var total chat.UnreadTotal
	if json.Unmarshal(f.data, &total); f.err != nil || total != (chat.UnreadTotal{Unread: 1, Sessions: 1}) {
		t.Fatalf("unread total %s %s: want the group's 1 only", f.err, f.data)
	}

	// Hide: the session leaves the list, and comes back with the next message.
	f = emitAck(t, alice2, 34, "session-hide", sid)
	if f.err != nil {
		t.Fatalf("session-hide: %s", f.err)
	}
	if f := nextFrame(t, alice); f.event != "session-updated" || !strings.Contains(string(f.data), `"hidden":true`) {
		t.Fatalf("alice got %s %s, want the hide", f.event, f.data)
	}
	if ss, _ := l.svc.Sessions(ctx, l.app.ID, "alice"); len(ss) != 1 || ss[0].SID == sid {
		t.Fatalf("after hide: %+v", ss)
	}
	emitAck(t, bob, 35, "send-private-message", hi)
	for _, c := range []*sioclient.WS{alice, alice2, alicePlain} {
		push(c)
	}
	if ss, _ := l.svc.Sessions(ctx, l.app.ID, "alice"); len(ss) != 2 || ss[0].SID != sid {
		t.Fatalf("after the next message: %+v", ss)
	}

	// Block: bob's private sends are refused and stored nowhere; his group
	// sends are not.
	f = emitAck(t, alice, 36, "block-user", map[string]any{"userIds": []string{"bob", "carol", "bob"}})
	if f.err != nil || string(f.data) != `{"blocked":["bob","carol"]}` {
		t.Fatalf("block-user: %s %s", f.err, f.data)
	}
	before, _ := l.svc.Sessions(ctx, l.app.ID, "alice")
	f = emitAck(t, bob, 37, "send-private-message", hi)
	if !strings.Contains(string(f.err), "blocked") || !strings.Contains(string(f.err), "403") && !strings.Contains(string(f.err), "1000") {
		t.Fatalf("blocked send acked %s %s", f.err, f.data)
	}
	after, _ := l.svc.Sessions(ctx, l.app.ID, "alice")
	if before[0].LastSeq != after[0].LastSeq {
		t.Fatalf("a refused send was stored: %d → %d", before[0].LastSeq, after[0].LastSeq)
	}
	emitAck(t, bob, 38, "send-group-message", map[string]any{"targetId": "g", "messageType": 1, "content": map[string]any{"content": "still"}})
	for _, c := range []*sioclient.WS{alice, alice2, alicePlain} {
		if m, _ := push(c); m.TargetID != "g" {
			t.Fatalf("want the group message, got %+v", m)
		}
	}
	if f := emitAck(t, alice2, 39, "blocked-list", nil); string(f.data) != `{"blocked":["bob","carol"]}` {
		t.Fatalf("blocked-list on the other device: %s %s", f.err, f.data)
	}
	// The blocker may still write to the blocked user.
	if f := emitAck(t, alice, 40, "send-private-message", map[string]any{"targetId": "bob", "messageType": 1, "content": map[string]any{"content": "?"}}); f.err != nil {
		t.Fatalf("blocker's send: %s", f.err)
	}
	push(bob)
	if f := emitAck(t, alice, 41, "unblock-user", map[string]any{"userId": "bob"}); string(f.data) != `{"blocked":["carol"]}` {
		t.Fatalf("unblock-user: %s %s", f.err, f.data)
	}
	if f := emitAck(t, bob, 42, "send-private-message", hi); f.err != nil {
		t.Fatalf("send after unblock: %s", f.err)
	}

	// Barrier: nothing else was pushed; node-chat's socket and carol got
	// no session-updated.
	for i, c := range all {
		emitAck(t, c, 50+i, "session-list", nil)
		for _, p := range pending[c] {
			if p.event != "message" || c == carol {
				t.Errorf("socket %d got an unexpected push %s %s", i, p.event, p.data)
			}
		}
		delete(pending, c)
	}
}

// TestSettingsRateLimited: one user's settings changes are limited, their
// reads are not.
func TestSettingsRateLimited(t *testing.T) {
	l := startLive(t, "alice", "bob")
	alice := l.dial(t, "alice", nil, nil)
	limited := 0
	for i := range settingsBurst + 5 {
		f := emitAck(t, alice, 1+i, "block-user", map[string]any{"userId": "bob"})
		if strings.Contains(string(f.err), "too many settings changes") {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("block-user was never rate-limited")
	}
	if f := emitAck(t, alice, 100, "blocked-list", nil); f.err != nil {
		t.Fatalf("blocked-list limited with the changes: %s", f.err)
	}
}
