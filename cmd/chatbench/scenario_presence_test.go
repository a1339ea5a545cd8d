package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPresenceScenario runs the presence scenario against a real chatd
// (CHATD_BIN) with a few users: every user in and out is two broker
// messages, and the server's CPU is measured.
func TestPresenceScenario(t *testing.T) {
	bin := os.Getenv("CHATD_BIN")
	if bin == "" {
		t.Skip("CHATD_BIN is not set")
	}
	t.Setenv("CHATD_PRESENCE_GRACE", "50ms")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := runConfig{ChatdBin: bin, IdleConns: 200, FanoutMembers: 10, StormClients: 10, StormMessages: 1, HistoryCount: 1}
	fx := &fixture{FanoutGroup: "fanout", StormGroup: "storm", HistoryA: "hist-a", HistoryB: "hist-b", HistoryCount: 1}
	for i := range cfg.IdleConns {
		fx.Users = append(fx.Users, userID(i))
	}
	dir := t.TempDir()
	k, err := seedChatd(ctx, filepath.Join(dir), cfg, fx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := startServer(ctx, k, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	f, err := presenceChurn(ctx, env{cfg: cfg, fx: fx, r: r, logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if f["users"] != 200 || f["broker_msgs_per_change"] < 1 || f["broker_msgs_per_change"] > 1.1 || f["cpu_us_per_change"] <= 0 {
		t.Fatalf("figures %v", f)
	}
	t.Logf("%v", f)
}
