package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

func TestSearchEvent(t *testing.T) {
	l := startLive(t, "alice", "bob", "carol", "dave")
	ctx := context.Background()
	if err := l.svc.CreateGroup(ctx, l.app.ID, "g", "G", "", []string{"alice", "bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	alice := l.dial(t, "alice", nil, nil)
	bob := l.dial(t, "bob", nil, nil)
	carol := l.dial(t, "carol", nil, nil)
	dave := l.dial(t, "dave", nil, nil)
	sent := emitAck(t, alice, 1, "send-group-message", map[string]any{"targetId": "g", "messageType": 1, "content": map[string]any{"content": "我在北京工作"}})
	var msg chat.SendResult
	json.Unmarshal(sent.data, &msg)
	ss, _ := l.svc.Sessions(ctx, l.app.ID, "bob")
	bobSID := ss[0].SID

	for i, tc := range []struct {
		who  string
		arg  any
		hits int
		err  string
	}{
		{"bob", map[string]any{"q": "北京"}, 1, ""},
		{"bob", map[string]any{"q": "北京", "sid": bobSID}, 1, ""},
		{"bob", map[string]any{"q": "京", "senderUserId": "alice", "messageType": 1}, 1, ""},
		{"bob", map[string]any{"q": "上海"}, 0, ""},
		{"dave", map[string]any{"q": "北京"}, 0, ""},                         // not a member
		{"dave", map[string]any{"q": "北京", "sid": bobSID}, 0, "not found"}, // another user's session
		{"bob", map[string]any{"q": ""}, 0, "missing q"},
		{"bob", map[string]any{"q": "a b"}, 0, "too short"},
		{"bob", map[string]any{"q": "北京", "before": "x"}, 0, "before must be"},
		{"bob", nil, 0, "missing event payload"},
	} {
		c := bob
		if tc.who == "dave" {
			c = dave
		}
		f := emitAck(t, c, 10+i, "search-messages", tc.arg)
		var res chat.SearchResult
		json.Unmarshal(f.data, &res)
		if tc.err != "" {
			if !strings.Contains(string(f.err), tc.err) {
				t.Errorf("%s %v: ack %s %s, want an error with %q", tc.who, tc.arg, f.err, f.data, tc.err)
			}
			continue
		}
		if f.err != nil || len(res.Hits) != tc.hits {
			t.Errorf("%s %v: ack %s %s, want %d hits", tc.who, tc.arg, f.err, f.data, tc.hits)
			continue
		}
		if tc.hits == 1 {
			h := res.Hits[0]
			if h.MsgID != msg.MsgID || h.SID != bobSID || h.Seq != 1 || h.Snippet != "我在北京工作" || len(h.Highlights) != 1 {
				t.Errorf("%v: hit %+v", tc.arg, h)
			}
		}
	}

	// A removed member finds nothing.
	if f := emitAck(t, carol, 40, "search-messages", map[string]any{"q": "北京"}); !strings.Contains(string(f.data), `"hits":[{`) {
		t.Fatalf("carol before removal: %s %s", f.err, f.data)
	}
	if err := l.svc.RemoveFromGroup(ctx, l.app.ID, "g", []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	if f := emitAck(t, carol, 41, "search-messages", map[string]any{"q": "北京"}); f.err != nil || !strings.Contains(string(f.data), `"hits":[]`) {
		t.Fatalf("carol after removal: %s %s", f.err, f.data)
	}
}

// TestAroundSeqEvent: session-message-list and sync open a conversation at
// a seq (a search hit), for the session's owner only.
func TestAroundSeqEvent(t *testing.T) {
	l := startLive(t, "alice", "bob", "dave")
	ctx := context.Background()
	if err := l.svc.CreateGroup(ctx, l.app.ID, "g", "G", "", []string{"alice", "bob"}); err != nil {
		t.Fatal(err)
	}
	alice := l.dial(t, "alice", nil, nil)
	bob := l.dial(t, "bob", nil, nil)
	dave := l.dial(t, "dave", nil, nil)
	for i := range 5 {
		emitAck(t, alice, 1+i, "send-group-message", map[string]any{"targetId": "g", "messageType": 1, "content": map[string]any{"content": "m"}})
	}
	ss, _ := l.svc.Sessions(ctx, l.app.ID, "bob")
	bobSID := ss[0].SID
	seqsOf := func(f sioFrame) []int64 {
		var msgs []chat.Message
		json.Unmarshal(f.data, &msgs)
		var out []int64
		for _, m := range msgs {
			out = append(out, m.Seq)
		}
		return out
	}
	for i, tc := range []struct {
		who   *sioclient.WS
		event string
		arg   map[string]any
		want  string // the seqs, or the error
	}{
		{bob, "session-message-list", map[string]any{"sid": bobSID, "aroundSeq": 3, "limit": 3}, "[4 3 2]"},
		{bob, "sync", map[string]any{"sid": bobSID, "aroundSeq": "3", "limit": 3}, "[2 3 4]"},
		{bob, "sync", map[string]any{"sid": bobSID, "aroundSeq": 5, "limit": 3}, "[3 4 5]"},
		{bob, "session-message-list", map[string]any{"sid": bobSID, "aroundSeq": 1, "limit": 2}, "[2 1]"},
		{bob, "session-message-list", map[string]any{"sid": bobSID, "aroundSeq": 9}, "not found"},
		{bob, "session-message-list", map[string]any{"sid": bobSID, "aroundSeq": -1}, "aroundSeq must be"},
		{bob, "sync", map[string]any{"sid": bobSID, "aroundSeq": 3, "afterSeq": 1}, "goes alone"},
		{dave, "session-message-list", map[string]any{"sid": bobSID, "aroundSeq": 3}, "not found"},
		{dave, "sync", map[string]any{"sid": bobSID, "aroundSeq": 3}, "not found"},
	} {
		f := emitAck(t, tc.who, 20+i, tc.event, tc.arg)
		got := string(f.err)
		if f.err == nil {
			got = fmt.Sprint(seqsOf(f))
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s %v: %s, want %s", tc.event, tc.arg, got, tc.want)
		}
	}
}
