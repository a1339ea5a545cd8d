package gateway

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// TestBlockedTypingAndReceipts: once alice blocks bob, bob's typing and
// read receipts in their private conversation no longer reach her (nor does
// his peerReadSeq in her session list), while his typing in a shared group
// does, and hers still reach him (a block is one way); unblocking brings
// them back.
func TestBlockedTypingAndReceipts(t *testing.T) {
	l := startLive(t, "alice", "bob")
	ctx := context.Background()
	caps := url.Values{"capabilities": {"typing,receipts"}}
	alice := l.dial(t, "alice", caps, nil)
	bob := l.dial(t, "bob", caps, nil)

	sent := emitAck(t, alice, 1, "send-private-message", map[string]any{"targetId": "bob", "messageType": 1, "content": map[string]any{"content": "hi"}})
	var msg chat.SendResult
	json.Unmarshal(sent.data, &msg)
	aliceSID := msg.SendSession.SID
	f := nextFrame(t, bob)
	var r struct{ Data chat.SendResult }
	json.Unmarshal(f.data, &r)
	bobSID := r.Data.SendSession.SID
	if f.event != "message" || bobSID == "" {
		t.Fatalf("want the message push, got %s %s", f.event, f.data)
	}
	if err := l.svc.CreateGroup(ctx, l.app.ID, "g", "G", "", []string{"alice", "bob"}); err != nil {
		t.Fatal(err)
	}
	gsid := func(user string) string {
		t.Helper()
		ss, err := l.svc.Sessions(ctx, l.app.ID, user)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.TargetID == "g" {
				return s.SID
			}
		}
		t.Fatalf("%s has no session of g", user)
		return ""
	}
	aliceG, bobG := gsid("alice"), gsid("bob")
	expect := func(c *sioclient.WS, event, sid, from string) {
		t.Helper()
		f := nextFrame(t, c)
		var n struct{ SID, UserID string }
		json.Unmarshal(f.data, &n)
		if f.event != event || n.SID != sid || n.UserID != from {
			t.Fatalf("got %s %s, want %s from %s in %s", f.event, f.data, event, from, sid)
		}
	}
	peerReadSeq := func() int64 {
		t.Helper()
		ss, err := l.svc.Sessions(ctx, l.app.ID, "alice")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.SID == aliceSID {
				return s.PeerReadSeq
			}
		}
		t.Fatal("alice has no private session")
		return 0
	}
	// barrier: both sockets answer an ack with nothing else pushed before it.
	barrier := func(id int) {
		t.Helper()
		for i, c := range []*sioclient.WS{alice, bob} {
			emitAck(t, c, id+i, "session-list", nil)
			for _, p := range pending[c] {
				t.Errorf("socket %d got an unexpected push %s %s", i, p.event, p.data)
			}
			delete(pending, c)
		}
	}

	if f := emitAck(t, alice, 2, "block-user", map[string]any{"userId": "bob"}); f.err != nil {
		t.Fatalf("block-user: %s", f.err)
	}
	// bob's typing to alice: not sent; in the group: sent.
	f = emitAck(t, bob, 3, "typing", bobSID)
	var ack typingAck
	if json.Unmarshal(f.data, &ack); f.err != nil || ack.Sent {
		t.Fatalf("typing to the blocker: ack %s %s, want sent false", f.err, f.data)
	}
	emitAck(t, bob, 4, "typing-stop", bobSID)
	emitAck(t, bob, 5, "typing", bobG)
	expect(alice, "typing", aliceG, "bob")
	// alice's typing still reaches bob.
	emitAck(t, alice, 6, "typing", aliceSID)
	expect(bob, "typing", bobSID, "alice")
	// bob reads: alice is not told, and her session list hides how far.
	if f := emitAck(t, bob, 7, "set-session-read", bobSID); f.err != nil {
		t.Fatalf("set-session-read: %s", f.err)
	}
	barrier(10)
	if got := peerReadSeq(); got != 0 {
		t.Fatalf("alice sees bob's peerReadSeq %d while blocking him", got)
	}

	// Unblocked: bob's typing and reads reach her again.
	if f := emitAck(t, alice, 20, "unblock-user", map[string]any{"userId": "bob"}); f.err != nil {
		t.Fatalf("unblock-user: %s", f.err)
	}
	emitAck(t, alice, 21, "send-private-message", map[string]any{"targetId": "bob", "messageType": 1, "content": map[string]any{"content": "again"}})
	if f := nextFrame(t, bob); f.event != "message" {
		t.Fatalf("want the message push, got %s %s", f.event, f.data)
	}
	emitAck(t, bob, 22, "typing", bobSID)
	expect(alice, "typing", aliceSID, "bob")
	emitAck(t, bob, 23, "set-session-read", bobSID)
	expect(alice, "read-receipt", aliceSID, "bob")
	barrier(30)
	if got := peerReadSeq(); got != msg.Seq+1 {
		t.Fatalf("alice sees peerReadSeq %d after unblocking, want %d", got, msg.Seq+1)
	}
}
