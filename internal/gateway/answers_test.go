package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/ratelimit"
)

// TestAnswersMeteredByBytes: a user whose answers passed the byte budget
// is refused the next history, sync and session list with a rate-limit
// error ack, while their sends still go through (docs/soak.md, Under
// attack: the slow reader).
func TestAnswersMeteredByBytes(t *testing.T) {
	t.Parallel()
	l := startLive(t, "alice", "bob")
	ctx := context.Background()
	body := strings.Repeat("x", 1000)
	for i := range 20 {
		if _, err := l.svc.SendPrivate(ctx, chat.SendInput{AppID: l.app.ID, SenderID: "bob", TargetID: "alice", Type: 1,
			Content: json.RawMessage(fmt.Sprintf(`{"content":"%d %s"}`, i, body))}); err != nil {
			t.Fatal(err)
		}
	}
	// 10 kB of burst and no refill to speak of: the first 20 kB answer is
	// served (into debt), nothing big after it.
	l.g.opts.AnswerRate, l.g.opts.AnswerBurst = 1, 10_000
	l.g.answers = ratelimit.NewBytes(1, 10_000)
	c := l.dial(t, "alice", nil, nil)
	c.Send(`421["session-list"]`)
	got := nextText(t, c)
	var list []struct{ SID string }
	var ack []json.RawMessage
	if !strings.HasPrefix(got, "431") || json.Unmarshal([]byte(got[3:]), &ack) != nil || len(ack) != 2 || json.Unmarshal(ack[1], &list) != nil || len(list) != 1 {
		t.Fatalf("session-list: %.200q", got)
	}
	sid := list[0].SID
	c.Send(`422["sync",{"sid":"` + sid + `","afterSeq":0,"limit":100}]`)
	if got := nextText(t, c); !strings.HasPrefix(got, "432[null,[") || len(got) < 20_000 {
		t.Fatalf("first sync: %.200q (%d bytes)", got, len(got))
	}
	for i, ev := range []string{`["sync",{"sid":"` + sid + `","afterSeq":0}]`, `["session-message-list",{"sid":"` + sid + `"}]`, `["session-list"]`} {
		c.Send(fmt.Sprintf("42%d%s", 3+i, ev))
		got := nextText(t, c)
		if !strings.HasPrefix(got, fmt.Sprintf("43%d[{", 3+i)) || !strings.Contains(got, "bytes of answers per second") {
			t.Fatalf("%s past the byte budget: %.200q, want a rate-limit error", ev, got)
		}
	}
	if n := l.g.AnswersRefused(); n != 3 {
		t.Fatalf("AnswersRefused = %d, want 3", n)
	}
	c.Send(`429["send-private-message",{"targetId":"bob","messageType":1,"content":{"content":"still here"}}]`)
	if got := nextText(t, c); !strings.HasPrefix(got, "439[null,{") {
		t.Fatalf("send past the byte budget: %.200q, want it acknowledged", got)
	}
}
