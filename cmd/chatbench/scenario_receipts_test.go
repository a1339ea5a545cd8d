package main

import (
	"context"
	"math"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestPushEvent(t *testing.T) {
	for _, c := range []struct{ in, name, arg string }{
		{`["read-receipts",{"sid":"s","readers":[]}]`, "read-receipts", `{"sid":"s","readers":[]}`},
		{`["typing"]`, "typing", ""},
		{`[]`, "", ""},
		{`[1,2]`, "", ""},
		{`not json`, "", ""},
	} {
		name, arg := pushEvent([]byte(c.in))
		if name != c.name || string(arg) != c.arg {
			t.Errorf("pushEvent(%s) = %q, %s; want %q, %s", c.in, name, arg, c.name, c.arg)
		}
	}
}

func TestPushCounter(t *testing.T) {
	var pc pushCounter
	pc.onEvent([]byte(`["read-receipts",{"sid":"s","readers":[{"userId":"a","readSeq":1},{"userId":"b","readSeq":1}]}]`))
	pc.onEvent([]byte(`["read-receipts",{"sid":"s","readers":[{"userId":"c","readSeq":2}]}]`))
	pc.onEvent([]byte(`["message",{}]`))
	if total, receipts, readers := pc.counts(); total != 3 || receipts != 2 || readers != 3 {
		t.Fatalf("counts %d %d %d, want 3 2 3", total, receipts, readers)
	}
}

func TestReceiptsFigures(t *testing.T) {
	f := receiptsResult{Members: 500, Messages: 4, Reads: 1996, Pushes: 6, ReceiptPushes: 5, ReadersPushed: 1996,
		BrokerMsgs: 4000, ReadCPU: 998 * time.Millisecond}.figures()
	want := figures{"members": 500, "messages": 4, "reads": 1996, "read_errors": 0, "pushes_per_msg": 1.5,
		"receipt_pushes_per_msg": 1.25, "broker_msgs_per_msg": 1000, "cpu_us_per_read": 500,
		"broker_msgs_per_read": 4000.0 / 1996, "readers_per_push": 1996.0 / 5}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %v, want %v", k, f[k], v)
		}
	}
	if len(f) != len(want) {
		t.Errorf("figures %v", f)
	}
	if f := (receiptsResult{}).figures(); len(f) != 4 {
		t.Errorf("nothing measured: %v", f)
	}
}

// TestReceiptsScenario runs the group-receipts scenario against a real
// chatd (CHATD_BIN), with the group's size taken from
// CHATD_BENCH_RECEIPTS_MEMBERS (default 50): every member reads every
// message, and the sender's socket gets the readers in a few batched
// pushes, not one per reader.
func TestReceiptsScenario(t *testing.T) {
	bin := os.Getenv("CHATD_BIN")
	if bin == "" {
		t.Skip("CHATD_BIN is not set")
	}
	members, msgs := 50, 3
	if v := os.Getenv("CHATD_BENCH_RECEIPTS_MEMBERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			t.Fatalf("CHATD_BENCH_RECEIPTS_MEMBERS=%q", v)
		}
		members = n
		msgs = 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := runConfig{ChatdBin: bin, FanoutMembers: 2, StormClients: 2, StormMessages: 1, HistoryCount: 1,
		ReceiptsMembers: members, ReceiptsMessages: msgs}
	fx := &fixture{FanoutGroup: "fanout", StormGroup: "storm", HistoryA: "hist-a", HistoryB: "hist-b", HistoryCount: 1}
	for i := range members {
		fx.Users = append(fx.Users, userID(i))
	}
	k, err := seedChatd(ctx, t.TempDir(), cfg, fx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := startServer(ctx, k, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	f, err := groupReceipts(ctx, env{cfg: cfg, fx: fx, r: r, logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	readers := float64(members - 1)
	// Every reader of every message is told; the pushes are batched (one a
	// second at most), so far fewer than the readers.
	if f["reads"] != readers*float64(msgs) || f["receipt_pushes_per_msg"] < 1 || f["receipt_pushes_per_msg"] > readers/4 ||
		math.Abs(f["readers_per_push"]*f["receipt_pushes_per_msg"]-readers) > 0.01 || f["cpu_us_per_read"] <= 0 || f["broker_msgs_per_msg"] < readers {
		t.Fatalf("figures %v", f)
	}
	t.Logf("%v", f)
}
