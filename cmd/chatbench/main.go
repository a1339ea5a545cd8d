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
	Servers  map[string]bool // which servers run (chatd, peer)
	Rounds   int             // interleaved repetitions of the compared scenarios

	Cluster      bool
	ClusterPG    string // base PostgreSQL URL for the cluster scenario
	ClusterRedis string
	ClusterNATS  string
	ClusterRate  float64
	ClusterPlan  rampPlan
	FloorConns   int
	FloorWrites  int

	IdleConns, IdleMax int

	Pairs             int
	P2PRate           float64
	P2PRamp           rampPlan
	FixedDur, StepDur time.Duration

	FanoutMembers, FanoutSenders int
	FanoutRate                   float64
	FanoutRamp                   rampPlan

	HistoryCount, HistoryClients int
	HistoryDur                   time.Duration

	StormClients, StormMessages, StormConcurrency int
	StormTimeout                                  time.Duration

	StoreConc int
	StoreDur  time.Duration

	ReceiptsMembers, ReceiptsMessages int

	// The webhooks scenario: closed-loop senders, each throughput step's
	// length, and the sends timed one by one per hook step.
	WebhookPairs     int
	WebhookDur       time.Duration
	WebhookHookSends int
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
	only := flag.String("only", "", "comma-separated scenarios to run (idle,p2p,fanout,history,storm,presence,receipts,webhooks,store,cluster); empty: all")
	servers := flag.String("servers", "chatd,peer", "servers to run the compared scenarios against")
	flag.IntVar(&cfg.Rounds, "rounds", 3, "interleaved rounds of idle, p2p, fanout and history (medians and ranges are reported)")
	flag.StringVar(&cfg.ClusterPG, "cluster-pg", os.Getenv("CHATD_TEST_POSTGRES"), "PostgreSQL for the cluster scenario (empty: skipped)")
	flag.StringVar(&cfg.ClusterRedis, "cluster-redis", os.Getenv("CHATD_TEST_REDIS"), "Redis for the cluster scenario")
	flag.StringVar(&cfg.ClusterNATS, "cluster-nats", os.Getenv("CHATD_TEST_NATS"), "NATS for the cluster scenario")
	flag.StringVar(&cfg.ChatdBin, "chatd", "bin/chatd", "chatd binary")
	flag.StringVar(&cfg.PeerDir, "peer", "bench/peer", "directory of the Node peer (npm ci done)")
	flag.StringVar(&cfg.OutDir, "out", "bench/results", "where latest.md and latest.json go")
	flag.BoolVar(&cfg.Short, "short", false, "the quick version: shorter steps and a smaller history")
	flag.BoolVar(&cfg.Pin, "pin", runtime.NumCPU() >= 2, "pin the server to the last CPU and chatbench to the others (taskset)")
	rampBudget := flag.Duration("ramp-budget", 0, "override every ramp's time budget (0: the mode's)")
	stepDur := flag.Duration("step", 0, "override the ramp step and fixed-rate durations (0: the mode's)")
	from := flag.String("from", "", "rebuild latest.md and the charts from this latest.json (no run)")
	histCount := flag.Int("history", 1_000_000, "messages in the long conversation")
	flag.Parse()
	cfg.Servers = map[string]bool{}
	for _, s := range strings.Split(*servers, ",") {
		cfg.Servers[s] = true
	}
	cfg.Rounds = max(1, cfg.Rounds)
	cfg.Only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			cfg.Only[s] = true
		}
	}
	cfg.IdleConns, cfg.IdleMax = 10_000, 19_900
	cfg.Pairs, cfg.P2PRate = 100, 500
	// Ramps are geometric, starting one step above the fixed rate (which
	// is their first point), and go on until a step misses
	// twice (rampNextAction); the budget bounds the run's time, and a ramp
	// that spends it reports its last step as a floor.
	cfg.P2PRamp = rampPlan{Start: 750, Factor: 1.5, Budget: 4 * time.Minute}
	cfg.FixedDur, cfg.StepDur = 10*time.Second, 5*time.Second
	cfg.FanoutMembers, cfg.FanoutSenders, cfg.FanoutRate = 1000, 10, 5
	cfg.FanoutRamp = rampPlan{Start: 7.5, Factor: 1.5, Budget: 4 * time.Minute}
	cfg.HistoryCount, cfg.HistoryClients, cfg.HistoryDur = *histCount, 16, 10*time.Second
	cfg.StormClients, cfg.StormMessages, cfg.StormConcurrency, cfg.StormTimeout = 10_000, 20, 1000, 120*time.Second
	cfg.StoreConc, cfg.StoreDur = 64, 5*time.Second
	cfg.ReceiptsMembers, cfg.ReceiptsMessages = 500, 20
	cfg.WebhookPairs, cfg.WebhookDur, cfg.WebhookHookSends = 32, 5*time.Second, 1000
	cfg.ClusterRate, cfg.ClusterPlan = 500, rampPlan{Start: 750, Factor: 1.5, Budget: 3 * time.Minute}
	cfg.FloorConns, cfg.FloorWrites = 1000, 200_000
	if cfg.Short {
		// Three rounds of everything compared must fit in about ten minutes.
		cfg.FixedDur, cfg.StepDur = 3*time.Second, 1500*time.Millisecond
		cfg.IdleMax = cfg.IdleConns // the most held: full run only
		cfg.P2PRamp.Budget, cfg.FanoutRamp.Budget = 30*time.Second, 35*time.Second
		cfg.HistoryDur = 3 * time.Second
		cfg.StoreDur = 3 * time.Second
		cfg.ClusterPlan.Budget = 25 * time.Second
		cfg.FloorWrites = 100_000
		cfg.WebhookDur, cfg.WebhookHookSends = 2*time.Second, 200
	}

	if *from != "" {
		return rebuild(*from, cfg)
	}
	if *rampBudget > 0 {
		cfg.P2PRamp.Budget, cfg.FanoutRamp.Budget, cfg.ClusterPlan.Budget = *rampBudget, *rampBudget, *rampBudget
	}
	if *stepDur > 0 {
		cfg.StepDur, cfg.FixedDur, cfg.HistoryDur = *stepDur, *stepDur, *stepDur
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
	rep := &report{Started: time.Now().UTC(), Short: cfg.Short, Pinned: cfg.Pin, CPUs: runtime.NumCPU(), Rounds: cfg.Rounds,
		Results: map[string]map[string][]figures{}, Ramps: map[string]map[string][][]rampPoint{}}
	loadStart := loadAvg()
	rep.Config = fmt.Sprintf("idle %d (max %d), %d pairs at %.0f msgs/s, fan-out %d members × %.0f msgs/s, history %d msgs × %d clients, storm %d clients, store %d senders, webhooks %d senders × %v and %d hook sends; steps %v (fixed %v), ramps ×%.2g per step",
		cfg.IdleConns, cfg.IdleMax, cfg.Pairs, cfg.P2PRate, cfg.FanoutMembers, cfg.FanoutRate, cfg.HistoryCount, cfg.HistoryClients, cfg.StormClients, cfg.StoreConc,
		cfg.WebhookPairs, cfg.WebhookDur, cfg.WebhookHookSends, cfg.StepDur, cfg.FixedDur, cfg.P2PRamp.Factor)

	var kinds []*serverKind
	var chatdKind *serverKind
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
		if cfg.Servers["chatd"] {
			kinds = append(kinds, ck)
			chatdKind = ck
		}
		if cfg.Servers["peer"] {
			t = time.Now()
			if err := os.MkdirAll(filepath.Join(dir, "peer"), 0o755); err != nil {
				return err
			}
			pk, err := seedPeer(ctx, filepath.Join(dir, "peer"), cfg, fx)
			if err != nil {
				return fmt.Errorf("seed peer: %w", err)
			}
			logf("seeded peer in %v", time.Since(t).Round(time.Millisecond))
			kinds = append(kinds, pk)
		}
	}

	// The compared scenarios run cfg.Rounds times, interleaved (chatd, peer,
	// chatd, peer, …), so that a disturbance of the shared machine lands on
	// one round of one server rather than deciding a figure.
	scenarios := []struct {
		name   string
		fn     func(context.Context, env) (figures, error)
		repeat bool
	}{{"idle", idle, true}, {"p2p", oneToOne, true}, {"fanout", fanout, true}, {"history", history, true}, {"storm", storm, false}, {"presence", presenceChurn, false}, {"receipts", groupReceipts, false}}
	for _, sc := range scenarios {
		if !cfg.want(sc.name) {
			continue
		}
		rep.Results[sc.name] = map[string][]figures{}
		rounds := 1
		if sc.repeat {
			rounds = cfg.Rounds
		}
		for round := range rounds {
			floor := 0.0
			if sc.name == "fanout" {
				d, err := loopbackFloor(ctx, serverCPU, cfg.FloorConns, cfg.FloorWrites)
				if err != nil {
					logf("  floor: %v", err)
				} else {
					floor = us(d)
					logf("fanout floor: one loopback write of 350 bytes to one of %d sockets: %.2f µs of CPU", cfg.FloorConns, floor)
				}
			}
			// The history and one-to-one floors (floor_store.go), on chatd's
			// seeded file while no server runs.
			var floors figures
			if len(kinds) > 0 && kinds[0].Name == "chatd" {
				floors = roundFloors(ctx, sc.name, kinds[0], fx, dir, serverCPU, logf)
			}
			for _, k := range kinds {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				logf("%s: %s (round %d of %d)", sc.name, k.Name, round+1, rounds)
				// The previous scenario's writes are still being flushed by the
				// kernel; without this, the first server of the next scenario
				// competes with that writeback and the second does not.
				syscall.Sync()
				r, err := startServer(ctx, k, serverCPU)
				if err != nil {
					return err
				}
				keep := func(name string, pts []rampPoint) {
					if rep.Ramps[name] == nil {
						rep.Ramps[name] = map[string][][]rampPoint{}
					}
					rep.Ramps[name][k.Name] = append(rep.Ramps[name][k.Name], pts)
				}
				f, err := sc.fn(ctx, env{cfg: cfg, fx: fx, r: r, logf: logf, round: round, keepRamp: keep})
				r.stop()
				if err != nil {
					logf("  %s failed: %v (stderr: %.500s)", k.Name, err, r.stderr.String())
					rep.Errors = append(rep.Errors, fmt.Sprintf("%s/%s round %d: %v", sc.name, k.Name, round+1, err))
					continue
				}
				if floor > 0 {
					if k.Name == "chatd" {
						f["floor_us"] = floor // one figure per round, shown in chatd's column
					}
					if c, ok := f["cpu_us_per_delivery"]; ok {
						f["cpu_over_floor"] = c / floor
					}
				}
				addFloors(sc.name, f, floors, k.Name)
				rep.Results[sc.name][k.Name] = append(rep.Results[sc.name][k.Name], f)
				time.Sleep(time.Second) // let the closed sockets drain
			}
		}
	}
	if cfg.want("webhooks") && chatdKind != nil {
		logf("webhooks: chatd on SQLite")
		syscall.Sync()
		rounds, err := func() ([]figures, error) {
			r, err := startServer(ctx, chatdKind, serverCPU)
			if err != nil {
				return nil, err
			}
			defer r.stop()
			return webhooksBench(ctx, env{cfg: cfg, fx: fx, r: r, logf: logf})
		}()
		if err != nil {
			logf("  webhooks failed: %v", err)
			rep.Errors = append(rep.Errors, "webhooks/sqlite: "+err.Error())
		}
		if cfg.ClusterPG != "" {
			logf("webhooks: chatd on PostgreSQL")
			pg, err := webhooksPostgres(ctx, cfg, dir, serverCPU, logf)
			if err != nil {
				logf("  webhooks on PostgreSQL failed: %v", err)
				rep.Errors = append(rep.Errors, "webhooks/postgres: "+err.Error())
			}
			for i, f := range pg {
				if i >= len(rounds) {
					rounds = append(rounds, figures{})
				}
				for k, v := range f {
					rounds[i][k] = v
				}
			}
		} else {
			logf("webhooks on PostgreSQL: skipped (set CHATD_TEST_POSTGRES or -cluster-pg)")
		}
		if len(rounds) > 0 {
			rep.Results["webhooks"] = map[string][]figures{"chatd": rounds}
		}
	}
	if cfg.want("store") {
		logf("store: durable sends")
		c, p, err := storeBench(ctx, cfg, dir, logf)
		if err != nil {
			logf("  failed: %v", err)
			rep.Errors = append(rep.Errors, "store: "+err.Error())
		} else {
			rep.Results["store"] = map[string][]figures{"chatd": {c}, "peer": {p}}
		}
	}
	if cfg.want("cluster") && cfg.Servers["chatd"] {
		if cfg.ClusterPG == "" {
			logf("cluster: skipped (no PostgreSQL: set CHATD_TEST_POSTGRES or -cluster-pg)")
		} else {
			res, err := clusterBench(ctx, cfg, dir, serverCPU, logf, func(name string, pts []rampPoint) {
				if rep.Ramps["cluster"] == nil {
					rep.Ramps["cluster"] = map[string][][]rampPoint{}
				}
				rep.Ramps["cluster"][name] = append(rep.Ramps["cluster"][name], pts)
			})
			rep.Cluster = res
			if err != nil {
				logf("  cluster failed: %v", err)
				rep.Errors = append(rep.Errors, "cluster: "+err.Error())
			}
		}
	}
	rep.Finished = time.Now().UTC()
	rep.LoadAvg = loadStart + " at the start, " + loadAvg() + " at the end"
	rep.build(cfg)
	if cfg.OutDir != "" {
		if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
			return err
		}
		charts, err := writeCharts(cfg.OutDir, rep.Ramps)
		if err != nil {
			return err
		}
		rep.Charts = charts
	}
	md := rep.markdown()
	fmt.Print(md)
	if cfg.OutDir != "" {
		js, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(filepath.Join(cfg.OutDir, "latest.json"), append(js, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(cfg.OutDir, "latest.md"), []byte(md), 0o644); err != nil {
			return err
		}
		logf("wrote %s/latest.md, latest.json and %d charts", cfg.OutDir, len(rep.Charts))
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d scenario runs failed", len(rep.Errors))
	}
	return nil
}

// rebuild rewrites latest.md and the charts into cfg.OutDir from a run's
// latest.json, after a change to how they are presented.
func rebuild(path string, cfg runConfig) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rep.build(cfg)
	if rep.Charts, err = writeCharts(cfg.OutDir, rep.Ramps); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.OutDir, "latest.md"), []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(&rep, "", "  ")
	return os.WriteFile(filepath.Join(cfg.OutDir, "latest.json"), append(js, '\n'), 0o644)
}

// loadAvg is the first three fields of /proc/loadavg ("?" elsewhere).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (c runConfig) want(s string) bool { return len(c.Only) == 0 || c.Only[s] }

func (c runConfig) needServers() bool {
	for _, s := range []string{"idle", "p2p", "fanout", "history", "storm", "presence", "receipts", "webhooks"} {
		if c.want(s) {
			return true
		}
	}
	return false
}
