package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

func call(t *testing.T, f *fixture, c caller, event, arg string) (any, error) {
	t.Helper()
	h, ok := events[event]
	if !ok {
		t.Fatalf("no handler for %s", event)
	}
	return h(f.g, context.Background(), c, json.RawMessage(arg))
}

// TestEventHandlers drives each client event's handler as the gateway does,
// as alice (a member of her sessions and of group g) and as others.
func TestEventHandlers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	sessions, err := f.svc.Sessions(ctx, f.alice.AppID, "alice")
	if err != nil || len(sessions) != 2 {
		t.Fatalf("alice's sessions: %v %v", sessions, err)
	}
	var private, group chat.Session
	for _, s := range sessions {
		if s.ConversationType == 2 {
			group = s
		} else {
			private = s
		}
	}
	bob := caller{identity: identity{AppID: f.alice.AppID, UserID: "bob"}, origin: "s2"}
	otherApp := caller{identity: identity{AppID: "ffffffffffffffffffffffff", UserID: "alice"}, origin: "s3"}
	carol := caller{identity: identity{AppID: f.alice.AppID, UserID: "carol"}, origin: "s4"}

	t.Run("session-list", func(t *testing.T) {
		got, err := call(t, f, f.alice, evSessionList, `null`)
		if list, ok := got.([]chat.Session); err != nil || !ok || len(list) != 2 {
			t.Fatalf("got %#v, %v", got, err)
		}
	})
	t.Run("send-private-message as the token's user", func(t *testing.T) {
		// senderUserId in the payload is ignored: the token's user sends.
		got, err := call(t, f, f.alice, evSendPrivate, `{"senderUserId":"bob","targetId":"bob","messageType":"1","content":{"content":"hi"},"clientMsgId":"c1"}`)
		res, ok := got.(chat.SendResult)
		if err != nil || !ok || res.SenderUserID != "alice" || res.Seq != 2 || res.SendSession.SID != private.SID {
			t.Fatalf("got %#v, %v", got, err)
		}
		again, err := call(t, f, f.alice, evSendPrivate, `{"targetId":"bob","messageType":1,"content":{"content":"hi"},"clientMsgId":"c1"}`)
		if r2, _ := again.(chat.SendResult); err != nil || r2.MsgID != res.MsgID {
			t.Fatalf("retry with the same clientMsgId: %#v, %v; want message %s", again, err, res.MsgID)
		}
	})
	t.Run("send-group-message", func(t *testing.T) {
		got, err := call(t, f, f.alice, evSendGroup, `{"targetId":"g","messageType":1,"content":"{\"content\":\"yo\"}"}`)
		if res, ok := got.(chat.SendResult); err != nil || !ok || res.Seq != 1 || res.SendSession.SID != group.SID {
			t.Fatalf("got %#v, %v", got, err)
		}
	})
	t.Run("session-message-list", func(t *testing.T) {
		got, err := call(t, f, f.alice, evSessionMessages, `{"sid":"`+private.SID+`","limit":"1"}`)
		if msgs, ok := got.([]chat.Message); err != nil || !ok || len(msgs) != 1 || msgs[0].Seq != 2 {
			t.Fatalf("got %#v, %v", got, err)
		}
	})
	t.Run("sync", func(t *testing.T) {
		got, err := call(t, f, f.alice, evSync, `{"sid":"`+private.SID+`","afterSeq":1}`)
		if msgs, ok := got.([]chat.Message); err != nil || !ok || len(msgs) != 1 || msgs[0].Seq != 2 {
			t.Fatalf("got %#v, %v", got, err)
		}
	})
	t.Run("set-session-read", func(t *testing.T) {
		for _, arg := range []string{`"` + private.SID + `"`, `{"sid":"` + private.SID + `"}`} {
			if got, err := call(t, f, f.alice, evSetRead, arg); err != nil || got == nil {
				t.Fatalf("%s: got %#v, %v", arg, got, err)
			}
		}
		list, _ := f.svc.Sessions(ctx, f.alice.AppID, "alice")
		for _, s := range list {
			if s.SID == private.SID && s.Unread != 0 {
				t.Fatalf("unread %d after set-session-read", s.Unread)
			}
		}
	})

	// Nobody reaches a session that is not theirs, whatever the payload says.
	for _, tc := range []struct {
		name  string
		who   caller
		event string
		arg   string
		want  error
	}{
		{"another user's sid: history", bob, evSessionMessages, `{"sid":"` + private.SID + `"}`, chat.ErrNotFound},
		{"another user's sid: sync", bob, evSync, `{"sid":"` + private.SID + `","afterSeq":0}`, chat.ErrNotFound},
		{"another user's sid: read", bob, evSetRead, `"` + private.SID + `"`, chat.ErrNotFound},
		{"another app", otherApp, evSessionMessages, `{"sid":"` + private.SID + `"}`, chat.ErrNotFound},
		{"not in the group", carol, evSendGroup, `{"targetId":"g","messageType":1,"content":{}}`, chat.ErrNotMember},
		{"unknown peer", f.alice, evSendPrivate, `{"targetId":"nobody","messageType":1,"content":{}}`, chat.ErrUnknownUser},
		{"no payload", f.alice, evSync, `null`, chat.ErrInvalid},
		{"bad messageType", f.alice, evSendPrivate, `{"targetId":"bob","messageType":"x","content":{}}`, chat.ErrInvalid},
		{"content not an object", f.alice, evSendPrivate, `{"targetId":"bob","messageType":1,"content":"hi"}`, chat.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.svc.Stats().MessagesSent
			_, err := call(t, f, tc.who, tc.event, tc.arg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if f.svc.Stats().MessagesSent != before {
				t.Fatal("a refused event stored a message")
			}
		})
	}
}

// TestDrainWaitsForEventsInFlight: Drain returns only once the events in
// flight have finished, and refuses new ones.
func TestDrainWaitsForEventsInFlight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if !f.g.enter() { // an event in flight
		t.Fatal("a fresh gateway refused an event")
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.g.Drain(expired); !errors.Is(err, context.Canceled) {
		t.Fatalf("Drain with an event in flight = %v, want the context's error", err)
	}
	if f.g.enter() {
		t.Fatal("a draining gateway admitted an event")
	}
	f.g.inflight.Done() // the event finishes
	if err := f.g.Drain(context.Background()); err != nil {
		t.Fatalf("Drain after the last event = %v", err)
	}
}

// TestDrainedSocketsAreToldToRetry: once drained, an event gets an error
// ack saying the server is shutting down, and the socket stays usable for
// the acks that are flushed.
func TestDrainedSocketsAreToldToRetry(t *testing.T) {
	t.Parallel()
	l := startLive(t, "alice")
	c := l.dial(t, "alice", nil, nil)
	c.Send(`421["session-list"]`)
	if got := nextText(t, c); !strings.HasPrefix(got, "431[null,[") {
		t.Fatalf("before drain: %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.g.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	c.Send(`422["session-list"]`)
	got := nextText(t, c)
	var ack []struct {
		Status  int
		Message string
	}
	if !strings.HasPrefix(got, "432") || json.Unmarshal([]byte(got[3:]), &ack) != nil || len(ack) != 1 ||
		ack[0].Status != chat.CodeOther || !strings.Contains(ack[0].Message, "shutting down") {
		t.Fatalf("after drain: %q, want an error ack asking to retry", got)
	}
}

// TestAuthentication: a socket needs a valid token for the app it names.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	l := startLive(t, "alice")
	ctx := context.Background()
	tok, err := l.svc.GetToken(ctx, l.app, "alice", "Alice", "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.svc.CreateApp(ctx, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		query url.Values
		auth  string
		want  string // prefix of the answer to CONNECT
	}{
		{"query token", url.Values{"token": {tok}, "appId": {l.app.ID}}, "", `40{"sid"`},
		{"auth token", nil, `{"token":"` + tok + `","appId":"` + l.app.ID + `"}`, `40{"sid"`},
		{"no token", nil, "", `44{"message":"authentication failed`},
		{"garbage token", url.Values{"token": {"x.y.z"}, "appId": {l.app.ID}}, "", `44{"message":"authentication failed`},
		{"another app's id", url.Values{"token": {tok}, "appId": {other.ID}}, "", `44{"message":"authentication failed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			c, err := sioclient.DialWS(dctx, l.base, 4, tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Send("40" + tc.auth)
			if got := nextText(t, c); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("CONNECT answered %q, want %s…", got, tc.want)
			}
		})
	}
	// Revoking the tokens closes the user's sockets.
	c := l.dial(t, "alice", nil, nil)
	if err := l.svc.RevokeTokens(ctx, l.app, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := nextText(t, c); got != "41" {
		t.Fatalf("after revocation: %q, want a namespace disconnect", got)
	}
}

func nextText(t *testing.T, c *sioclient.WS) string {
	t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a hang, not a timing assertion
	got, err := c.NextText()
	if err != nil {
		t.Fatal(err)
	}
	return got
}
