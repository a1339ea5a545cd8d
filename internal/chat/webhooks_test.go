package chat

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// TestBeforeSend: the hook's answers and failures in both fail modes, on
// what is stored and what the sender is told.
func TestBeforeSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var reply HookReply
	var hookErr error
	calls := 0
	f := newFixture(t, Options{Webhooks: WebhookOptions{BeforeSend: func(_ context.Context, ep store.Endpoint, data any) (HookReply, error) {
		calls++
		b, _ := json.Marshal(data)
		if !strings.Contains(string(b), `"senderUserId":"a"`) || ep.URL != "https://hook.example/" {
			t.Errorf("hook called with %s at %s", b, ep.URL)
		}
		return reply, hookErr
	}}})
	f.token(t, "a")
	f.token(t, "b")
	send := func(s string) (SendResult, error) {
		return f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "a", TargetID: "b", Type: TypeText, Content: text(s)})
	}
	// No hook set: not called.
	if _, err := send("before"); err != nil || calls != 0 {
		t.Fatalf("without a hook: %v, %d calls", err, calls)
	}
	if _, err := f.svc.SetWebhook(ctx, f.app.ID, WebhookInput{URL: "https://hook.example/", Events: []string{EventBeforeSend}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		reply  HookReply
		err    error
		open   bool
		want   error  // nil: stored
		stored string // the content stored
	}{
		{"allow", HookReply{Action: "allow"}, nil, false, nil, "x"},
		{"reject", HookReply{Action: "reject", Reason: "spam"}, nil, false, ErrForbidden, ""},
		{"replace", HookReply{Action: "replace", Content: text("***")}, nil, false, nil, "***"},
		{"replace with a non-object", HookReply{Action: "replace", Content: json.RawMessage(`"x"`)}, nil, false, ErrUnavailable, ""},
		{"unknown action", HookReply{Action: "maybe"}, nil, false, ErrUnavailable, ""},
		{"down, fail closed", HookReply{}, errors.New("timed out"), false, ErrUnavailable, ""},
		{"down, fail open", HookReply{}, errors.New("timed out"), true, nil, "x"},
		{"reject, fail open", HookReply{Action: "reject", Reason: "spam"}, nil, true, ErrForbidden, ""},
	} {
		mode := "fail_closed"
		if c.open {
			mode = "fail_open"
		}
		if _, err := f.svc.SetWebhook(ctx, f.app.ID, WebhookInput{URL: "https://hook.example/", Events: []string{EventBeforeSend}, FailMode: mode}); err != nil {
			t.Fatal(err)
		}
		reply, hookErr = c.reply, c.err
		res, err := send("x")
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			continue
		}
		if c.want == ErrForbidden && !strings.Contains(err.Error(), "rejected: spam") {
			t.Errorf("%s: %v does not give the reason", c.name, err)
		}
		if err == nil && string(res.Content) != string(text(c.stored)) {
			t.Errorf("%s: stored %s, want %s", c.name, res.Content, text(c.stored))
		}
	}
}

// TestWebhookEventsOnlyWhenSubscribed: a change writes its event only for
// endpoints that subscribe to its type, in its own transaction; an app's
// endpoint change is seen at once on this node.
func TestWebhookEventsOnlyWhenSubscribed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{})
	f.token(t, "a")
	f.token(t, "b")
	send := func() {
		if _, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "a", TargetID: "b", Type: TypeText, Content: text("x")}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		page, err := f.svc.Deliveries(ctx, f.app.ID, "", 200, "")
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Deliveries)
	}
	send()
	if n := count(); n != 0 {
		t.Fatalf("%d deliveries without an endpoint", n)
	}
	w, err := f.svc.SetWebhook(ctx, f.app.ID, WebhookInput{URL: "https://a.example/", Events: []string{EventGroupCreated}})
	if err != nil || !strings.HasPrefix(w.Secret, "whsec_") {
		t.Fatalf("SetWebhook = %+v, %v", w, err)
	}
	send()
	if n := count(); n != 0 {
		t.Fatalf("%d deliveries for an unsubscribed type", n)
	}
	if err := f.svc.CreateGroup(ctx, f.app.ID, "g", "G", "", []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d deliveries after group create", n)
	}
	// Adding message.sent is seen by the next send on this node.
	if _, err := f.svc.SetWebhook(ctx, f.app.ID, WebhookInput{URL: "https://a.example/", Events: []string{EventGroupCreated, EventMessageSent}}); err != nil {
		t.Fatal(err)
	}
	send()
	if n := count(); n != 2 {
		t.Fatalf("%d deliveries after subscribing to message.sent", n)
	}
	if err := f.svc.DeleteWebhook(ctx, f.app.ID, "", "https://a.example/"); err != nil {
		t.Fatal(err)
	}
	send()
	if n := count(); n != 2 {
		t.Fatalf("%d deliveries after deleting the endpoint", n)
	}
}

// TestNodeGone: every survivor of a dead node reports its users; one of
// them (the first to claim the node in the store) writes their
// user.offline, once per user, and only for the apps subscribed to it.
func TestNodeGone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{})
	other, err := f.svc.CreateApp(ctx, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	gone := []LastSeen{{AppID: f.app.ID, UserID: "a", At: time.UnixMilli(1000)}, {AppID: f.app.ID, UserID: "b", At: time.UnixMilli(1000)},
		{AppID: other.ID, UserID: "c", At: time.UnixMilli(1000)}}
	offline := func() []string {
		page, err := f.svc.Deliveries(ctx, f.app.ID, "", 200, "")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range page.Deliveries {
			if d.Type != EventUserOffline {
				t.Errorf("delivery of %s", d.Type)
			}
			var data struct {
				UserID string `json:"userId"`
				At     int64  `json:"at"`
			}
			json.Unmarshal(d.Data, &data)
			if data.At != 1000 {
				t.Errorf("%s: at %d, want when the node was last heard of", data.UserID, data.At)
			}
			out = append(out, data.UserID)
		}
		slices.Sort(out)
		return out
	}
	// Not subscribed: nothing written, nothing claimed.
	if err := f.svc.NodeGone(ctx, "n0", gone); err != nil || len(offline()) != 0 {
		t.Fatalf("without an endpoint: %v, %v", err, offline())
	}
	if _, err := f.svc.SetWebhook(ctx, f.app.ID, WebhookInput{URL: "https://a.example/", Events: []string{EventUserOffline}}); err != nil {
		t.Fatal(err)
	}
	survivor := New(f.svc.store, Options{}) // another node on the same store
	for _, s := range []*Service{f.svc, survivor, f.svc} {
		if err := s.NodeGone(ctx, "n1", gone); err != nil {
			t.Fatal(err)
		}
	}
	if got := offline(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("user.offline for %v, want a and b once", got)
	}
	// The endpoint was set after n0 died: n0 was never claimed.
	if err := survivor.NodeGone(ctx, "n0", gone[:1]); err != nil {
		t.Fatal(err)
	}
	if got := offline(); !slices.Equal(got, []string{"a", "a", "b"}) {
		t.Fatalf("user.offline for %v after another node's death", got)
	}
}
