package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/store/postgres"
)

// clusterResult is one variant of the cluster scenario: one chatd node on
// PostgreSQL ("single", the memory broker), or two nodes with a broker
// ("redis", "nats"), senders on node 0 and their receivers on node 1.
type clusterResult struct {
	Variant         string  `json:"variant"`
	Nodes           int     `json:"nodes"`
	FixedRate       float64 `json:"fixedRate"`
	FixedDelivered  float64 `json:"fixedDeliveredPerSec"`
	FixedP50ms      float64 `json:"fixedP50ms"`
	FixedP99ms      float64 `json:"fixedP99ms"`
	CPUSenderUs     float64 `json:"cpuSenderNodeUs"`   // node 0 (or the single node) per delivery at the fixed rate
	CPUReceiverUs   float64 `json:"cpuReceiverNodeUs"` // node 1 per delivery
	CPUBrokerUs     float64 `json:"cpuBrokerUs"`       // redis-server / nats-server per delivery; -1: not found
	MaxPerSec       float64 `json:"maxDeliveriesPerSecP99_100ms"`
	LastHeld        float64 `json:"lastHeldRate"`
	FirstMissed     float64 `json:"firstMissedRate"`
	SatCPUSenderUs  float64 `json:"satCpuSenderNodeUs"`
	SatCPURecvUs    float64 `json:"satCpuReceiverNodeUs"`
	SatCPUBrokerUs  float64 `json:"satCpuBrokerUs"`
	Err             string  `json:"error,omitempty"`
	brokerProcFound bool
}

// clusterBench runs the cluster scenario: a fresh PostgreSQL schema seeded
// through chatd's own store, then for each variant the nodes started on the
// server CPU, cfg.Pairs senders connected to node 0 and their receivers to
// node 1, a fixed rate and a ramp. The broker's CPU is read from /proc of the
// redis-server or nats-server process found by name (it runs outside
// chatbench, unpinned).
func clusterBench(ctx context.Context, cfg runConfig, dir string, serverCPU int, logf func(string, ...any), keep func(string, []rampPoint)) ([]clusterResult, error) {
	b := make([]byte, 6)
	rand.Read(b)
	schema := "chatbench_cluster_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, cfg.ClusterPG)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, err
	}
	defer conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	pgURL := withSearchPath(cfg.ClusterPG, schema)

	st, err := postgres.Open(ctx, pgURL)
	if err != nil {
		return nil, err
	}
	svc := chat.New(st, chat.Options{})
	app, err := svc.CreateApp(ctx, "bench", "chatbench cluster fixture")
	if err != nil {
		st.Close()
		return nil, err
	}
	k := &serverKind{Name: "chatd", AppID: app.ID, Tokens: map[string]string{}, dir: filepath.Join(dir, "cluster")}
	for i := range 2 * cfg.Pairs {
		u := userID(i)
		tok, err := svc.GetToken(ctx, app, u, "Name "+u, "")
		if err != nil {
			st.Close()
			return nil, err
		}
		k.Tokens[u] = tok
	}
	st.Close()

	variants := []struct{ name, broker, proc string }{
		{"single", "memory", ""},
		{"redis", cfg.ClusterRedis, "redis-server"},
		{"nats", cfg.ClusterNATS, "nats-server"},
	}
	var out []clusterResult
	for _, v := range variants {
		if v.broker == "" {
			logf("cluster %s: skipped (no broker URL)", v.name)
			continue
		}
		logf("cluster: %s", v.name)
		res, pts, err := clusterVariant(ctx, cfg, k, pgURL, v.name, v.broker, v.proc, serverCPU, logf)
		if err != nil {
			res.Err = err.Error()
			logf("  cluster %s failed: %v", v.name, err)
		}
		if len(pts) > 0 {
			keep(v.name, pts)
		}
		out = append(out, res)
	}
	return out, nil
}

func withSearchPath(base, schema string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + url.QueryEscape(schema)
}

func clusterVariant(ctx context.Context, cfg runConfig, k *serverKind, pgURL, name, broker, brokerProc string, serverCPU int, logf func(string, ...any)) (clusterResult, []rampPoint, error) {
	res := clusterResult{Variant: name, Nodes: 2, FixedRate: cfg.ClusterRate, CPUBrokerUs: -1, SatCPUBrokerUs: -1}
	if broker == "memory" {
		res.Nodes = 1
	}
	nodeKind := *k
	nodeKind.start = func(ctx context.Context, addr string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, cfg.ChatdBin)
		cmd.Env = append(os.Environ(),
			"CHATD_ADDR="+addr, "CHATD_STORE="+pgURL, "CHATD_BROKER="+broker, "CHATD_BLOBS=file:"+filepath.Join(k.dir, "files"),
			"CHATD_LOG_LEVEL=warn", "CHATD_USER_SEND_RATE=0", "CHATD_APP_SEND_RATE=0",
			"CHATD_HANDSHAKE_RATE_IP=0", "CHATD_MAX_USER_SOCKETS=0", "CHATD_USER_EVENT_RATE=0", "CHATD_MAX_CONNS_PER_IP=0")
		return cmd, nil
	}
	var nodes []*running
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	for range res.Nodes {
		n, err := startServer(ctx, &nodeKind, serverCPU)
		if err != nil {
			return res, nil, err
		}
		nodes = append(nodes, n)
	}
	recvNode := nodes[len(nodes)-1]
	// The measured "server" is node 0 with node 1 and the broker counted too.
	meas := nodes[0]
	meas.extra = nil
	if len(nodes) > 1 {
		meas.extra = append(meas.extra, nodes[1].pid())
	}
	brokerIdx := -1
	if brokerProc != "" {
		if pid := findProc(brokerProc); pid > 0 {
			meas.extra = append(meas.extra, pid)
			brokerIdx = len(meas.extra)
			res.brokerProcFound = true
		} else {
			logf("  %s: no %s process found; its CPU is not counted", name, brokerProc)
		}
	}
	defer func() { meas.extra = nil }()

	rc := &receiver{lat: newLatencies(4_000_000)}
	users := make([]string, 0, 2*cfg.Pairs)
	for i := range 2 * cfg.Pairs {
		users = append(users, userID(i))
	}
	var senders []*client
	var targets []string
	var all []*client
	defer func() { closeAll(all) }()
	for i := 0; i < len(users); i += 2 {
		s, err := dialClient(ctx, nodes[0].addr, srcIPs[i%len(srcIPs)], k.AppID, k.Tokens[users[i]], nil)
		if err != nil {
			return res, nil, fmt.Errorf("connect sender: %w", err)
		}
		all = append(all, s)
		r, err := dialClient(ctx, recvNode.addr, srcIPs[(i+1)%len(srcIPs)], k.AppID, k.Tokens[users[i+1]], rc.onEvent)
		if err != nil {
			return res, nil, fmt.Errorf("connect receiver: %w", err)
		}
		all = append(all, r)
		senders = append(senders, s)
		targets = append(targets, users[i+1])
	}
	perDelivery := func(s stepResult, i int) float64 {
		if i < 0 || i >= len(s.ProcCPU) || s.Delivered == 0 {
			return -1
		}
		return us(s.ProcCPU[i] / time.Duration(s.Delivered))
	}
	runStep(ctx, meas, rc, senders, targets, "send-private-message", cfg.ClusterRate/2, time.Second, time.Second, 1) // warm-up
	fixed := runStep(ctx, meas, rc, senders, targets, "send-private-message", cfg.ClusterRate, cfg.FixedDur, 3*time.Second, 1)
	res.FixedDelivered, res.FixedP50ms, res.FixedP99ms = fixed.PerSec, ms(fixed.P50), ms(fixed.P99)
	res.CPUSenderUs = perDelivery(fixed, 0)
	if len(nodes) > 1 {
		res.CPUReceiverUs = perDelivery(fixed, 1)
	}
	res.CPUBrokerUs = perDelivery(fixed, brokerIdx)
	logf("  %s fixed %.0f msgs/s: delivered %d/%d p50 %v p99 %v, cpu per delivery: node 0 %.0f µs, node 1 %.0f µs, broker %.0f µs",
		name, cfg.ClusterRate, fixed.Delivered, fixed.Expected, fixed.P50, fixed.P99, res.CPUSenderUs, res.CPUReceiverUs, res.CPUBrokerUs)
	settle(ctx, rc)
	meas.kind = &serverKind{Name: "chatd-" + name}
	rr := ramp(ctx, meas, rc, senders, targets, "send-private-message", cfg.ClusterPlan, cfg.StepDur, 1, 100*time.Millisecond, logf).
		withFixed(fixed, 1, 100*time.Millisecond)
	meas.kind = &nodeKind
	res.MaxPerSec, res.LastHeld, res.FirstMissed = rr.Best, rr.LastHeld, rr.FirstMissed
	res.SatCPUSenderUs, res.SatCPURecvUs, res.SatCPUBrokerUs = rr.satProc(0), rr.satProc(1), rr.satProc(brokerIdx)
	if len(nodes) == 1 {
		res.SatCPURecvUs = 0
	}
	return res, rr.Points, nil
}

// satProc is process i's CPU per delivery at the ramp's last step held.
func (rr rampResult) satProc(i int) float64 {
	if i < 0 || i >= len(rr.SatProc) {
		return -1
	}
	return us(rr.SatProc[i])
}

// findProc returns the pid of the first process whose name (/proc/*/comm)
// is comm, or 0.
func findProc(comm string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(b)) == comm {
			return pid
		}
	}
	return 0
}

// clusterMarkdown is the cluster section of latest.md: each variant's
// figures, and the two-node figures against the single node's.
func clusterMarkdown(rs []clusterResult) string {
	var b strings.Builder
	b.WriteString("\n## Cluster: chatd on PostgreSQL, senders on node 0, receivers on node 1 (one round)\n\n")
	b.WriteString("CPU per delivery is each process's utime+stime from /proc over the step divided by the deliveries; the broker (redis-server, nats-server) is the machine's own service, not pinned.\n\n")
	b.WriteString("| variant | nodes | p50 / p99 at the fixed rate (ms) | CPU per delivery at the fixed rate: node 0 / node 1 / broker (µs) | deliveries/s with p99 ≤ 100 ms | last held / first missed (msgs/s) | CPU per delivery at the last held: node 0 / node 1 / broker (µs) |\n|---|---:|---|---|---:|---|---|\n")
	var single *clusterResult
	for i := range rs {
		if rs[i].Variant == "single" {
			single = &rs[i]
		}
	}
	for _, r := range rs {
		if r.Err != "" {
			fmt.Fprintf(&b, "| %s | %d | failed: %s | | | | |\n", r.Variant, r.Nodes, r.Err)
			continue
		}
		missed := fmtFig(&r.FirstMissed)
		if r.FirstMissed == 0 {
			missed = "not reached"
		}
		fmt.Fprintf(&b, "| %s | %d | %s / %s | %s / %s / %s | %s | %s / %s | %s / %s / %s |\n", r.Variant, r.Nodes,
			fmtFig(&r.FixedP50ms), fmtFig(&r.FixedP99ms),
			fmtFig(&r.CPUSenderUs), dashIfSingle(r, r.CPUReceiverUs), fmtOpt(r.CPUBrokerUs),
			fmtFig(&r.MaxPerSec), fmtFig(&r.LastHeld), missed,
			fmtOpt(r.SatCPUSenderUs), dashIfSingle(r, r.SatCPURecvUs), fmtOpt(r.SatCPUBrokerUs))
	}
	if single != nil && single.Err == "" {
		b.WriteString("\nAgainst the single node at the fixed rate:\n\n")
		for _, r := range rs {
			if r.Variant == "single" || r.Err != "" {
				continue
			}
			total := r.CPUSenderUs + r.CPUReceiverUs + max(r.CPUBrokerUs, 0)
			fmt.Fprintf(&b, "- %s: p50 %+.2f ms, p99 %+.2f ms; CPU per cross-node delivery %.0f µs (both nodes and the broker) against %.0f µs, %+.0f µs added; deliveries/s with p99 ≤ 100 ms %.2f× the single node's.\n",
				r.Variant, r.FixedP50ms-single.FixedP50ms, r.FixedP99ms-single.FixedP99ms, total, single.CPUSenderUs, total-single.CPUSenderUs, r.MaxPerSec/max(single.MaxPerSec, 1))
		}
	}
	return b.String()
}

func dashIfSingle(r clusterResult, v float64) string {
	if r.Nodes == 1 {
		return "—"
	}
	return fmtOpt(v)
}

func fmtOpt(v float64) string {
	if v < 0 {
		return "—"
	}
	return fmtFig(&v)
}
