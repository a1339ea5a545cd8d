package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// srcIPs spreads client connections over several loopback source addresses,
// so that ephemeral ports never run out whatever the connection count.
var srcIPs = func() []net.IP {
	ips := make([]net.IP, 8)
	for i := range ips {
		ips[i] = net.IPv4(127, 0, 0, byte(i+1))
	}
	return ips
}()

// connectMany opens n clients (client i authenticates as users[i%len(users)])
// with at most conc handshakes in flight. It stops early after maxFail
// failures and returns the clients it got (nil slots are skipped) and the
// first error.
func connectMany(ctx context.Context, r *running, users []string, from, n, conc, maxFail int, onEvent func(i int) func([]byte)) ([]*client, int, error) {
	out := make([]*client, n-from)
	var (
		wg       sync.WaitGroup
		fails    atomic.Int64
		firstErr atomic.Value
		sem      = make(chan struct{}, conc)
	)
	for i := from; i < n; i++ {
		if int(fails.Load()) >= maxFail || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			u := users[i%len(users)]
			var ev func([]byte)
			if onEvent != nil {
				ev = onEvent(i)
			}
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, err := dialClient(dctx, r.addr, srcIPs[i%len(srcIPs)], r.kind.AppID, r.kind.Tokens[u], ev)
			if err != nil {
				fails.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Errorf("client %d: %w", i, err))
				return
			}
			out[i-from] = c
		}(i)
	}
	wg.Wait()
	got := 0
	for _, c := range out {
		if c != nil {
			got++
		}
	}
	err, _ := firstErr.Load().(error)
	return out, got, err
}

func closeAll(cs []*client) {
	for _, c := range cs {
		if c != nil {
			c.close()
		}
	}
}

// latencies collects samples up to a cap, so memory stays bounded.
type latencies struct {
	mu  sync.Mutex
	v   []time.Duration
	cap int
}

func newLatencies(capacity int) *latencies { return &latencies{cap: capacity} }

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	if len(l.v) < l.cap {
		l.v = append(l.v, d)
	}
	l.mu.Unlock()
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.v = l.v[:0]
	l.mu.Unlock()
}

// quantile returns the q-quantile (0..1) of the samples, or -1 when empty.
func (l *latencies) quantile(qs ...float64) []time.Duration {
	l.mu.Lock()
	v := slices.Clone(l.v)
	l.mu.Unlock()
	slices.Sort(v)
	out := make([]time.Duration, len(qs))
	for i, q := range qs {
		if len(v) == 0 {
			out[i] = -1
			continue
		}
		out[i] = v[min(len(v)-1, int(q*float64(len(v))))]
	}
	return out
}

// stampKey marks the send time inside a message's content, so a push carries
// its own send time back: {"content":"…","bts":<unix ns>}.
var stampKey = []byte(`"bts":`)

// stampedContent is a send argument whose content carries the send time.
func stampedContent(target string, now int64) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"targetId":"`...)
	b = append(b, target...)
	b = append(b, `","messageType":1,"content":{"content":"benchmark message","bts":`...)
	b = strconv.AppendInt(b, now, 10)
	b = append(b, `}}`...)
	return b
}

// pushStamp extracts the send time from a "message" push, or 0.
func pushStamp(ev []byte) int64 {
	if !bytes.HasPrefix(ev, []byte(`["message"`)) {
		return 0
	}
	i := bytes.Index(ev, stampKey)
	if i < 0 {
		return 0
	}
	rest := ev[i+len(stampKey):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, _ := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n
}

// receiver counts and times the pushes of one measurement.
type receiver struct {
	lat       *latencies
	delivered atomic.Int64
	windowEnd atomic.Int64 // unix ns; pushes after it are not counted in the window
	inWindow  atomic.Int64
}

func (rc *receiver) onEvent(ev []byte) {
	ts := pushStamp(ev)
	if ts == 0 {
		return
	}
	now := time.Now().UnixNano()
	rc.lat.add(time.Duration(now - ts))
	rc.delivered.Add(1)
	if now <= rc.windowEnd.Load() {
		rc.inWindow.Add(1)
	}
}

// stepResult is one fixed-rate measurement.
type stepResult struct {
	Rate        float64 // offered sends per second
	Offered     int64
	Sent        int64 // emitted (not shed because too many were outstanding)
	AckErrors   int64
	Expected    int64 // deliveries expected from what was sent
	Delivered   int64 // deliveries received before the drain deadline
	PerSec      float64
	P50, P99    time.Duration
	ServerCPU   time.Duration   // every process of the server (cluster: nodes and broker)
	ProcCPU     []time.Duration // per process, in the order of running.pids
	LoadgenCPU  time.Duration
	CPUPerDeliv time.Duration
}

// ok reports whether the step kept up: p99 within limit and (almost) every
// delivery made.
func (s stepResult) ok(limit time.Duration) bool {
	return s.P99 >= 0 && s.P99 <= limit && s.Delivered >= s.Expected*99/100 && s.AckErrors == 0 && s.Sent == s.Offered
}

// runStep sends at rate msgs/s for dur, round-robin over senders, each send
// expected to reach fanout receivers, then waits up to drain for stragglers.
func runStep(ctx context.Context, r *running, rc *receiver, senders []*client, targets []string, event string, rate float64, dur, drain time.Duration, fanout int) stepResult {
	rc.lat.reset()
	rc.delivered.Store(0)
	rc.inWindow.Store(0)
	res := stepResult{Rate: rate}
	pids := r.pids()
	before := readCPUs(pids)
	lgBefore, _ := readProc(selfPID)
	start := time.Now()
	rc.windowEnd.Store(start.Add(dur).UnixNano())
	var outstanding, ackErrs atomic.Int64
	const maxOutstanding = 20000
	total := int64(rate * dur.Seconds())
	for res.Offered < total && ctx.Err() == nil {
		due := min(total, int64(rate*time.Since(start).Seconds())+1)
		for ; res.Offered < due; res.Offered++ {
			if outstanding.Load() >= maxOutstanding {
				continue // shed: the server is not keeping up
			}
			i := int(res.Offered) % len(senders)
			outstanding.Add(1)
			err := senders[i].emit(event, stampedContent(targets[i], time.Now().UnixNano()), func(ack []byte, err error) {
				outstanding.Add(-1)
				if err != nil || ackFailed(ack) {
					ackErrs.Add(1)
				}
			})
			if err != nil {
				outstanding.Add(-1)
				ackErrs.Add(1)
				continue
			}
			res.Sent++
		}
		time.Sleep(time.Millisecond)
	}
	res.Expected = res.Sent * int64(fanout)
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) && (rc.delivered.Load() < res.Expected || outstanding.Load() > 0) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	after := readCPUs(pids)
	lgAfter, _ := readProc(selfPID)
	res.AckErrors = ackErrs.Load()
	res.Delivered = rc.delivered.Load()
	res.PerSec = float64(rc.inWindow.Load()) / dur.Seconds()
	q := rc.lat.quantile(0.50, 0.99)
	res.P50, res.P99 = q[0], q[1]
	if res.Delivered < res.Expected*99/100 {
		res.P99 = -1 // lost or late deliveries: the tail is unbounded
	}
	for i := range pids {
		res.ProcCPU = append(res.ProcCPU, after[i]-before[i])
		res.ServerCPU += after[i] - before[i]
	}
	res.LoadgenCPU = lgAfter.CPU - lgBefore.CPU
	if res.Delivered > 0 {
		res.CPUPerDeliv = res.ServerCPU / time.Duration(res.Delivered)
	}
	return res
}

// rampPoint is one step of a ramp as the report keeps it (and plots it).
type rampPoint struct {
	Rate   float64 `json:"rate"`   // offered sends per second
	Load   float64 `json:"load"`   // offered deliveries per second (rate × fan-out)
	PerSec float64 `json:"perSec"` // deliveries per second received in the window
	P50ms  float64 `json:"p50ms"`  // -1: deliveries lost or late
	P99ms  float64 `json:"p99ms"`  // -1: deliveries lost or late
	CPUus  float64 `json:"cpuUs"`  // server CPU per delivery
	Held   bool    `json:"held"`   // p99 within the bound, nothing lost or shed
	Try    int     `json:"try"`    // 1 for a retried step
}

// rampResult is a whole ramp: every step, the last step held and the first
// step missed (twice).
type rampResult struct {
	Points       []rampPoint
	Best         float64         // the highest deliveries/s of a held step
	LastHeld     float64         // offered rate of the last step held; 0: none
	FirstMissed  float64         // offered rate of the step that ended the ramp; 0: the budget ran out first
	SatCPU       time.Duration   // server CPU per delivery at the last step held
	SatProc      []time.Duration // the same per process (running.pids)
	Elapsed      time.Duration
	FirstMissP99 time.Duration
}

// ramp runs the geometric steps of plan until one misses twice or the plan's
// budget is spent (rampNextAction), each step sending for dur.
func ramp(ctx context.Context, r *running, rc *receiver, senders []*client, targets []string, event string, plan rampPlan, dur time.Duration, fanout int, limit time.Duration, logf func(string, ...any)) rampResult {
	var res rampResult
	start := time.Now()
	for i, try := 0, 0; ctx.Err() == nil; {
		rate := plan.rate(i)
		s := runStep(ctx, r, rc, senders, targets, event, rate, dur, 2*time.Second, fanout)
		held := s.ok(limit)
		logf("  %s rate %.4g/s: delivered %d/%d (%.0f/s) p50 %v p99 %v, acks failed %d, server cpu %v, loadgen cpu %v, held %v",
			r.kind.Name, rate, s.Delivered, s.Expected, s.PerSec, s.P50, s.P99, s.AckErrors, s.ServerCPU, s.LoadgenCPU, held)
		res.Points = append(res.Points, rampPoint{Rate: rate, Load: rate * float64(fanout), PerSec: s.PerSec,
			P50ms: ms(s.P50), P99ms: ms(s.P99), CPUus: us(s.CPUPerDeliv), Held: held, Try: try})
		if held {
			res.LastHeld = rate
			res.SatCPU = s.CPUPerDeliv
			res.SatProc = res.SatProc[:0]
			for _, c := range s.ProcCPU {
				res.SatProc = append(res.SatProc, c/time.Duration(max(s.Delivered, 1)))
			}
			res.Best = max(res.Best, s.PerSec)
		}
		settle(ctx, rc) // late deliveries must not count in the next step
		switch rampNextAction(held, try, time.Since(start), plan.Budget) {
		case rampRetry:
			try = 1
			continue
		case rampStop:
			if !held {
				res.FirstMissed = rate
				res.FirstMissP99 = s.P99
			}
			res.Elapsed = time.Since(start)
			return res
		}
		i, try = i+1, 0
	}
	res.Elapsed = time.Since(start)
	return res
}

// withFixed puts the fixed-rate measurement, which ran just before the ramp at
// a rate below its first step, in front of the ramp's steps: on the charts it
// is the lowest load, and when the ramp's first step missed twice it is the
// last step held.
func (rr rampResult) withFixed(fixed stepResult, fanout int, limit time.Duration) rampResult {
	held := fixed.ok(limit)
	p := rampPoint{Rate: fixed.Rate, Load: fixed.Rate * float64(fanout), PerSec: fixed.PerSec,
		P50ms: ms(fixed.P50), P99ms: ms(fixed.P99), CPUus: us(fixed.CPUPerDeliv), Held: held}
	rr.Points = append([]rampPoint{p}, rr.Points...)
	if held && rr.LastHeld == 0 {
		rr.LastHeld, rr.Best, rr.SatCPU = fixed.Rate, fixed.PerSec, fixed.CPUPerDeliv
		rr.SatProc = rr.SatProc[:0]
		for _, c := range fixed.ProcCPU {
			rr.SatProc = append(rr.SatProc, c/time.Duration(max(fixed.Delivered, 1)))
		}
	}
	return rr
}

// figures puts a ramp's outcome into a scenario's figures under prefix.
func (rr rampResult) figures(f figures, prefix string) {
	f[prefix+"last_held_rate"] = rr.LastHeld
	f[prefix+"first_missed_rate"] = rr.FirstMissed
	if rr.SatCPU > 0 {
		f[prefix+"sat_cpu_us"] = us(rr.SatCPU)
	}
}

// settle waits until no push has arrived for half a second (at most 10s),
// so that a step's stragglers do not land in the next step's counts.
func settle(ctx context.Context, rc *receiver) {
	deadline := time.Now().Add(10 * time.Second)
	last := rc.delivered.Load()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		n := rc.delivered.Load()
		if n == last {
			return
		}
		last = n
	}
}
