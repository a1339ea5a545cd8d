package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// sioFrame is one event push or ack, decoded.
type sioFrame struct {
	event string          // push event name; "" for an ack
	ackID string          // ack id
	err   json.RawMessage // ack error, when not null
	data  json.RawMessage // push payload or ack data
}

// pending holds pushes that arrived while a test waited for an ack.
var pending = map[*sioclient.WS][]sioFrame{}

func nextFrame(tb testing.TB, c *sioclient.WS) sioFrame {
	tb.Helper()
	if p := pending[c]; len(p) > 0 {
		pending[c] = p[1:]
		return p[0]
	}
	return readSIOFrame(tb, c)
}

func readSIOFrame(tb testing.TB, c *sioclient.WS) sioFrame {
	tb.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	raw, err := c.NextText()
	if err != nil {
		tb.Fatal(err)
	}
	var f sioFrame
	var arr []json.RawMessage
	switch {
	case strings.HasPrefix(raw, "42"):
		if err := json.Unmarshal([]byte(raw[2:]), &arr); err != nil || len(arr) != 2 {
			tb.Fatalf("push %q", raw)
		}
		json.Unmarshal(arr[0], &f.event)
		f.data = arr[1]
	case strings.HasPrefix(raw, "43"):
		i := strings.IndexByte(raw, '[')
		f.ackID = raw[2:i]
		if err := json.Unmarshal([]byte(raw[i:]), &arr); err != nil || len(arr) == 0 {
			tb.Fatalf("ack %q", raw)
		}
		if string(arr[0]) != "null" {
			f.err = arr[0]
		} else if len(arr) > 1 {
			f.data = arr[1]
		}
	default:
		tb.Fatalf("unexpected frame %q", raw)
	}
	return f
}

// emitAck emits event with arg and returns its ack; pushes that come first
// are kept for nextFrame.
func emitAck(tb testing.TB, c *sioclient.WS, id int, event string, arg any) sioFrame {
	tb.Helper()
	b, _ := json.Marshal([]any{event, arg})
	if err := c.Send(fmt.Sprintf("42%d%s", id, b)); err != nil {
		tb.Fatal(err)
	}
	for {
		f := readSIOFrame(tb, c)
		if f.event != "" {
			pending[c] = append(pending[c], f)
			continue
		}
		if f.ackID != fmt.Sprint(id) {
			tb.Fatalf("%s: want ack %d, got %+v", event, id, f)
		}
		return f
	}
}

func TestLifecycleEvents(t *testing.T) {
	l := startLive(t, "alice", "bob", "carol", "dave")
	ctx := context.Background()
	if err := l.svc.CreateGroup(ctx, l.app.ID, "g", "G", "", []string{"alice", "bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	caps := url.Values{"capabilities": {"message-updated"}}
	alice := l.dial(t, "alice", caps, nil)
	alice2 := l.dial(t, "alice", nil, map[string]any{"capabilities": []string{"message-updated"}})
	alicePlain := l.dial(t, "alice", nil, nil)
	bob := l.dial(t, "bob", caps, nil)
	bobPlain := l.dial(t, "bob", nil, nil) // a node-chat client
	dave := l.dial(t, "dave", caps, nil)

	sent := emitAck(t, alice, 1, "send-group-message", map[string]any{"targetId": "g", "messageType": 1, "content": map[string]any{"content": "hello"}})
	var msg chat.SendResult
	json.Unmarshal(sent.data, &msg)
	sid := msg.SendSession.SID
	for _, c := range []*sioclient.WS{bob, bobPlain} { // alice2 did not ask for own messages // the new message
		if f := nextFrame(t, c); f.event != "message" {
			t.Fatalf("want the message push, got %+v", f)
		}
	}
	bobSID := func() string {
		ss, _ := l.svc.Sessions(ctx, l.app.ID, "bob")
		return ss[0].SID
	}()

	// Authorization: another member, another user's sid, bad input.
	for i, tc := range []struct {
		c     *sioclient.WS
		event string
		arg   any
		want  string
	}{
		{bob, "recall-message", map[string]any{"sid": bobSID, "msgId": msg.MsgID}, "not your message"},
		{bob, "edit-message", map[string]any{"sid": bobSID, "msgId": msg.MsgID, "content": map[string]any{"content": "x"}}, "not your message"},
		{dave, "recall-message", map[string]any{"sid": sid, "msgId": msg.MsgID}, "not found"},
		{dave, "react", map[string]any{"sid": bobSID, "msgId": msg.MsgID, "emoji": "👍"}, "not found"},
		{dave, "delete-message", map[string]any{"sid": sid, "msgId": msg.MsgID}, "not found"},
		{dave, "clear-session", sid, "not found"},
		{dave, "sync-changes", map[string]any{"sid": sid}, "not found"},
		{alice, "recall-message", map[string]any{"sid": sid, "msgId": "nope"}, "msgId must be a message id"},
		{alice, "react", map[string]any{"sid": sid, "msgId": msg.MsgID}, "missing emoji"},
		{alice, "recall-message", nil, "missing event payload"},
	} {
		f := emitAck(t, tc.c, 10+i, tc.event, tc.arg)
		if !strings.Contains(string(f.err), tc.want) {
			t.Errorf("%s %v: ack %s %s, want an error with %q", tc.event, tc.arg, f.err, f.data, tc.want)
		}
	}

	// Changes reach every socket that declared message-updated but the
	// one that made them; node-chat sockets get nothing.
	edit := emitAck(t, alice, 30, "edit-message", map[string]any{"sid": sid, "msgId": msg.MsgID, "content": map[string]any{"content": "hello!"}})
	react := emitAck(t, bob, 31, "react", map[string]any{"sid": bobSID, "msgId": msg.MsgID, "emoji": "👍"})
	recall := emitAck(t, alice, 32, "recall-message", map[string]any{"sid": sid, "msgId": msg.MsgID})
	for _, f := range []sioFrame{edit, react, recall} {
		if f.err != nil {
			t.Fatalf("ack error %s", f.err)
		}
	}
	type upd struct {
		SID       string `json:"sid"`
		MsgID     string `json:"msgId"`
		Version   int64  `json:"version"`
		EditCount int    `json:"editCount"`
		Recalled  bool   `json:"recalled"`
		Reactions []struct {
			Emoji string `json:"emoji"`
			Count int    `json:"count"`
		} `json:"reactions"`
		Reaction *struct {
			UserID string `json:"userId"`
			Added  bool   `json:"added"`
		} `json:"reaction"`
	}
	expect := func(name string, c *sioclient.WS, wantSID string, versions ...int64) {
		t.Helper()
		for _, v := range versions {
			f := nextFrame(t, c)
			var u upd
			json.Unmarshal(f.data, &u)
			if f.event != "message-updated" || u.Version != v || u.MsgID != msg.MsgID || u.SID != wantSID {
				t.Fatalf("%s: got %s %s, want message-updated version %d for sid %s", name, f.event, f.data, v, wantSID)
			}
			switch v {
			case 1:
				if u.EditCount != 1 {
					t.Errorf("%s: edit push %s", name, f.data)
				}
			case 2:
				if len(u.Reactions) != 1 || u.Reaction == nil || u.Reaction.UserID != "bob" || !u.Reaction.Added {
					t.Errorf("%s: reaction push %s", name, f.data)
				}
			case 3:
				if !u.Recalled || strings.Contains(string(f.data), "hello") {
					t.Errorf("%s: recall push %s", name, f.data)
				}
			}
		}
	}
	expect("alice", alice, sid, 2)
	expect("alice2", alice2, sid, 1, 2, 3)
	expect("bob", bob, bobSID, 1, 3)

	// delete-message and clear-session: the user's other devices only.
	other := emitAck(t, alice, 40, "send-group-message", map[string]any{"targetId": "g", "messageType": 1, "content": map[string]any{"content": "two"}})
	var two chat.SendResult
	json.Unmarshal(other.data, &two)
	for _, c := range []*sioclient.WS{bob, bobPlain} { // alice2 did not ask for own messages
		nextFrame(t, c) // the message
	}
	del := emitAck(t, bob, 41, "delete-message", map[string]any{"sid": bobSID, "msgId": two.MsgID})
	var h chat.HiddenUpdate
	json.Unmarshal(del.data, &h)
	if del.err != nil || h.FromSeq != two.Seq || h.Version != 4 {
		t.Fatalf("delete ack %s %s", del.err, del.data)
	}
	clr := emitAck(t, alice, 42, "clear-session", map[string]any{"sid": sid})
	if clr.err != nil {
		t.Fatalf("clear ack %s", clr.err)
	}
	// Two topics, so either may come first.
	f, f2 := nextFrame(t, alice2), nextFrame(t, alice2)
	if f.event == "session-read" {
		f, f2 = f2, f
	}
	if f.event != "message-updated" || !strings.Contains(string(f.data), `"deleted":true`) || !strings.Contains(string(f.data), `"cleared":true`) {
		t.Fatalf("alice2 after clear: %s %s", f.event, f.data)
	}
	if f2.event != "session-read" {
		t.Fatalf("alice2 after clear: %s %s", f2.event, f2.data)
	}

	if f := nextFrame(t, alicePlain); f.event != "session-read" { // as for set-session-read
		t.Fatalf("alicePlain after clear: %s %s", f.event, f.data)
	}

	// sync-changes recovers all of it.
	sc := emitAck(t, alicePlain, 50, "sync-changes", map[string]any{"sid": sid, "afterVersion": 0})
	var ch chat.Changes
	if err := json.Unmarshal(sc.data, &ch); err != nil || len(ch.Messages) != 1 || !ch.Messages[0].Recalled || len(ch.Hidden) != 1 || ch.Version != 5 {
		t.Fatalf("sync-changes = %s %s", sc.err, sc.data)
	}
	hist := emitAck(t, alicePlain, 51, "session-message-list", map[string]any{"sid": sid})
	if string(hist.data) != "[]" {
		t.Fatalf("history after clear: %s", hist.data)
	}

	// Barrier: a private message to each device that must have seen
	// nothing else.
	for _, u := range []string{"alice", "bob", "dave"} {
		if _, err := l.svc.SendPrivate(ctx, chat.SendInput{AppID: l.app.ID, SenderID: "carol", TargetID: u, Type: 1, Content: json.RawMessage(`{"content":"barrier"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]*sioclient.WS{"alice": alice, "alicePlain": alicePlain, "bobPlain": bobPlain, "dave": dave, "alice2": alice2} {
		if f := nextFrame(t, c); f.event != "message" || !strings.Contains(string(f.data), "barrier") {
			t.Errorf("%s: got %s %s before the barrier", name, f.event, f.data)
		}
	}
	if f := nextFrame(t, bob); f.event != "message" || !strings.Contains(string(f.data), "barrier") {
		t.Errorf("bob: got %s %s before the barrier", f.event, f.data)
	}
}

// Sends accept replyTo and mentions over the socket.
func TestSendReplyMentionsEvent(t *testing.T) {
	l := startLive(t, "alice", "bob")
	ctx := context.Background()
	if err := l.svc.CreateGroup(ctx, l.app.ID, "g", "G", "", []string{"alice", "bob"}); err != nil {
		t.Fatal(err)
	}
	alice := l.dial(t, "alice", nil, nil)
	first := emitAck(t, alice, 1, "send-group-message", map[string]any{"targetId": "g", "messageType": 1, "content": map[string]any{"content": "q"}})
	var m chat.SendResult
	json.Unmarshal(first.data, &m)
	r := emitAck(t, alice, 2, "send-group-message", map[string]any{"targetId": "g", "messageType": 1, "content": map[string]any{"content": "a"},
		"replyTo": m.MsgID, "mentions": []string{"bob"}})
	var reply chat.SendResult
	json.Unmarshal(r.data, &reply)
	if r.err != nil || reply.Quote == nil || reply.Quote.Excerpt != "q" || len(reply.Mentions) != 1 {
		t.Fatalf("reply ack %s %s", r.err, r.data)
	}
	bad := emitAck(t, alice, 3, "send-group-message", map[string]any{"targetId": "g", "messageType": 1, "content": map[string]any{"content": "a"},
		"mentions": []string{"stranger"}})
	if !strings.Contains(string(bad.err), "not a member") {
		t.Fatalf("mention of a stranger: %s", bad.err)
	}
	ss, _ := l.svc.Sessions(ctx, l.app.ID, "bob")
	if ss[0].MentionedUnread != 1 {
		t.Fatalf("bob mentionedUnread %d", ss[0].MentionedUnread)
	}
}
