package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// metricDef is one line of the result table.
type metricDef struct {
	Scenario, Key, Label, Unit string
	Lower                      bool    // lower is better
	Target                     float64 // chatd/peer ratio to meet; 0: none
	Own                        float64 // a bound on chatd's own figure (a ratio to a floor); 0: none
}

// The targets are issue 17's goals, judged on the medians of the rounds.
var metricDefs = []metricDef{
	{"idle", "rss_per_conn_kib", "RSS per idle connection (10,000 held)", "KiB", true, 0.4, 0},
	{"idle", "max_conns", "most idle connections held (fd limit 20,000; round 1)", "conns", false, 0, 0},
	{"idle", "rss_per_conn_at_max_kib", "RSS per idle connection at the most held (round 1)", "KiB", true, 0, 0},
	{"p2p", "fixed_msgs_per_s", "one-to-one: delivered msgs/s at the fixed rate", "msgs/s", false, 0, 0},
	{"p2p", "fixed_p50_ms", "one-to-one: p50 send→receive at the fixed rate", "ms", true, 0, 0},
	{"p2p", "fixed_p99_ms", "one-to-one: p99 send→receive at equal load", "ms", true, 0.33, 0},
	{"p2p", "cpu_us_per_msg", "one-to-one: server CPU per message at the fixed rate", "µs", true, 0.5, 0},
	{"p2p", "max_msgs_per_s_p99_100ms", "one-to-one: durable msgs/s with p99 ≤ 100 ms", "msgs/s", false, 3, 0},
	{"p2p", "ramp_last_held_rate", "one-to-one ramp: last step held (offered)", "msgs/s", false, 0, 0},
	{"p2p", "ramp_first_missed_rate", "one-to-one ramp: first step missed (offered)", "msgs/s", false, 0, 0},
	{"p2p", "ramp_sat_cpu_us", "one-to-one: server CPU per message at the last step held", "µs", true, 0, 0},
	{"p2p", "wal_mib_after_ramp", "one-to-one: SQLite WAL file after the ramp", "MiB", true, 0, 0},
	{"fanout", "fixed_deliveries_per_s", "fan-out: deliveries/s at the fixed rate", "deliv/s", false, 0, 0},
	{"fanout", "fixed_p99_ms", "fan-out: p99 send→receive at the fixed rate", "ms", true, 0, 0},
	{"fanout", "cpu_us_per_delivery", "fan-out: server CPU per delivery at the fixed rate", "µs", true, 0, 0},
	{"fanout", "floor_us", "fan-out: floor, one loopback write (same run, server CPU)", "µs", true, 0, 0},
	{"fanout", "cpu_over_floor", "fan-out: CPU per delivery at the fixed rate ÷ floor", "×", true, 0, 1.3},
	{"fanout", "ramp_sat_cpu_us", "fan-out: server CPU per delivery at the last step held", "µs", true, 0, 0},
	{"fanout", "max_deliveries_per_s_p99_100ms", "fan-out: deliveries/s with p99 ≤ 100 ms", "deliv/s", false, 5, 0},
	{"fanout", "ramp_last_held_rate", "fan-out ramp: last step held (offered msgs/s to the group)", "msgs/s", false, 0, 0},
	{"fanout", "ramp_first_missed_rate", "fan-out ramp: first step missed (offered msgs/s to the group)", "msgs/s", false, 0, 0},
	{"history", "queries_per_s", "history: pages of 50 per second", "q/s", false, 2, 0},
	{"history", "p99_ms", "history: p99 page latency", "ms", true, 0.5, 0},
	{"history", "cpu_us_per_query", "history: server CPU per page", "µs", true, 0.5, 0},
	{"storm", "seconds", "reconnect storm: all back and synced", "s", true, 0, 0},
	{"storm", "cpu_s", "reconnect storm: server CPU", "s", true, 0, 0},
	{"store", "sqlite_msgs_per_s_c1", "store alone, SQLite: durable sends/s, 1 sender", "msgs/s", false, 1, 0},
	{"store", "sqlite_msgs_per_s_c64", "store alone, SQLite: durable sends/s, 64 senders", "msgs/s", false, 0, 0},
	{"store", "postgres_msgs_per_s_c64", "store alone, PostgreSQL (chatd only): sends/s, 64 senders", "msgs/s", false, 0, 0},
}

// row is one compared figure: the median over the rounds, its range, and
// the ratio of the medians (with the range of the per-round ratios, chatd's
// round i against the peer's round i, which ran right after it).
type row struct {
	Scenario  string   `json:"scenario"`
	Metric    string   `json:"metric"`
	Label     string   `json:"label"`
	Unit      string   `json:"unit"`
	Chatd     *float64 `json:"chatd"` // median
	ChatdMin  *float64 `json:"chatdMin,omitempty"`
	ChatdMax  *float64 `json:"chatdMax,omitempty"`
	Peer      *float64 `json:"peer"` // median
	PeerMin   *float64 `json:"peerMin,omitempty"`
	PeerMax   *float64 `json:"peerMax,omitempty"`
	Rounds    int      `json:"rounds"`
	Ratio     *float64 `json:"ratio,omitempty"` // median chatd / median peer
	RatioMin  *float64 `json:"ratioMin,omitempty"`
	RatioMax  *float64 `json:"ratioMax,omitempty"`
	Target    string   `json:"target,omitempty"`
	Met       *bool    `json:"met,omitempty"`
	ownTarget bool
}

type report struct {
	Started  time.Time                           `json:"started"`
	Finished time.Time                           `json:"finished"`
	Short    bool                                `json:"short"`
	Pinned   bool                                `json:"pinned"`
	CPUs     int                                 `json:"cpus"`
	Rounds   int                                 `json:"rounds"`
	LoadAvg  string                              `json:"loadavg"` // /proc/loadavg at the start and at the end
	Config   string                              `json:"config"`
	Rows     []row                               `json:"rows"`
	Results  map[string]map[string][]figures     `json:"raw"`   // scenario → server → rounds
	Ramps    map[string]map[string][][]rampPoint `json:"ramps"` // ramp → server → rounds → steps
	Cluster  []clusterResult                     `json:"cluster,omitempty"`
	Charts   []string                            `json:"charts,omitempty"`
	Errors   []string                            `json:"errors,omitempty"`
}

func ptr(v float64) *float64 { return &v }

func (r *report) build(cfg runConfig) {
	r.Rows = nil
	for _, d := range metricDefs {
		res, ok := r.Results[d.Scenario]
		if !ok {
			continue
		}
		rw := row{Scenario: d.Scenario, Metric: d.Key, Label: d.Label, Unit: d.Unit}
		vals := func(server string) []float64 {
			var v []float64
			for _, f := range res[server] {
				if x, ok := f[d.Key]; ok {
					v = append(v, x)
				}
			}
			return v
		}
		cv, pv := vals("chatd"), vals("peer")
		if len(cv) == 0 && len(pv) == 0 {
			continue
		}
		rw.Rounds = max(len(cv), len(pv))
		summary := func(v []float64) spread { return medianSpread(v, d.Lower) }
		missed := strings.HasSuffix(d.Key, "first_missed_rate")
		if missed {
			summary = missedSpread
		}
		if len(cv) > 0 {
			s := summary(cv)
			rw.Chatd, rw.ChatdMin, rw.ChatdMax = ptr(s.Median), ptr(s.Min), ptr(s.Max)
		}
		if len(pv) > 0 {
			s := summary(pv)
			rw.Peer, rw.PeerMin, rw.PeerMax = ptr(s.Median), ptr(s.Min), ptr(s.Max)
		}
		if d.Scenario == "store" && d.Key == "sqlite_msgs_per_s_c64" {
			rw.Label = fmt.Sprintf("store alone, SQLite: durable sends/s, %d senders", cfg.StoreConc)
		}
		// A negative figure is a failed run (lost deliveries, failed reconnects).
		if rw.Chatd != nil && rw.Peer != nil && *rw.Chatd >= 0 && *rw.Peer > 0 && !(missed && *rw.Chatd == 0) {
			rw.Ratio = ptr(*rw.Chatd / *rw.Peer)
			var rs []float64
			for i := range min(len(res["chatd"]), len(res["peer"])) {
				c, okc := res["chatd"][i][d.Key]
				p, okp := res["peer"][i][d.Key]
				if okc && okp && c >= 0 && p > 0 && !(missed && c == 0) {
					rs = append(rs, c/p)
				}
			}
			if len(rs) > 0 {
				s := medianSpread(rs, d.Lower)
				rw.RatioMin, rw.RatioMax = ptr(s.Min), ptr(s.Max)
			}
		}
		op := "≥"
		if d.Lower {
			op = "≤"
		}
		switch {
		case d.Own > 0:
			rw.ownTarget = true
			rw.Target = fmt.Sprintf("chatd %s %.2g", op, d.Own)
			if rw.Chatd != nil && *rw.Chatd >= 0 {
				met := (d.Lower && *rw.Chatd <= d.Own) || (!d.Lower && *rw.Chatd >= d.Own)
				rw.Met = &met
			}
		case d.Target > 0:
			rw.Target = fmt.Sprintf("%s %.2g×", op, d.Target)
			if rw.Ratio != nil {
				met := (d.Lower && *rw.Ratio <= d.Target) || (!d.Lower && *rw.Ratio >= d.Target)
				rw.Met = &met
			} else if rw.Chatd != nil && *rw.Chatd >= 0 && rw.Peer != nil && *rw.Peer <= 0 && !d.Lower {
				met := *rw.Chatd > 0 // the peer never met the bar at all
				rw.Met = &met
			}
		}
		r.Rows = append(r.Rows, rw)
	}
}

func fmtFig(v *float64) string {
	switch {
	case v == nil:
		return "—"
	case *v < 0:
		return "failed"
	case *v == 0:
		return "0"
	case math.Abs(*v) >= 100:
		return fmt.Sprintf("%.0f", *v)
	case math.Abs(*v) >= 10:
		return fmt.Sprintf("%.1f", *v)
	}
	return fmt.Sprintf("%.2f", *v)
}

// cell is a median with its range over the rounds when they differ.
func cell(med, lo, hi *float64, missedRate bool) string {
	if med == nil {
		return "—"
	}
	f := func(v *float64) string {
		if missedRate && *v == 0 {
			return "not reached"
		}
		return fmtFig(v)
	}
	out := f(med)
	if lo != nil && hi != nil && *lo != *hi {
		out += " (" + f(lo) + "–" + f(hi) + ")"
	}
	return out
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# chatd vs Node socket.io peer — %s\n\n", r.Started.Format("2006-01-02 15:04 UTC"))
	mode := "full"
	if r.Short {
		mode = "short"
	}
	pin := "servers pinned to their own CPU, chatbench to the other (taskset)"
	if !r.Pinned {
		pin = "no CPU pinning"
	}
	fmt.Fprintf(&b, "%s run, %d CPUs, %s, %v, load average %s. %s.\n\n", mode, r.CPUs, pin, r.Finished.Sub(r.Started).Round(time.Second), r.LoadAvg, r.Config)
	fmt.Fprintf(&b, "Each figure is the median of %d interleaved rounds (chatd, peer, chatd, peer, …) with the range over the rounds in brackets; "+
		"the ratio is of the medians, with the range of the per-round ratios; targets are judged on the medians.\n\n", r.Rounds)
	b.WriteString("| scenario | metric | unit | chatd | peer | chatd/peer | target | met |\n|---|---|---|---:|---:|---:|---|---|\n")
	for _, rw := range r.Rows {
		ratio, met := "—", ""
		if rw.Ratio != nil {
			ratio = fmt.Sprintf("%.2f×", *rw.Ratio)
			if rw.RatioMin != nil && rw.RatioMax != nil && *rw.RatioMin != *rw.RatioMax {
				ratio += fmt.Sprintf(" (%.2f–%.2f)", *rw.RatioMin, *rw.RatioMax)
			}
		}
		if rw.Met != nil {
			met = "no"
			if *rw.Met {
				met = "yes"
			}
		}
		missed := strings.HasSuffix(rw.Metric, "first_missed_rate")
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", rw.Scenario, rw.Label, rw.Unit,
			cell(rw.Chatd, rw.ChatdMin, rw.ChatdMax, missed), cell(rw.Peer, rw.PeerMin, rw.PeerMax, missed), ratio, rw.Target, met)
	}
	b.WriteString("\n\"not reached\": the ramp's time budget ran out before a step missed, so the last step held is a floor of the limit.\n")
	b.WriteString(webhooksMarkdown(r.Results["webhooks"]))
	if len(r.Cluster) > 0 {
		b.WriteString(clusterMarkdown(r.Cluster))
	}
	if len(r.Charts) > 0 {
		b.WriteString("\n")
		for _, c := range r.Charts {
			fmt.Fprintf(&b, "![%s](%s)\n", strings.TrimSuffix(c, ".svg"), c)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "\n- failed: %s", e)
	}
	b.WriteString("\n")
	return b.String()
}
