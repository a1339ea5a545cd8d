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

// TestTypingAndReceipts: typing and read-receipt reach the other member's
// sockets that declared them, never the node-chat ones, and only members
// may send them or ask for a message's readers.
func TestTypingAndReceipts(t *testing.T) {
	l := startLive(t, "alice", "bob", "carol")
	ctx := context.Background()
	caps := url.Values{"capabilities": {"typing,receipts"}}
	alice := l.dial(t, "alice", caps, nil)
	alicePlain := l.dial(t, "alice", nil, nil)
	bob := l.dial(t, "bob", nil, map[string]any{"capabilities": []string{"typing", "receipts"}})
	bobPlain := l.dial(t, "bob", nil, nil)
	carol := l.dial(t, "carol", caps, nil)

	sent := emitAck(t, alice, 1, "send-private-message", map[string]any{"targetId": "bob", "messageType": 1, "content": map[string]any{"content": "hi"}})
	var msg chat.SendResult
	json.Unmarshal(sent.data, &msg)
	sid := msg.SendSession.SID
	var bobSID string
	for _, c := range []*sioclient.WS{bob, bobPlain} {
		f := nextFrame(t, c)
		var r struct{ Data chat.SendResult }
		json.Unmarshal(f.data, &r)
		if f.event != "message" {
			t.Fatalf("want the message push, got %+v", f)
		}
		bobSID = r.Data.SendSession.SID
	}

	// Authorization and bad input.
	for i, tc := range []struct {
		c     *sioclient.WS
		event string
		arg   any
		want  string
	}{
		{carol, "typing", map[string]any{"sid": sid}, "not found"},
		{carol, "typing-stop", sid, "not found"},
		{carol, "message-readers", map[string]any{"sid": sid, "msgId": msg.MsgID}, "not found"},
		{bob, "message-readers", map[string]any{"sid": sid, "msgId": msg.MsgID}, "not found"}, // alice's sid
		{alice, "typing", map[string]any{}, "missing sid"},
		{alice, "typing", nil, "missing sid"},
		{alice, "message-readers", map[string]any{"sid": sid, "msgId": "x"}, "msgId must be a message id"},
	} {
		f := emitAck(t, tc.c, 10+i, tc.event, tc.arg)
		if !strings.Contains(string(f.err), tc.want) {
			t.Errorf("%s %v: ack %s %s, want an error with %q", tc.event, tc.arg, f.err, f.data, tc.want)
		}
	}

	// Typing: the peer's typing socket gets it with its own sid.
	f := emitAck(t, alice, 20, "typing", map[string]any{"sid": sid})
	var ack typingAck
	if json.Unmarshal(f.data, &ack); f.err != nil || !ack.Sent || ack.ExpiresIn != typingTTL.Milliseconds() {
		t.Fatalf("typing ack %s %s", f.err, f.data)
	}
	emitAck(t, alice, 21, "typing-stop", sid)
	type note struct {
		SID       string `json:"sid"`
		UserID    string `json:"userId"`
		ExpiresIn int64  `json:"expiresIn"`
		ReadSeq   int64  `json:"readSeq"`
	}
	expect := func(c *sioclient.WS, event string, want note) {
		t.Helper()
		f := nextFrame(t, c)
		var n note
		json.Unmarshal(f.data, &n)
		if f.event != event || n != want {
			t.Fatalf("got %s %s, want %s %+v", f.event, f.data, event, want)
		}
	}
	expect(bob, "typing", note{SID: bobSID, UserID: "alice", ExpiresIn: typingTTL.Milliseconds()})
	expect(bob, "typing-stop", note{SID: bobSID, UserID: "alice"})

	// Receipts: bob reads; alice's receipts socket is told, with her sid.
	if f := emitAck(t, bobPlain, 30, "set-session-read", bobSID); f.err != nil {
		t.Fatalf("set-session-read: %s", f.err)
	}
	expect(alice, "read-receipt", note{SID: sid, UserID: "bob", ReadSeq: msg.Seq})
	// Reading again moves nothing: no second receipt (the barrier below
	// would see it).
	emitAck(t, bobPlain, 31, "set-session-read", bobSID)

	f = emitAck(t, alice, 32, "message-readers", map[string]any{"sid": sid, "msgId": msg.MsgID})
	var rd chat.Readers
	json.Unmarshal(f.data, &rd)
	if f.err != nil || rd.ReadCount != 1 || rd.MemberCount != 1 || len(rd.Readers) != 1 || rd.Readers[0].UserID != "bob" {
		t.Fatalf("message-readers: %s %s", f.err, f.data)
	}
	ss, err := l.svc.Sessions(ctx, l.app.ID, "alice")
	if err != nil || len(ss) != 1 || ss[0].PeerReadSeq != msg.Seq {
		t.Fatalf("alice's sessions %+v, %v: want peerReadSeq %d", ss, err, msg.Seq)
	}

	// Barrier: every socket answers an ack with nothing pushed before it:
	// node-chat sockets got no typing or receipt, nobody got a second one.
	for i, c := range []*sioclient.WS{alice, alicePlain, bob, bobPlain, carol} {
		emitAck(t, c, 40+i, "session-list", nil)
		for _, p := range pending[c] {
			if p.event != "session-read" { // bob's reads, on his other device
				t.Errorf("socket %d got an unexpected push %s %s", i, p.event, p.data)
			}
		}
		delete(pending, c)
	}

	// A socket's typing events are rate-limited.
	limited := false
	for i := range typingBurst + 2 {
		if f := emitAck(t, alice, 50+i, "typing", sid); strings.Contains(string(f.err), "too many typing events") {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("typing was never rate-limited")
	}
}
