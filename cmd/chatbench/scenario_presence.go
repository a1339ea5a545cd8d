package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The presence scenario (docs/benchmarks.md, Presence): users connect and
// then leave, each a presence change up and one down after the grace
// period; measured are the broker messages the node published and its CPU
// per change. chatd only: the peer has no presence.

func init() {
	metricDefs = append(metricDefs,
		metricDef{"presence", "broker_msgs_per_change", "presence: broker messages per presence change (10,000 users in and out)", "msgs", true, 0, 0},
		metricDef{"presence", "cpu_us_per_change", "presence: server CPU per presence change (connects and closes included)", "µs", true, 0, 0},
	)
}

// presenceGraceWait is how long after the last close the downs are awaited:
// chatd's default grace (5 s) and some room.
const presenceGraceWait = 20 * time.Second

func presenceChurn(ctx context.Context, e env) (figures, error) {
	if e.r.kind.Name != "chatd" {
		return figures{}, nil
	}
	n := min(e.cfg.IdleConns, len(e.fx.Users))
	pub0, err := brokerPublished(e.r.addr)
	if err != nil {
		return nil, err
	}
	p0, err := readProc(e.r.pid())
	if err != nil {
		return nil, err
	}
	conns, got, err := connectMany(ctx, e.r, e.fx.Users, 0, n, 256, 50, nil)
	if got < n {
		closeAll(conns)
		return nil, fmt.Errorf("connected %d of %d users: %v", got, n, err)
	}
	closeAll(conns)
	want := pub0 + 2*int64(got)
	var pub int64
	for deadline := time.Now().Add(presenceGraceWait); ; time.Sleep(200 * time.Millisecond) {
		if pub, err = brokerPublished(e.r.addr); err != nil {
			return nil, err
		}
		if pub >= want || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	p1, err := readProc(e.r.pid())
	if err != nil {
		return nil, err
	}
	changes := float64(2 * got)
	f := figures{
		"users":                  float64(got),
		"broker_msgs_per_change": float64(pub-pub0) / changes,
		// The time waiting for the grace period costs nothing but the beats.
		"cpu_us_per_change": us(p1.CPU-p0.CPU) / changes,
	}
	e.logf("  chatd: %d users in and out, %d broker messages, CPU %v", got, pub-pub0, (p1.CPU - p0.CPU).Round(time.Millisecond))
	return f, nil
}

// brokerPublished reads chatd_broker_published_total from /metrics.
func brokerPublished(addr string) (int64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "chatd_broker_published_total "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no chatd_broker_published_total in /metrics")
}
