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
}

var metricDefs = []metricDef{
	{"idle", "rss_per_conn_kib", "RSS per idle connection (10,000 held)", "KiB", true, 0.4},
	{"idle", "max_conns", "most idle connections held (fd limit 20,000)", "conns", false, 0},
	{"idle", "rss_per_conn_at_max_kib", "RSS per idle connection at the most held", "KiB", true, 0},
	{"p2p", "fixed_msgs_per_s", "one-to-one: delivered msgs/s at the fixed rate", "msgs/s", false, 0},
	{"p2p", "fixed_p50_ms", "one-to-one: p50 send→receive at the fixed rate", "ms", true, 0},
	{"p2p", "fixed_p99_ms", "one-to-one: p99 send→receive at equal load", "ms", true, 0.33},
	{"p2p", "cpu_us_per_msg", "one-to-one: server CPU per message", "µs", true, 0},
	{"p2p", "max_msgs_per_s_p99_100ms", "one-to-one: durable msgs/s with p99 ≤ 100 ms", "msgs/s", false, 3},
	{"p2p", "wal_mib_after_ramp", "one-to-one: SQLite WAL file after the ramp", "MiB", true, 0},
	{"fanout", "fixed_deliveries_per_s", "fan-out: deliveries/s at the fixed rate", "deliv/s", false, 0},
	{"fanout", "fixed_p99_ms", "fan-out: p99 send→receive at the fixed rate", "ms", true, 0},
	{"fanout", "cpu_us_per_delivery", "fan-out: server CPU per delivery", "µs", true, 0.25},
	{"fanout", "max_deliveries_per_s_p99_100ms", "fan-out: deliveries/s with p99 ≤ 100 ms", "deliv/s", false, 3},
	{"history", "queries_per_s", "history: pages of 50 per second", "q/s", false, 0},
	{"history", "p99_ms", "history: p99 page latency", "ms", true, 0},
	{"history", "cpu_us_per_query", "history: server CPU per page", "µs", true, 0},
	{"storm", "seconds", "reconnect storm: all back and synced", "s", true, 0},
	{"storm", "cpu_s", "reconnect storm: server CPU", "s", true, 0},
	{"store", "sqlite_msgs_per_s_c1", "store alone, SQLite: durable sends/s, 1 sender", "msgs/s", false, 0},
	{"store", "sqlite_msgs_per_s_c64", "store alone, SQLite: durable sends/s, 64 senders", "msgs/s", false, 0},
	{"store", "postgres_msgs_per_s_c64", "store alone, PostgreSQL (chatd only): sends/s, 64 senders", "msgs/s", false, 0},
}

// row is one compared figure.
type row struct {
	Scenario string   `json:"scenario"`
	Metric   string   `json:"metric"`
	Label    string   `json:"label"`
	Unit     string   `json:"unit"`
	Chatd    *float64 `json:"chatd"`
	Peer     *float64 `json:"peer"`
	Ratio    *float64 `json:"ratio,omitempty"` // chatd / peer
	Target   string   `json:"target,omitempty"`
	Met      *bool    `json:"met,omitempty"`
}

type report struct {
	Started  time.Time                     `json:"started"`
	Finished time.Time                     `json:"finished"`
	Short    bool                          `json:"short"`
	Pinned   bool                          `json:"pinned"`
	CPUs     int                           `json:"cpus"`
	Config   string                        `json:"config"`
	Rows     []row                         `json:"rows"`
	Results  map[string]map[string]figures `json:"raw"`
	Errors   []string                      `json:"errors,omitempty"`
}

func (r *report) build(cfg runConfig) {
	for _, d := range metricDefs {
		res, ok := r.Results[d.Scenario]
		if !ok {
			continue
		}
		rw := row{Scenario: d.Scenario, Metric: d.Key, Label: d.Label, Unit: d.Unit}
		get := func(server string) *float64 {
			if v, ok := res[server][d.Key]; ok {
				return &v
			}
			return nil
		}
		rw.Chatd, rw.Peer = get("chatd"), get("peer")
		if rw.Chatd == nil && rw.Peer == nil {
			continue
		}
		if d.Scenario == "store" && d.Key == "sqlite_msgs_per_s_c64" {
			rw.Label = fmt.Sprintf("store alone, SQLite: durable sends/s, %d senders", cfg.StoreConc)
		}
		// A negative figure is a failed run (lost deliveries, failed reconnects).
		if rw.Chatd != nil && rw.Peer != nil && *rw.Chatd >= 0 && *rw.Peer > 0 {
			v := *rw.Chatd / *rw.Peer
			rw.Ratio = &v
		}
		if d.Target > 0 {
			op := "≥"
			if d.Lower {
				op = "≤"
			}
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
	fmt.Fprintf(&b, "%s run, %d CPUs, %s, %v. %s.\n\n", mode, r.CPUs, pin, r.Finished.Sub(r.Started).Round(time.Second), r.Config)
	b.WriteString("| scenario | metric | unit | chatd | peer | chatd/peer | target | met |\n|---|---|---|---:|---:|---:|---|---|\n")
	for _, rw := range r.Rows {
		ratio, met := "—", ""
		if rw.Ratio != nil {
			ratio = fmt.Sprintf("%.2f×", *rw.Ratio)
		}
		if rw.Met != nil {
			met = "no"
			if *rw.Met {
				met = "yes"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", rw.Scenario, rw.Label, rw.Unit, fmtFig(rw.Chatd), fmtFig(rw.Peer), ratio, rw.Target, met)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "\n- failed: %s", e)
	}
	b.WriteString("\n")
	return b.String()
}
