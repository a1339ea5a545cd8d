package bench

import (
	"context"
	"testing"

	"github.com/chatd/chatd/internal/chat"
)

// seedPrivate sends n messages between u0 and u1 and returns the last.
func seedPrivate(b *testing.B, svc *chat.Service, appID string, n int) chat.SendResult {
	b.Helper()
	var last chat.SendResult
	var err error
	for i := range n {
		if last, err = svc.SendPrivate(context.Background(), chat.SendInput{AppID: appID, SenderID: "u0", TargetID: "u1", Type: 1, Content: content(i)}); err != nil {
			b.Fatal(err)
		}
	}
	return last
}

// BenchmarkServiceHistoryPage reads a page of 20 of a private conversation
// through the service, as session-message-list does: the conversation and
// member lookups, the page and (since the message lifecycle) the reader's
// hidden ranges. Compare before and after a change to the read path.
func BenchmarkServiceHistoryPage(b *testing.B) {
	svc, app := newService(b, 2)
	seedPrivate(b, svc, app.ID, 500)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if h, err := svc.HistoryWith(ctx, app.ID, "u1", "u0", 1, chat.Page{Limit: 20}); err != nil || len(h) != 20 {
			b.Fatalf("history: %d, %v", len(h), err)
		}
	}
}

// oneMessage returns a service with one private message of u0's, and u0
// acting on it.
func oneMessage(b *testing.B) (*chat.Service, chat.Actor, chat.ConvRef, string) {
	svc, app := newService(b, 2)
	m := seedPrivate(b, svc, app.ID, 1)
	return svc, chat.Actor{AppID: app.ID, UserID: "u0"}, chat.ConvRef{SID: m.SendSession.SID}, m.MsgID
}

// BenchmarkServiceEdit edits one message over and over: one write
// transaction (the change version, the message row) and the member list for
// the push. Compare with BenchmarkServiceSendPrivate.
func BenchmarkServiceEdit(b *testing.B) {
	svc, a, ref, msgID := oneMessage(b)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := svc.Edit(ctx, a, ref, msgID, content(i+1)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServiceReact adds and removes a reaction in turn.
func BenchmarkServiceReact(b *testing.B) {
	svc, a, ref, msgID := oneMessage(b)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := svc.React(ctx, a, ref, msgID, "👍", i%2 == 0); err != nil {
			b.Fatal(err)
		}
	}
}
