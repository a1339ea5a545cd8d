package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestWebhookRoundFigures(t *testing.T) {
	ms := time.Millisecond
	w := webhookRound{Off: 1000, On: 900, Sustained: 800, Sent: 1800, Delivered: 1800,
		NoHook: []time.Duration{2 * ms, 1 * ms, 3 * ms}, Hook: []time.Duration{3 * ms, 4 * ms, 2500 * time.Microsecond},
		Rx: []time.Duration{ms / 2, ms / 2, ms}}
	f := w.figures()
	want := figures{"off_msgs_per_s": 1000, "on_msgs_per_s": 900, "on_sustained_per_s": 800, "lost": 0,
		"on_over_off": 0.8, "on_sends_over_off": 0.9, "nohook_p50_ms": 2, "nohook_p99_ms": 3, "hook_p50_ms": 3, "hook_p99_ms": 4,
		"rx_p50_ms": 0.5, "rx_p99_ms": 1, "hook_added_p50_ms": 1, "hook_added_over_budget": 1 / 1.5}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %v, want %v", k, f[k], v)
		}
	}
	if len(f) != len(want) {
		t.Errorf("figures %v", f)
	}
	// A hook faster than no hook (noise) adds nothing, not a negative.
	w.Hook = []time.Duration{ms / 2}
	if f := w.figures(); f["hook_added_p50_ms"] != 0 || f["hook_added_over_budget"] != 0 {
		t.Errorf("negative difference: %v", f)
	}
	w.Delivered = 1790
	if f := w.figures(); f["lost"] != 10 {
		t.Errorf("lost %v", f["lost"])
	}
}

func TestWebhooksMarkdown(t *testing.T) {
	res := map[string][]figures{"chatd": {
		{"off_msgs_per_s": 1000, "on_msgs_per_s": 900, "on_sustained_per_s": 700, "on_over_off": 0.7,
			"hook_added_p50_ms": 0.3, "rx_p50_ms": 0.05, "hook_added_over_budget": 0.3 / 1.05, "pg_off_msgs_per_s": 500,
			"pg_on_msgs_per_s": 450, "pg_on_sustained_per_s": 450, "pg_on_over_off": 0.9},
	}}
	md := webhooksMarkdown(res)
	for _, s := range []string{"SQLite, send throughput with webhooks on ≥ 80 % of off: **FAIL** — 0.70×",
		"SQLite, before-send hook adds ≤ the receiver's p50 + 1 ms at p50: **PASS** — +0.300 ms against a budget of 1.050 ms",
		"PostgreSQL, send throughput with webhooks on ≥ 80 % of off: **PASS** — 0.90×"} {
		if !strings.Contains(md, s) {
			t.Errorf("missing %q in\n%s", s, md)
		}
	}
	if strings.Contains(md, "PostgreSQL, before-send") {
		t.Errorf("a PostgreSQL hook line without PostgreSQL hook figures:\n%s", md)
	}
	if webhooksMarkdown(nil) != "" {
		t.Error("a section without the scenario")
	}
}

// TestWebhooksScenario runs a tiny version of the webhooks scenario against
// a real chatd (CHATD_BIN): throughput with and without an endpoint, every
// message.sent received and verified, and the before-send hook's latency
// against the receiver's own.
func TestWebhooksScenario(t *testing.T) {
	bin := os.Getenv("CHATD_BIN")
	if bin == "" {
		t.Skip("CHATD_BIN is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := runConfig{ChatdBin: bin, FanoutMembers: 2, StormClients: 2, StormMessages: 1, HistoryCount: 1, Rounds: 2,
		WebhookPairs: 4, WebhookDur: 300 * time.Millisecond, WebhookHookSends: 20}
	fx := &fixture{FanoutGroup: "fanout", StormGroup: "storm", HistoryA: "hist-a", HistoryB: "hist-b", HistoryCount: 1}
	for i := range 8 {
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
	rounds, err := webhooksBench(ctx, env{cfg: cfg, fx: fx, r: r, logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(rounds) != 2 {
		t.Fatalf("%d rounds", len(rounds))
	}
	for _, f := range rounds {
		if f["off_msgs_per_s"] <= 0 || f["on_sustained_per_s"] <= 0 || f["lost"] != 0 || f["hook_p50_ms"] <= 0 ||
			f["rx_p50_ms"] <= 0 || f["nohook_p50_ms"] <= 0 {
			t.Fatalf("figures %v", f)
		}
	}
	if md := webhooksMarkdown(map[string][]figures{"chatd": rounds}); !strings.Contains(md, "SQLite, before-send hook") {
		t.Fatalf("section:\n%s", md)
	}
}

// TestWebhooksScenarioPostgres is TestWebhooksScenario with chatd on
// PostgreSQL (CHATD_TEST_POSTGRES; a schema of its own, dropped after).
func TestWebhooksScenarioPostgres(t *testing.T) {
	bin, pg := os.Getenv("CHATD_BIN"), os.Getenv("CHATD_TEST_POSTGRES")
	if bin == "" || pg == "" {
		t.Skip("CHATD_BIN or CHATD_TEST_POSTGRES is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := runConfig{ChatdBin: bin, ClusterPG: pg, Rounds: 2, WebhookPairs: 4, WebhookDur: 300 * time.Millisecond, WebhookHookSends: 20}
	rounds, err := webhooksPostgres(ctx, cfg, t.TempDir(), -1, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rounds {
		if f["pg_off_msgs_per_s"] <= 0 || f["pg_on_sustained_per_s"] <= 0 || f["pg_lost"] != 0 || f["pg_hook_p50_ms"] <= 0 {
			t.Fatalf("figures %v", f)
		}
	}
}
