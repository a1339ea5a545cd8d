package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// xy is one point of a chart series; Y < 0 is a step whose deliveries were
// lost or late (no finite latency), drawn as a cross on the top edge.
type xy struct{ X, Y float64 }

type series struct {
	Name   string
	Color  string
	Dashed bool
	Points []xy
}

// chart is a latency-against-load chart with logarithmic axes.
type chart struct {
	Title, XLabel, YLabel string
	HLine                 float64 // a bound drawn across (the p99 limit); 0: none
	Series                []series
}

const (
	chartW, chartH                         = 720, 420
	padLeft, padRight, padTop, padBottom   = 70, 150, 40, 50
	plotW, plotH                           = chartW - padLeft - padRight, chartH - padTop - padBottom
	minLogSpan                             = 1.0 // decades
	lostMarkerHalf                         = 5
	legendLine, legendGap, legendTextShift = 24, 18, 30
)

// decades returns the powers of ten that bound [lo, hi] (lo, hi > 0).
func decades(lo, hi float64) (float64, float64) {
	a, b := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if b-a < minLogSpan {
		b = a + minLogSpan
	}
	return a, b
}

// svg renders the chart as a standalone SVG document.
func (c chart) svg() []byte {
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, p := range s.Points {
			if p.X > 0 {
				xlo, xhi = min(xlo, p.X), max(xhi, p.X)
			}
			if p.Y > 0 {
				ylo, yhi = min(ylo, p.Y), max(yhi, p.Y)
			}
		}
	}
	if c.HLine > 0 {
		ylo, yhi = min(ylo, c.HLine), max(yhi, c.HLine)
	}
	if math.IsInf(xlo, 0) {
		xlo, xhi = 1, 10
	}
	if math.IsInf(ylo, 0) {
		ylo, yhi = 1, 10
	}
	xa, xb := decades(xlo, xhi)
	ya, yb := decades(ylo, yhi)
	px := func(x float64) float64 { return padLeft + (math.Log10(x)-xa)/(xb-xa)*plotW }
	py := func(y float64) float64 { return padTop + plotH - (math.Log10(y)-ya)/(yb-ya)*plotH }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", padLeft, html.EscapeString(c.Title))
	// Grid and ticks, one per decade (with 2 and 5 as faint lines).
	for d := xa; d <= xb; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if math.Log10(v) > xb+1e-9 {
				break
			}
			x := px(v)
			op := "0.15"
			if m == 1 {
				op = "0.35"
				fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", f(x), padTop+plotH+16, tickLabel(v))
			}
			fmt.Fprintf(&b, `<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="black" stroke-opacity="%s"/>`+"\n", f(x), padTop, f(x), padTop+plotH, op)
		}
	}
	for d := ya; d <= yb; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if math.Log10(v) > yb+1e-9 {
				break
			}
			y := py(v)
			op := "0.15"
			if m == 1 {
				op = "0.35"
				fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", padLeft-6, f(y), tickLabel(v))
			}
			fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="black" stroke-opacity="%s"/>`+"\n", padLeft, f(y), padLeft+plotW, f(y), op)
		}
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", padLeft, padTop, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padLeft+plotW/2, chartH-10, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>`+"\n", padTop+plotH/2, padTop+plotH/2, html.EscapeString(c.YLabel))
	if c.HLine > 0 {
		y := py(c.HLine)
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="red" stroke-dasharray="2 3"/>`+"\n", padLeft, f(y), padLeft+plotW, f(y))
		fmt.Fprintf(&b, `<text x="%d" y="%s" fill="red" dominant-baseline="middle">p99 bound %s ms</text>`+"\n", padLeft+plotW+6, f(y), tickLabel(c.HLine))
	}
	for i, s := range c.Series {
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		var pts []string
		for _, p := range s.Points {
			if p.X <= 0 {
				continue
			}
			if p.Y <= 0 { // lost or late deliveries: a cross on the top edge
				x, y := px(p.X), float64(padTop)
				fmt.Fprintf(&b, `<path d="M%s %sL%s %sM%s %sL%s %s" stroke="%s" stroke-width="2"/>`+"\n",
					f(x-lostMarkerHalf), f(y-lostMarkerHalf), f(x+lostMarkerHalf), f(y+lostMarkerHalf),
					f(x-lostMarkerHalf), f(y+lostMarkerHalf), f(x+lostMarkerHalf), f(y-lostMarkerHalf), s.Color)
				continue
			}
			pts = append(pts, f(px(p.X))+","+f(py(p.Y)))
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", f(px(p.X)), f(py(p.Y)), s.Color)
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", joinSpace(pts), s.Color, dash)
		}
		ly := padTop + 10 + i*legendGap
		lx := padLeft + plotW + 10
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+legendLine, ly, s.Color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", lx+legendTextShift, ly, html.EscapeString(s.Name))
	}
	ly := padTop + 10 + len(c.Series)*legendGap
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" dominant-baseline="middle">× lost or late</text>`+"\n", padLeft+plotW+10, ly)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func joinSpace(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

// tickLabel writes 0.1, 1, 10, 1k, 10k, 1M.
func tickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// rampSeries turns a server's ramps (one per round) into p50 and p99 series:
// for each offered load, the median over the rounds that reached it of the
// step's last try.
func rampSeries(rounds [][]rampPoint) (p50, p99 []xy) {
	byLoad := map[float64][2][]float64{}
	for _, pts := range rounds {
		last := map[float64]rampPoint{}
		for _, p := range pts {
			last[p.Load] = p // a retry replaces the first try
		}
		for l, p := range last {
			v := byLoad[l]
			v[0] = append(v[0], p.P50ms)
			v[1] = append(v[1], p.P99ms)
			byLoad[l] = v
		}
	}
	loads := make([]float64, 0, len(byLoad))
	for l := range byLoad {
		loads = append(loads, l)
	}
	slices.Sort(loads)
	for _, l := range loads {
		v := byLoad[l]
		p50 = append(p50, xy{l, medianSpread(v[0], true).Median})
		p99 = append(p99, xy{l, medianSpread(v[1], true).Median})
	}
	return p50, p99
}

var chartColors = map[string]string{"chatd": "#1f77b4", "peer": "#d62728", "single": "#2ca02c", "redis": "#9467bd", "nats": "#ff7f0e"}

var chartTitles = map[string]string{
	"p2p":     "One-to-one: latency against offered load",
	"fanout":  "Fan-out to 999 members: latency against offered load",
	"cluster": "Cluster, cross-node one-to-one: latency against offered load",
}

// writeCharts writes one SVG per ramp (ramp-<name>.svg) into dir and returns
// the file names.
func writeCharts(dir string, ramps map[string]map[string][][]rampPoint) ([]string, error) {
	var names []string
	for _, name := range []string{"p2p", "fanout", "cluster"} {
		servers := ramps[name]
		if len(servers) == 0 {
			continue
		}
		xl := "offered messages per second"
		if name == "fanout" {
			xl = "offered deliveries per second (messages × 999)"
		}
		c := chart{Title: chartTitles[name], XLabel: xl, YLabel: "send → receive latency (ms)", HLine: 100}
		var keys []string
		for k := range servers {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return serverOrder(a) - serverOrder(b) })
		for _, k := range keys {
			p50, p99 := rampSeries(servers[k])
			color := chartColors[k]
			if color == "" {
				color = "black"
			}
			c.Series = append(c.Series, series{Name: k + " p99", Color: color, Points: p99}, series{Name: k + " p50", Color: color, Dashed: true, Points: p50})
		}
		file := "ramp-" + name + ".svg"
		if err := os.WriteFile(filepath.Join(dir, file), c.svg(), 0o644); err != nil {
			return names, err
		}
		names = append(names, file)
	}
	return names, nil
}

func serverOrder(s string) int {
	for i, k := range []string{"chatd", "peer", "single", "redis", "nats"} {
		if k == s {
			return i
		}
	}
	return 99
}
