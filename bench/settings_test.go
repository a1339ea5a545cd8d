package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/chatd/chatd/internal/chat"
)

// BenchmarkServiceSessions50 lists the sessions of a user with 50 private
// conversations through the service, as session-list does (the list, the
// peers' read marks and, since conversation settings, the user's settings).
func BenchmarkServiceSessions50(b *testing.B) {
	svc, app := newService(b, 51)
	ctx := context.Background()
	for i := 1; i <= 50; i++ {
		if _, err := svc.SendPrivate(ctx, chat.SendInput{AppID: app.ID, SenderID: fmt.Sprintf("u%d", i), TargetID: "u0", Type: 1, Content: content(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if ss, err := svc.Sessions(ctx, app.ID, "u0"); err != nil || len(ss) != 50 {
			b.Fatalf("sessions: %d, %v", len(ss), err)
		}
	}
}
