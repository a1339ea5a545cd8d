// Command chatbench measures chatd against a reference Node.js server (socket.io
// 4 + better-sqlite3, bench/peer) in one run: it seeds both with the same data,
// starts each server in turn on loopback (pinned to its own core when there
// are two), drives it with the same Socket.IO v4 load, reads the server's CPU
// time and RSS from /proc, and writes a Markdown table and JSON of chatd's
// figure, the peer's and their ratio.
//
//	chatbench -short -out bench/results    the quick version (make bench)
//	chatbench -only idle,p2p               some scenarios only
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runConfig sizes every scenario; every loop is bounded by these counts and durations.
type runConfig struct {
	ChatdBin string
	PeerDir  string
	OutDir   string
	Short    bool
	Pin      bool
	Only     map[string]bool

	IdleConns, IdleMax int

	Pairs             int
	P2PRate           float64
	P2PRamp           []float64
	FixedDur, StepDur time.Duration

	FanoutMembers, FanoutSenders int
	FanoutRate                   float64
	FanoutRamp                   []float64

	HistoryCount, HistoryClients int
	HistoryDur                   time.Duration

	StormClients, StormMessages, StormConcurrency int
	StormTimeout                                  time.Duration

	StoreConc int
	StoreDur  time.Duration
}

var selfPID = os.Getpid()

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg runConfig
	only := flag.String("only", "", "comma-separated scenarios to run (idle,p2p,fanout,history,storm,presence,store); empty: all")
	flag.StringVar(&cfg.ChatdBin, "chatd", "bin/chatd", "chatd binary")
	flag.StringVar(&cfg.PeerDir, "peer", "bench/peer", "directory of the Node peer (npm ci done)")
	flag.StringVar(&cfg.OutDir, "out", "bench/results", "where latest.md and latest.json go")
	flag.BoolVar(&cfg.Short, "short", false, "the quick version: shorter steps and a smaller history")
	flag.BoolVar(&cfg.Pin, "pin", runtime.NumCPU() >= 2, "pin the server to the last CPU and chatbench to the others (taskset)")
	histCount := flag.Int("history", 1_000_000, "messages in the long conversation")
	flag.Parse()
	cfg.Only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			cfg.Only[s] = true
		}
	}
	cfg.IdleConns, cfg.IdleMax = 10_000, 19_900
	cfg.Pairs, cfg.P2PRate = 100, 500
	cfg.P2PRamp = []float64{250, 500, 1000, 2000, 4000, 6000, 8000, 12000, 16000}
	cfg.FixedDur, cfg.StepDur = 10*time.Second, 5*time.Second
	cfg.FanoutMembers, cfg.FanoutSenders, cfg.FanoutRate = 1000, 10, 5
	cfg.FanoutRamp = []float64{2, 5, 10, 20, 40, 60, 80, 120, 160}
	cfg.HistoryCount, cfg.HistoryClients, cfg.HistoryDur = *histCount, 16, 10*time.Second
	cfg.StormClients, cfg.StormMessages, cfg.StormConcurrency, cfg.StormTimeout = 10_000, 20, 1000, 120*time.Second
	cfg.StoreConc, cfg.StoreDur = 64, 5*time.Second
	if cfg.Short {
		cfg.FixedDur, cfg.StepDur = 4*time.Second, 2*time.Second
		// Doubling until a step misses: the short run stops where the server does.
		cfg.P2PRamp = []float64{250, 500, 1000, 2000, 4000, 8000, 16000}
		cfg.FanoutRamp = []float64{2, 5, 10, 20, 40, 80, 120, 160, 240, 320}
		cfg.HistoryDur = 4 * time.Second
		cfg.StoreDur = 3 * time.Second
	}

	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	serverCPU := -1
	if cfg.Pin {
		serverCPU = runtime.NumCPU() - 1
		mine := "0"
		if serverCPU > 1 {
			mine = "0-" + strconv.Itoa(serverCPU-1)
		}
		if out, err := exec.Command("taskset", "-a", "-p", "-c", mine, strconv.Itoa(selfPID)).CombinedOutput(); err != nil {
			return fmt.Errorf("pin chatbench: %w: %s", err, out)
		}
		runtime.GOMAXPROCS(serverCPU)
		logf("pinning: servers on CPU %d, chatbench on CPU %s (taskset)", serverCPU, mine)
	} else {
		logf("pinning: off (servers and chatbench share %d CPUs)", runtime.NumCPU())
	}

	dir, err := os.MkdirTemp("", "chatbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	users := max(cfg.StormClients, cfg.FanoutMembers, 2*cfg.Pairs)
	fx := &fixture{FanoutGroup: "fanout", StormGroup: "storm", HistoryA: "hist-a", HistoryB: "hist-b", HistoryCount: cfg.HistoryCount}
	for i := range users {
		fx.Users = append(fx.Users, userID(i))
	}
	rep := &report{Started: time.Now().UTC(), Short: cfg.Short, Pinned: cfg.Pin, CPUs: runtime.NumCPU(), Results: map[string]map[string]figures{}}
	rep.Config = fmt.Sprintf("idle %d (max %d), %d pairs at %.0f msgs/s, fan-out %d members × %.0f msgs/s, history %d msgs × %d clients, storm %d clients, store %d senders; steps %v (fixed %v)",
		cfg.IdleConns, cfg.IdleMax, cfg.Pairs, cfg.P2PRate, cfg.FanoutMembers, cfg.FanoutRate, cfg.HistoryCount, cfg.HistoryClients, cfg.StormClients, cfg.StoreConc, cfg.StepDur, cfg.FixedDur)

	var kinds []*serverKind
	if cfg.needServers() {
		t := time.Now()
		if err := os.MkdirAll(filepath.Join(dir, "chatd"), 0o755); err != nil {
			return err
		}
		ck, err := seedChatd(ctx, filepath.Join(dir, "chatd"), cfg, fx)
		if err != nil {
			return fmt.Errorf("seed chatd: %w", err)
		}
		logf("seeded chatd: %d users, %d-member group, %d-message conversation in %v", len(fx.Users), cfg.FanoutMembers, cfg.HistoryCount, time.Since(t).Round(time.Millisecond))
		t = time.Now()
		if err := os.MkdirAll(filepath.Join(dir, "peer"), 0o755); err != nil {
			return err
		}
		pk, err := seedPeer(ctx, filepath.Join(dir, "peer"), cfg, fx)
		if err != nil {
			return fmt.Errorf("seed peer: %w", err)
		}
		logf("seeded peer in %v", time.Since(t).Round(time.Millisecond))
		kinds = []*serverKind{ck, pk}
	}

	scenarios := []struct {
		name string
		fn   func(context.Context, env) (figures, error)
	}{{"idle", idle}, {"p2p", oneToOne}, {"fanout", fanout}, {"history", history}, {"storm", storm}, {"presence", presenceChurn}}
	for _, sc := range scenarios {
		if !cfg.want(sc.name) {
			continue
		}
		rep.Results[sc.name] = map[string]figures{}
		for _, k := range kinds {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logf("%s: %s", sc.name, k.Name)
			// The previous scenario's writes are still being flushed by the
			// kernel; without this, the first server of the next scenario
			// competes with that writeback and the second does not.
			syscall.Sync()
			r, err := startServer(ctx, k, serverCPU)
			if err != nil {
				return err
			}
			f, err := sc.fn(ctx, env{cfg: cfg, fx: fx, r: r, logf: logf})
			r.stop()
			if err != nil {
				logf("  %s failed: %v (stderr: %.500s)", k.Name, err, r.stderr.String())
				rep.Errors = append(rep.Errors, fmt.Sprintf("%s/%s: %v", sc.name, k.Name, err))
				continue
			}
			rep.Results[sc.name][k.Name] = f
			time.Sleep(time.Second) // let the closed sockets drain
		}
	}
	if cfg.want("store") {
		logf("store: durable sends")
		c, p, err := storeBench(ctx, cfg, dir, logf)
		if err != nil {
			logf("  failed: %v", err)
			rep.Errors = append(rep.Errors, "store: "+err.Error())
		} else {
			rep.Results["store"] = map[string]figures{"chatd": c, "peer": p}
		}
	}
	rep.Finished = time.Now().UTC()
	rep.build(cfg)
	md := rep.markdown()
	fmt.Print(md)
	if cfg.OutDir != "" {
		if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
			return err
		}
		js, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(filepath.Join(cfg.OutDir, "latest.json"), append(js, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(cfg.OutDir, "latest.md"), []byte(md), 0o644); err != nil {
			return err
		}
		logf("wrote %s/latest.md and latest.json", cfg.OutDir)
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d scenario runs failed", len(rep.Errors))
	}
	return nil
}

func (c runConfig) want(s string) bool { return len(c.Only) == 0 || c.Only[s] }

func (c runConfig) needServers() bool {
	for _, s := range []string{"idle", "p2p", "fanout", "history", "storm", "presence"} {
		if c.want(s) {
			return true
		}
	}
	return false
}
