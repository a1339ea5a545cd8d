package main

import (
	"bytes"
	"database/sql"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store/sqlite"
)

func TestMedianSpread(t *testing.T) {
	tests := []struct {
		name          string
		vals          []float64
		lower         bool
		med, lo, hi   float64
		failed, count int
	}{
		{"three", []float64{3, 1, 2}, false, 2, 1, 3, 0, 3},
		{"even", []float64{4, 1, 2, 3}, true, 2.5, 1, 4, 0, 4},
		{"one", []float64{7}, true, 7, 7, 7, 0, 1},
		{"failure is worst when lower is better", []float64{-1, 1, 2}, true, 2, 1, -1, 1, 3},
		{"failures are the median", []float64{-1, -1, 2}, true, -1, 2, -1, 2, 3},
		{"failure is zero when higher is better", []float64{-1, 5, 6}, false, 5, 0, 6, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := medianSpread(tt.vals, tt.lower)
			if s.Median != tt.med || s.Min != tt.lo || s.Max != tt.hi || s.Failed != tt.failed || s.N != tt.count {
				t.Errorf("medianSpread(%v) = %+v, want median %v range %v–%v failed %d n %d", tt.vals, s, tt.med, tt.lo, tt.hi, tt.failed, tt.count)
			}
		})
	}
	if s := medianSpread(nil, false); !math.IsNaN(s.Median) {
		t.Errorf("empty: %+v", s)
	}
}

func TestRampPlanRates(t *testing.T) {
	p := rampPlan{Start: 500, Factor: 1.5}
	want := []float64{500, 750, 1100, 1700, 2500, 3800, 5700, 8500, 13000}
	for i, w := range want {
		if got := p.rate(i); got != w {
			t.Errorf("rate(%d) = %v, want %v", i, got, w)
		}
	}
	f := rampPlan{Start: 5, Factor: 1.5}
	for i, w := range []float64{5, 7.5, 11, 17, 25, 38, 57, 85, 130} {
		if got := f.rate(i); got != w {
			t.Errorf("fan-out rate(%d) = %v, want %v", i, got, w)
		}
	}
}

func TestRampNextAction(t *testing.T) {
	const budget = 30 * time.Second
	tests := []struct {
		name    string
		held    bool
		try     int
		elapsed time.Duration
		want    rampAction
	}{
		{"held goes up", true, 0, time.Second, rampNext},
		{"held on retry goes up", true, 1, time.Second, rampNext},
		{"first miss is retried", false, 0, time.Second, rampRetry},
		{"second miss ends the ramp", false, 1, time.Second, rampStop},
		{"held past the budget stops", true, 0, budget, rampStop},
		{"missed past the budget stops without retry", false, 0, budget + time.Second, rampStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rampNextAction(tt.held, tt.try, tt.elapsed, budget); got != tt.want {
				t.Errorf("rampNextAction = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRampSeries: the last try of a step replaces the first, and each load's
// point is the median over the rounds that reached it.
func TestRampSeries(t *testing.T) {
	rounds := [][]rampPoint{
		{{Load: 10, P50ms: 1, P99ms: 2}, {Load: 20, P50ms: 9, P99ms: -1}, {Load: 20, P50ms: 3, P99ms: 50, Try: 1}},
		{{Load: 10, P50ms: 2, P99ms: 4}, {Load: 20, P50ms: 4, P99ms: 60}},
		{{Load: 10, P50ms: 3, P99ms: 6}, {Load: 20, P50ms: 5, P99ms: -1}, {Load: 20, P50ms: 5, P99ms: -1, Try: 1}},
	}
	p50, p99 := rampSeries(rounds)
	want50 := []xy{{10, 2}, {20, 4}}
	want99 := []xy{{10, 4}, {20, 60}}
	if len(p50) != 2 || p50[0] != want50[0] || p50[1] != want50[1] {
		t.Errorf("p50 = %v, want %v", p50, want50)
	}
	if len(p99) != 2 || p99[0] != want99[0] || p99[1] != want99[1] {
		t.Errorf("p99 = %v, want %v", p99, want99)
	}
}

func TestChartSVG(t *testing.T) {
	c := chart{Title: "t <&>", XLabel: "load", YLabel: "ms", HLine: 100, Series: []series{
		{Name: "chatd p99", Color: "#111", Points: []xy{{500, 1}, {1000, 2}, {2000, 150}, {4000, -1}}},
		{Name: "peer p99", Color: "#222", Dashed: true, Points: []xy{{500, 5}}},
		{Name: "empty", Color: "#333"},
	}}
	out := c.svg()
	// Well-formed XML with the escaped title.
	d := xml.NewDecoder(bytes.NewReader(out))
	var polylines, crosses, circles int
	var lastX, lastY float64
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, out)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "polyline":
			polylines++
			for _, a := range se.Attr {
				if a.Name.Local != "points" {
					continue
				}
				pts := strings.Fields(a.Value)
				if polylines == 1 && len(pts) != 3 {
					t.Errorf("chatd polyline has %d points, want 3 (the lost step is a cross): %s", len(pts), a.Value)
				}
				// x grows with load; y (SVG, downwards) shrinks as latency grows.
				lastX, lastY = -1, 1e9
				for _, p := range pts {
					var x, y float64
					if _, err := fmtSscan(p, &x, &y); err != nil {
						t.Fatal(err)
					}
					if x <= lastX || (polylines == 1 && y >= lastY) {
						t.Errorf("points not in order: %s", a.Value)
					}
					lastX, lastY = x, y
					if x < padLeft || x > padLeft+plotW || y < padTop || y > padTop+plotH {
						t.Errorf("point %s outside the plot", p)
					}
				}
			}
		case "path":
			crosses++
		case "circle":
			circles++
		}
	}
	if polylines != 2 || crosses != 1 || circles != 4 {
		t.Errorf("polylines %d crosses %d circles %d, want 2 1 4", polylines, crosses, circles)
	}
	if !bytes.Contains(out, []byte("t &lt;&amp;&gt;")) || !bytes.Contains(out, []byte("p99 bound 100 ms")) || !bytes.Contains(out, []byte(">1k<")) {
		t.Errorf("title, bound or ticks missing:\n%s", out)
	}
}

func TestTickLabel(t *testing.T) {
	for v, want := range map[float64]string{0.1: "0.1", 1: "1", 100: "100", 1000: "1k", 20000: "20k", 1e6: "1M"} {
		if got := tickLabel(v); got != want {
			t.Errorf("tickLabel(%v) = %q, want %q", v, got, want)
		}
	}
}

func fmtSscan(p string, x, y *float64) (int, error) {
	return fmt.Sscanf(p, "%g,%g", x, y)
}

func TestMissedSpread(t *testing.T) {
	tests := []struct {
		vals        []float64
		med, lo, hi float64
	}{
		{[]float64{1100, 0, 750}, 1100, 750, 0}, // 0: not reached, above every rate
		{[]float64{0, 0, 750}, 0, 750, 0},
		{[]float64{500, 750, 1100}, 750, 500, 1100},
	}
	for _, tt := range tests {
		s := missedSpread(tt.vals)
		if s.Median != tt.med || s.Min != tt.lo || s.Max != tt.hi {
			t.Errorf("missedSpread(%v) = %+v, want %v %v–%v", tt.vals, s, tt.med, tt.lo, tt.hi)
		}
	}
}

// TestRampWithFixed: the fixed-rate step leads the ramp's points, and is the
// last step held only when no ramp step held.
func TestRampWithFixed(t *testing.T) {
	limit := 100 * time.Millisecond
	fixed := stepResult{Rate: 500, Offered: 10, Sent: 10, Expected: 10, Delivered: 10, PerSec: 500, P50: time.Millisecond, P99: 2 * time.Millisecond, CPUPerDeliv: 300 * time.Microsecond}
	missed := rampResult{Points: []rampPoint{{Rate: 750}, {Rate: 750, Try: 1}}, FirstMissed: 750}
	got := missed.withFixed(fixed, 1, limit)
	if len(got.Points) != 3 || got.Points[0].Rate != 500 || !got.Points[0].Held || got.LastHeld != 500 || got.Best != 500 || got.FirstMissed != 750 {
		t.Errorf("ramp that missed its first step: %+v", got)
	}
	held := rampResult{Points: []rampPoint{{Rate: 750, Held: true}}, LastHeld: 750, Best: 740}
	if got := held.withFixed(fixed, 1, limit); got.LastHeld != 750 || got.Best != 740 || len(got.Points) != 2 {
		t.Errorf("ramp that held: %+v", got)
	}
	lost := fixed
	lost.Delivered, lost.P99 = 5, -1
	if got := missed.withFixed(lost, 1, limit); got.LastHeld != 0 || got.Points[0].Held {
		t.Errorf("fixed step that lost deliveries counted as held: %+v", got)
	}
}

// TestLoopbackFloorRuns: the floor measurement writes through real loopback
// connections and returns a CPU time per write (unpinned: the test may run
// where CPU 0 is not allowed).
func TestLoopbackFloorRuns(t *testing.T) {
	d, err := loopbackFloor(t.Context(), -1, 10, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if d < 0 {
		t.Fatalf("floor %v", d)
	}
}

func TestFindProc(t *testing.T) {
	if pid := findProc("no-such-process-name"); pid != 0 {
		t.Errorf("findProc found %d", pid)
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skip("no /proc")
	}
	if pid := findProc(strings.TrimSpace(string(comm))); pid == 0 {
		t.Errorf("findProc did not find %q", comm)
	}
}

// TestClusterMarkdown: the variants' rows, a failed variant, and the
// comparison with the single node.
func TestClusterMarkdown(t *testing.T) {
	md := clusterMarkdown([]clusterResult{
		{Variant: "single", Nodes: 1, FixedP50ms: 1, FixedP99ms: 10, CPUSenderUs: 300, CPUBrokerUs: -1, MaxPerSec: 1000, LastHeld: 1100, SatCPUSenderUs: 200, SatCPUBrokerUs: -1},
		{Variant: "redis", Nodes: 2, FixedP50ms: 2, FixedP99ms: 12, CPUSenderUs: 300, CPUReceiverUs: 100, CPUBrokerUs: 50, MaxPerSec: 500, LastHeld: 750, FirstMissed: 1100, SatCPUSenderUs: -1, SatCPURecvUs: -1, SatCPUBrokerUs: -1},
		{Variant: "nats", Nodes: 2, Err: "boom"},
	})
	for _, want := range []string{
		"| single | 1 | 1.00 / 10.0 | 300 / — / — | 1000 | 1100 / not reached | 200 / — / — |",
		"| redis | 2 | 2.00 / 12.0 | 300 / 100 / 50.0 | 500 | 750 / 1100 | — / — / — |",
		"| nats | 2 | failed: boom |",
		"- redis: p50 +1.00 ms, p99 +2.00 ms; CPU per cross-node delivery 450 µs (both nodes and the broker) against 300 µs, +150 µs added; deliveries/s with p99 ≤ 100 ms 0.50×",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
}

// TestBulkMessagesKeepsTriggers: the bulk seed inserts without chatd's
// triggers on messages and puts every one of them back.
func TestBulkMessagesKeepsTriggers(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "chatd.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := st.OpenPrivate(ctx, "app", "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open(sqlite.SQLDriver, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	triggers := func() string {
		var s string
		if err := db.QueryRow(`SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'messages' ORDER BY name)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := triggers()
	if before == "" {
		t.Fatal("chatd's schema has no triggers on messages: the test proves nothing")
	}
	if err := bulkMessages(ctx, db, conv.ID, 10, "5eed", []string{"a", "b"}, true); err != nil {
		t.Fatal(err)
	}
	if after := triggers(); after != before {
		t.Errorf("triggers after the seed:\n%s\nwant\n%s", after, before)
	}
	var msgs, queued int
	db.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&msgs)
	if err := db.QueryRow(`SELECT COUNT(*) FROM search_queue`).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if msgs != 10 || queued != 0 {
		t.Errorf("%d messages, %d queued; want 10 and 0", msgs, queued)
	}
}
