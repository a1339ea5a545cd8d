package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// env is what a scenario gets: the fixture, the config and a started server.
type env struct {
	cfg  runConfig
	fx   *fixture
	r    *running
	logf func(string, ...any)
	// round is the repetition (0, 1, 2): the scenarios that take long do
	// their optional parts in round 0 only.
	round int
	// keepRamp records a ramp's steps for the report and its charts.
	keepRamp func(name string, pts []rampPoint)
}

// figures are one server's results in one scenario, by metric key.
type figures map[string]float64

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return float64(d) / float64(time.Millisecond)
}

// idle holds connections and measures the server's RSS growth per connection:
// first at cfg.IdleConns, then at as many as fit (up to cfg.IdleMax).
func idle(ctx context.Context, e env) (figures, error) {
	f := figures{}
	time.Sleep(500 * time.Millisecond)
	base, err := readProc(e.r.pid())
	if err != nil {
		return nil, err
	}
	conns, got, err := connectMany(ctx, e.r, e.fx.Users, 0, e.cfg.IdleConns, 256, 50, nil)
	defer func() { closeAll(conns) }()
	if got < e.cfg.IdleConns {
		return nil, fmt.Errorf("held %d of %d connections: %v", got, e.cfg.IdleConns, err)
	}
	time.Sleep(2 * time.Second)
	at, err := readProc(e.r.pid())
	if err != nil {
		return nil, err
	}
	f["rss_base_mib"] = float64(base.RSS) / (1 << 20)
	f["rss_per_conn_kib"] = float64(at.RSS-base.RSS) / float64(got) / 1024
	e.logf("  %s: %d connections, RSS %.1f → %.1f MiB", e.r.kind.Name, got, float64(base.RSS)/(1<<20), float64(at.RSS)/(1<<20))
	if e.cfg.IdleMax > e.cfg.IdleConns && e.round == 0 {
		more, got2, err := connectMany(ctx, e.r, e.fx.Users, e.cfg.IdleConns, e.cfg.IdleMax, 256, 20, nil)
		conns = append(conns, more...)
		total := got + got2
		time.Sleep(2 * time.Second)
		at2, _ := readProc(e.r.pid())
		f["max_conns"] = float64(total)
		f["rss_per_conn_at_max_kib"] = float64(at2.RSS-base.RSS) / float64(total) / 1024
		f["rss_at_max_mib"] = float64(at2.RSS) / (1 << 20)
		e.logf("  %s: most held %d (first failure: %v), RSS %.1f MiB", e.r.kind.Name, total, err, float64(at2.RSS)/(1<<20))
	}
	return f, nil
}

// oneToOne: cfg.Pairs senders each writing to their own receiver.
func oneToOne(ctx context.Context, e env) (figures, error) {
	rc := &receiver{lat: newLatencies(4_000_000)}
	n := 2 * e.cfg.Pairs
	conns, got, err := connectMany(ctx, e.r, e.fx.Users, 0, n, 128, 1, func(i int) func([]byte) {
		if i%2 == 1 {
			return rc.onEvent
		}
		return nil
	})
	defer closeAll(conns)
	if got < n {
		return nil, fmt.Errorf("connect: %w", err)
	}
	var senders []*client
	var targets []string
	for i := 0; i < n; i += 2 {
		senders = append(senders, conns[i])
		targets = append(targets, e.fx.Users[i+1])
	}
	f := figures{}
	// Warm up (JIT, page cache, connection pools) before measuring.
	runStep(ctx, e.r, rc, senders, targets, "send-private-message", e.cfg.P2PRate/2, time.Second, time.Second, 1)
	fixed := runStep(ctx, e.r, rc, senders, targets, "send-private-message", e.cfg.P2PRate, e.cfg.FixedDur, 3*time.Second, 1)
	e.logf("  %s fixed %.0f msgs/s: delivered %d/%d (%.0f/s) p50 %v p99 %v, acks failed %d, server cpu %v (%.1f µs/msg), loadgen cpu %v",
		e.r.kind.Name, e.cfg.P2PRate, fixed.Delivered, fixed.Expected, fixed.PerSec, fixed.P50, fixed.P99, fixed.AckErrors,
		fixed.ServerCPU, us(fixed.CPUPerDeliv), fixed.LoadgenCPU)
	f["fixed_msgs_per_s"] = fixed.PerSec
	f["fixed_p50_ms"] = ms(fixed.P50)
	f["fixed_p99_ms"] = ms(fixed.P99)
	f["cpu_us_per_msg"] = us(fixed.CPUPerDeliv)
	settle(ctx, rc)
	rr := ramp(ctx, e.r, rc, senders, targets, "send-private-message", e.cfg.P2PRamp, e.cfg.StepDur, 1, 100*time.Millisecond, e.logf).
		withFixed(fixed, 1, 100*time.Millisecond)
	f["max_msgs_per_s_p99_100ms"] = rr.Best
	rr.figures(f, "ramp_")
	e.keepRamp("p2p", rr.Points)
	// The WAL file only grows while checkpoints cannot start it over, so its
	// size after the ramp's sustained sends is its high-water mark.
	if fi, err := os.Stat(e.r.kind.db + "-wal"); err == nil {
		f["wal_mib_after_ramp"] = float64(fi.Size()) / (1 << 20)
	}
	return f, nil
}

// fanout: every member of a group connected, a few of them sending.
func fanout(ctx context.Context, e env) (figures, error) {
	rc := &receiver{lat: newLatencies(8_000_000)}
	n := e.cfg.FanoutMembers
	conns, got, err := connectMany(ctx, e.r, e.fx.Users, 0, n, 128, 1, func(int) func([]byte) { return rc.onEvent })
	defer closeAll(conns)
	if got < n {
		return nil, fmt.Errorf("connect: %w", err)
	}
	senders := conns[:e.cfg.FanoutSenders]
	targets := make([]string, len(senders))
	for i := range targets {
		targets[i] = e.fx.FanoutGroup
	}
	f := figures{}
	runStep(ctx, e.r, rc, senders, targets, "send-group-message", e.cfg.FanoutRate/2, time.Second, 2*time.Second, n-1) // warm-up
	fixed := runStep(ctx, e.r, rc, senders, targets, "send-group-message", e.cfg.FanoutRate, e.cfg.FixedDur, 5*time.Second, n-1)
	e.logf("  %s fixed %.0f msgs/s × %d: delivered %d/%d (%.0f/s) p50 %v p99 %v, acks failed %d, server cpu %v (%.2f µs/delivery), loadgen cpu %v",
		e.r.kind.Name, e.cfg.FanoutRate, n-1, fixed.Delivered, fixed.Expected, fixed.PerSec, fixed.P50, fixed.P99, fixed.AckErrors,
		fixed.ServerCPU, us(fixed.CPUPerDeliv), fixed.LoadgenCPU)
	f["fixed_deliveries_per_s"] = fixed.PerSec
	f["fixed_p99_ms"] = ms(fixed.P99)
	f["cpu_us_per_delivery"] = us(fixed.CPUPerDeliv)
	settle(ctx, rc)
	rr := ramp(ctx, e.r, rc, senders, targets, "send-group-message", e.cfg.FanoutRamp, e.cfg.StepDur, n-1, 100*time.Millisecond, e.logf).
		withFixed(fixed, n-1, 100*time.Millisecond)
	f["max_deliveries_per_s_p99_100ms"] = rr.Best
	rr.figures(f, "ramp_")
	e.keepRamp("fanout", rr.Points)
	return f, nil
}

// history: closed-loop clients paging 50 messages back from random points of
// the long conversation.
func history(ctx context.Context, e env) (figures, error) {
	n := e.cfg.HistoryClients
	conns, got, err := connectMany(ctx, e.r, []string{e.fx.HistoryA}, 0, n, 64, 1, nil)
	defer closeAll(conns)
	if got < n {
		return nil, fmt.Errorf("connect: %w", err)
	}
	// Check the seed once: the newest page is full and ends at the last seq.
	page, err := conns[0].call(ctx, "session-message-list", []byte(`{"sid":"`+e.fx.HistorySID+`","limit":50}`))
	if err != nil {
		return nil, err
	}
	var msgs []struct {
		Seq int `json:"seq"`
	}
	if err := json.Unmarshal(page, &msgs); err != nil || len(msgs) != 50 || msgs[0].Seq != e.fx.HistoryCount {
		return nil, fmt.Errorf("history seed check: %d messages, %.200s", len(msgs), page)
	}
	lat := newLatencies(4_000_000)
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	before, _ := readProc(e.r.pid())
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, e.cfg.HistoryDur)
	defer cancel()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for dctx.Err() == nil {
				seq := 51 + rng.IntN(e.fx.HistoryCount-50)
				arg := []byte(`{"sid":"` + e.fx.HistorySID + `","limit":50,"lastmsgId":"` + msgIDFor(historyIDBase, seq) + `"}`)
				t := time.Now()
				_, err := c.call(ctx, "session-message-list", arg)
				if err != nil {
					failed.Add(1)
					continue
				}
				lat.add(time.Since(t))
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	after, _ := readProc(e.r.pid())
	q := lat.quantile(0.5, 0.99)
	f := figures{
		"queries_per_s": float64(done.Load()) / el.Seconds(),
		"p50_ms":        ms(q[0]),
		"p99_ms":        ms(q[1]),
		"failed":        float64(failed.Load()),
	}
	if done.Load() > 0 {
		f["cpu_us_per_query"] = us((after.CPU - before.CPU) / time.Duration(done.Load()))
	}
	e.logf("  %s: %d pages in %v (%.0f/s) p50 %v p99 %v, failed %d", e.r.kind.Name, done.Load(), el.Round(time.Millisecond), f["queries_per_s"], q[0], q[1], failed.Load())
	return f, nil
}

// storm: every client drops at once, reconnects and syncs its session.
func storm(ctx context.Context, e env) (figures, error) {
	n := e.cfg.StormClients
	conns, got, err := connectMany(ctx, e.r, e.fx.Users, 0, n, 256, 10, nil)
	if got < n {
		closeAll(conns)
		return nil, fmt.Errorf("connect: %d of %d: %w", got, n, err)
	}
	time.Sleep(time.Second)
	before, _ := readProc(e.r.pid())
	start := time.Now()
	closeAll(conns)
	var synced, failed atomic.Int64
	sctx, cancel := context.WithTimeout(ctx, e.cfg.StormTimeout)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, e.cfg.StormConcurrency)
	again := make([]*client, n)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			u := e.fx.Users[i]
			for attempt := 0; attempt < 5 && sctx.Err() == nil; attempt++ {
				c, err := dialClient(sctx, e.r.addr, srcIPs[i%len(srcIPs)], e.r.kind.AppID, e.r.kind.Tokens[u], nil)
				if err != nil {
					time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
					continue
				}
				again[i] = c
				if _, err := c.call(sctx, "sync", []byte(`{"sid":"`+e.fx.StormSIDs[u]+`","afterSeq":0,"limit":20}`)); err != nil {
					break
				}
				synced.Add(1)
				return
			}
			failed.Add(1)
		}()
	}
	wg.Wait()
	el := time.Since(start)
	after, _ := readProc(e.r.pid())
	closeAll(again)
	e.logf("  %s: %d of %d back and synced in %v (failed %d), server cpu %v", e.r.kind.Name, synced.Load(), n, el.Round(time.Millisecond), failed.Load(), after.CPU-before.CPU)
	f := figures{"seconds": el.Seconds(), "synced": float64(synced.Load()), "failed": float64(failed.Load()), "cpu_s": (after.CPU - before.CPU).Seconds()}
	if failed.Load() > 0 {
		f["seconds"] = -1
	}
	return f, nil
}
