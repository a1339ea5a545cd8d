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

func TestParseCaps(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		query []string
		auth  string
		want  capSet
	}{
		{"nothing", nil, "", 0},
		{"query", []string{"own-messages"}, "", capOwnMessages},
		{"query list with spaces and unknown names", []string{"foo, own-messages ,bar"}, "", capOwnMessages},
		{"repeated query keys", []string{"foo", "own-messages"}, "", capOwnMessages},
		{"unknown only", []string{"foo,bar"}, `["baz"]`, 0},
		{"auth array", nil, `["own-messages"]`, capOwnMessages},
		{"auth array with other types", nil, `[1,null,{"a":1},"own-messages"]`, capOwnMessages},
		{"auth comma string", nil, `"x,own-messages"`, capOwnMessages},
		{"auth object ignored", nil, `{"own-messages":true}`, 0},
		{"auth number ignored", nil, `5`, 0},
		{"auth null", nil, `null`, 0},
		{"case matters", []string{"Own-Messages"}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := parseCaps(c.query, json.RawMessage(c.auth)); got != c.want {
				t.Fatalf("parseCaps(%q, %s) = %b; want %b", c.query, c.auth, got, c.want)
			}
		})
	}
}

// frame is what a test device received: a push or an ack, by content.
type frame struct {
	Kind string // "push" or "ack"
	Text string // content.content
	Own  bool
	SID  string // sendSession.sid
}

func (f frame) String() string {
	return fmt.Sprintf("%s %q own=%v", f.Kind, f.Text, f.Own)
}

func readFrame(tb testing.TB, c *sioclient.WS) frame {
	tb.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	raw, err := c.NextText()
	if err != nil {
		tb.Fatal(err)
	}
	var data struct {
		Content     struct{ Content string } `json:"content"`
		Own         bool                     `json:"own"`
		SendSession struct{ SID string }     `json:"sendSession"`
	}
	switch {
	case strings.HasPrefix(raw, `42["message",`):
		var env struct{ Data json.RawMessage }
		if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(raw, `42["message",`), "]")), &env); err != nil {
			tb.Fatalf("push %q: %v", raw, err)
		}
		if err := json.Unmarshal(env.Data, &data); err != nil {
			tb.Fatal(err)
		}
		return frame{Kind: "push", Text: data.Content.Content, Own: data.Own, SID: data.SendSession.SID}
	case strings.HasPrefix(raw, "43"):
		var ack []json.RawMessage
		if err := json.Unmarshal([]byte(raw[strings.IndexByte(raw, '['):]), &ack); err != nil || len(ack) != 2 {
			tb.Fatalf("ack %q: %v", raw, err)
		}
		if err := json.Unmarshal(ack[1], &data); err != nil {
			tb.Fatal(err)
		}
		return frame{Kind: "ack", Text: data.Content.Content, SID: data.SendSession.SID}
	}
	tb.Fatalf("unexpected frame %q", raw)
	return frame{}
}

// TestOwnMessagePushes: a user's own messages are pushed to none of their
// sockets unless the socket declared own-messages (then marked own), and
// never to the socket that sent it; everyone else gets them unmarked.
func TestOwnMessagePushes(t *testing.T) {
	t.Parallel()
	l := startLive(t, "alice", "bob")
	ctx := context.Background()
	if err := l.svc.CreateGroup(ctx, l.app.ID, "g", "G", "", []string{"alice", "bob"}); err != nil {
		t.Fatal(err)
	}
	own := url.Values{"capabilities": {"own-messages"}}
	dev := map[string]*sioclient.WS{
		"sender":      l.dial(t, "alice", nil, nil),
		"plain":       l.dial(t, "alice", nil, nil),
		"query cap":   l.dial(t, "alice", own, nil),
		"auth cap":    l.dial(t, "alice", nil, map[string]any{"capabilities": []string{"own-messages", "later"}}),
		"unknown cap": l.dial(t, "alice", url.Values{"capabilities": {"message-updated"}}, nil),
		"bob":         l.dial(t, "bob", nil, nil),
		"bob cap":     l.dial(t, "bob", own, nil),
	}
	// Socket sends from the sender's device, then sends as if over HTTP
	// (no origin socket), private and group; bob's reply is the barrier that
	// every device must see next and last.
	dev["sender"].Send(`420["send-private-message",{"targetId":"bob","messageType":1,"content":{"content":"p1"}}]`)
	if f := readFrame(t, dev["sender"]); f != (frame{Kind: "ack", Text: "p1", SID: f.SID}) {
		t.Fatalf("sender's ack: %v", f)
	}
	dev["sender"].Send(`421["send-group-message",{"targetId":"g","messageType":1,"content":{"content":"g1"}}]`)
	if f := readFrame(t, dev["sender"]); f != (frame{Kind: "ack", Text: "g1", SID: f.SID}) {
		t.Fatalf("sender's ack: %v", f)
	}
	for _, s := range []struct {
		do   func(context.Context, chat.SendInput) (chat.SendResult, error)
		to   string
		text string
	}{{l.svc.SendPrivate, "bob", "p2"}, {l.svc.SendGroup, "g", "g2"}} {
		if _, err := s.do(ctx, chat.SendInput{AppID: l.app.ID, SenderID: "alice", TargetID: s.to, Type: 1, Content: json.RawMessage(`{"content":"` + s.text + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.svc.SendPrivate(ctx, chat.SendInput{AppID: l.app.ID, SenderID: "bob", TargetID: "alice", Type: 1, Content: json.RawMessage(`{"content":"barrier"}`)}); err != nil {
		t.Fatal(err)
	}
	mine := []frame{{"push", "p1", true, ""}, {"push", "g1", true, ""}, {"push", "p2", true, ""}, {"push", "g2", true, ""}, {"push", "barrier", false, ""}}
	theirs := []frame{{"push", "p1", false, ""}, {"push", "g1", false, ""}, {"push", "p2", false, ""}, {"push", "g2", false, ""}}
	want := map[string][]frame{
		"sender":      {{"push", "barrier", false, ""}},
		"plain":       {{"push", "barrier", false, ""}},
		"unknown cap": {{"push", "barrier", false, ""}},
		"query cap":   mine,
		"auth cap":    mine,
		"bob":         theirs,
		"bob cap":     append(theirs, frame{"push", "barrier", true, ""}),
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			for i, wf := range w {
				got := readFrame(t, dev[name])
				got.SID = ""
				if got != wf {
					t.Fatalf("frame %d: %v; want %v", i, got, wf)
				}
			}
		})
	}
}
