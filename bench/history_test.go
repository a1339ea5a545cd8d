package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/chat"
)

// The history read path as chatbench's history scenario drives it: pages of
// 50 from random points of a long private conversation (docs/benchmarks.md,
// History). Compare before and after a change to the read path:
//
//	go test ./bench -run '^$' -bench 'History' -benchmem -count 5

const histMessages = 5000

// seedHistory stores n messages between u0 and u1 through the store's batch
// path and returns u1's session and the messages' ids by seq.
func seedHistory(b *testing.B, svc *chat.Service, appID string, n int) (sid string, ids []string) {
	b.Helper()
	first := seedPrivate(b, svc, appID, 1)
	ids = append(ids, first.MsgID)
	ctx := context.Background()
	for i := 1; i < n; i++ {
		r, err := svc.SendPrivate(ctx, chat.SendInput{AppID: appID, SenderID: "u0", TargetID: "u1", Type: 1,
			Content: json.RawMessage(fmt.Sprintf(`{"content":"message %d of the long conversation, with some text to it"}`, i))})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, r.MsgID)
	}
	ss, err := svc.Sessions(ctx, appID, "u1")
	if err != nil || len(ss) != 1 {
		b.Fatalf("sessions: %v %v", ss, err)
	}
	return ss[0].SID, ids
}

// encodePage encodes a page as the gateway's ack does (before the
// gateway's own encoder, it was json.Marshal).
func encodePage(h []chat.Message) []byte { return chat.AppendMessages(nil, h) }

// cpuTime is the process's CPU time (user and system) so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start: on a shared
// machine it varies less than the wall time.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkServiceHistoryRandom50 is a page of 50 before a random message,
// read through the service and encoded as the ack encodes it.
func BenchmarkServiceHistoryRandom50(b *testing.B) {
	svc, app := newService(b, 2)
	sid, ids := seedHistory(b, svc, app.ID, histMessages)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		at := 50 + rng.IntN(len(ids)-50)
		h, err := svc.HistoryBySID(ctx, app.ID, "u1", sid, chat.Page{Limit: 50, LastMsgID: ids[at]})
		if err != nil {
			b.Fatal(err)
		}
		if enc := encodePage(h); len(enc) == 0 {
			b.Fatal("empty page")
		}
	}
	reportCPU(b, start)
}

// BenchmarkServiceHistoryNewest50 is the newest page, over and over: what a
// client opening a busy conversation asks for.
func BenchmarkServiceHistoryNewest50(b *testing.B) {
	svc, app := newService(b, 2)
	sid, _ := seedHistory(b, svc, app.ID, 500)
	ctx := context.Background()
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		h, err := svc.HistoryBySID(ctx, app.ID, "u1", sid, chat.Page{Limit: 50})
		if err != nil {
			b.Fatal(err)
		}
		if enc := encodePage(h); len(enc) == 0 {
			b.Fatal("empty page")
		}
	}
	reportCPU(b, start)
}

// BenchmarkE2EHistoryRandom50 is session-message-list over a websocket of an
// in-process chatd, a page of 50 before a random message, ack read.
func BenchmarkE2EHistoryRandom50(b *testing.B) {
	base, appID, tokens, srv := startChatd(b, 2)
	sid, ids := seedHistory(b, srv.Chat, appID, histMessages)
	c := connect(b, base, appID, tokens[1])
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	start := cpuTime()
	for i := 0; b.Loop(); i++ {
		at := 50 + rng.IntN(len(ids)-50)
		if err := c.Send(fmt.Sprintf(`42%d["session-message-list",{"sid":%q,"limit":50,"lastmsgId":%q}]`, i, sid, ids[at])); err != nil {
			b.Fatal(err)
		}
		if ack := next(b, c, "43"); !strings.Contains(ack, "[null,") {
			b.Fatalf("ack %.200s", ack)
		}
	}
	reportCPU(b, start)
}
