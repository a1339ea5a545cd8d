package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/signature"
	"github.com/chatd/chatd/internal/store/postgres"
	"github.com/chatd/chatd/internal/webhook"
)

// The webhooks scenario (docs/benchmarks.md, Webhooks; docs/webhooks.md):
// chatd alone, with one fast receiver started by chatbench on loopback
// that verifies every Chatd-Signature, counts the message.sent events by id
// and answers at once. In interleaved rounds (the order swapped every
// round) it measures
//
//   - durable one-to-one send throughput, closed loop (each sender waits
//     for its ack, which comes after the commit), with no endpoint and with
//     an endpoint subscribed to message.sent; "sustained" is the sends of
//     the step over the time until the last of their events was delivered,
//     so a worker that falls behind does not flatter it. Every event must
//     arrive (counted by id: no loss);
//   - one sender's send latency, one send at a time, without a before-send
//     hook and with one whose own latency (from the request's headers read
//     to its reply written) is measured in the receiver.
//
// The goals (issue 15): throughput with webhooks on ≥ 80 % of off,
// and the hook adding at most the receiver's own p50 + 1 ms at p50.

func init() {
	metricDefs = append(metricDefs,
		metricDef{"webhooks", "off_msgs_per_s", "webhooks, SQLite: durable sends/s, no endpoint (closed loop)", "msgs/s", false, 0, 0},
		metricDef{"webhooks", "on_msgs_per_s", "webhooks, SQLite: durable sends/s, every message.sent delivered", "msgs/s", false, 0, 0},
		metricDef{"webhooks", "on_sustained_per_s", "webhooks, SQLite: sends/s until the last event was delivered", "msgs/s", false, 0, 0},
		metricDef{"webhooks", "on_over_off", "webhooks, SQLite: sustained with webhooks ÷ without (issue 15: ≥ 0.8)", "×", false, 0, 0.8},
		metricDef{"webhooks", "hook_added_p50_ms", "before-send hook, SQLite: p50 send latency added by the hook", "ms", true, 0, 0},
		metricDef{"webhooks", "rx_p50_ms", "before-send hook: the hook receiver's own p50", "ms", true, 0, 0},
		metricDef{"webhooks", "hook_added_over_budget", "before-send hook, SQLite: added p50 ÷ (receiver p50 + 1 ms) (issue 15: ≤ 1)", "×", true, 0, 1},
		metricDef{"webhooks", "pg_off_msgs_per_s", "webhooks, PostgreSQL: durable sends/s, no endpoint", "msgs/s", false, 0, 0},
		metricDef{"webhooks", "pg_on_sustained_per_s", "webhooks, PostgreSQL: sends/s until the last event was delivered", "msgs/s", false, 0, 0},
		metricDef{"webhooks", "pg_on_over_off", "webhooks, PostgreSQL: sustained with webhooks ÷ without (issue 15: ≥ 0.8)", "×", false, 0, 0.8},
		metricDef{"webhooks", "pg_hook_added_p50_ms", "before-send hook, PostgreSQL: p50 send latency added by the hook", "ms", true, 0, 0},
		metricDef{"webhooks", "pg_hook_added_over_budget", "before-send hook, PostgreSQL: added p50 ÷ (receiver p50 + 1 ms) (issue 15: ≤ 1)", "×", true, 0, 1},
	)
}

// webhookSecret is the endpoints' secret (set by chatbench, so the receiver
// can verify what it gets).
const webhookSecret = "whsec_chatbench_0123456789abcdef"

// webhookDrainWait bounds the wait for a step's events to be delivered,
// and webhookStall the wait for the next when none arrives.
const (
	webhookDrainWait = 2 * time.Minute
	webhookStall     = 30 * time.Second
)

// webhookHookChunks is how many alternated chunks each hook step is split in.
const webhookHookChunks = 4

// webhookRx is the fast local receiver: /events counts message.sent by
// event id, /hook allows every message and times itself.
type webhookRx struct {
	srv *http.Server
	url string

	mu     sync.Mutex
	ids    map[string]struct{}
	dups   int
	bad    int       // requests whose signature did not verify
	last   time.Time // when the last new event arrived
	rxLat  []time.Duration
	others int // events of other types
}

func startWebhookRx() (*webhookRx, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rx := &webhookRx{ids: map[string]struct{}{}, url: "http://" + ln.Addr().String()}
	rx.srv = &http.Server{Handler: rx, ReadHeaderTimeout: 10 * time.Second}
	go rx.srv.Serve(ln)
	return rx, nil
}

func (rx *webhookRx) close() { rx.srv.Close() }

var hookAllow = []byte(`{"action":"allow"}`)

func (rx *webhookRx) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if webhook.Verify(webhookSecret, r.Header.Get("Chatd-Signature"), body, time.Now(), 5*time.Minute) != nil {
		rx.mu.Lock()
		rx.bad++
		rx.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.URL.Path == "/hook" {
		w.Header().Set("Content-Type", "application/json")
		w.Write(hookAllow)
		d := time.Since(start)
		rx.mu.Lock()
		rx.rxLat = append(rx.rxLat, d)
		rx.mu.Unlock()
		return
	}
	var ev struct{ ID, Type string }
	json.Unmarshal(body, &ev)
	w.WriteHeader(http.StatusNoContent)
	now := time.Now()
	rx.mu.Lock()
	defer rx.mu.Unlock()
	if ev.Type != chat.EventMessageSent {
		rx.others++
		return
	}
	if _, ok := rx.ids[ev.ID]; ok {
		rx.dups++
		return
	}
	rx.ids[ev.ID] = struct{}{}
	rx.last = now
}

// events is the number of distinct message.sent events received and when
// the last arrived.
func (rx *webhookRx) events() (int, time.Time) {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return len(rx.ids), rx.last
}

// takeRxLat returns the hook latencies recorded since the last call.
func (rx *webhookRx) takeRxLat() []time.Duration {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	out := rx.rxLat
	rx.rxLat = nil
	return out
}

// appAPI makes signed calls to chatd's app routes (README.md, the signature).
type appAPI struct {
	base, appID, secret string
	hc                  *http.Client
}

func (a appAPI) call(ctx context.Context, path string, fields map[string]any) error {
	var nonce [8]byte
	rand.Read(nonce[:])
	m := map[string]any{"app_id": a.appID, "time_stamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "nonce_str": hex.EncodeToString(nonce[:])}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	p, err := params.FromJSON(b)
	if err != nil {
		return err
	}
	m["sign"] = signature.Sign(p, a.secret)
	b, _ = json.Marshal(m)
	req, err := http.NewRequestWithContext(ctx, "POST", a.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	rb, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(rb, &r); err != nil || r.Status != 1 {
		return fmt.Errorf("%s: HTTP %d %.300s", path, resp.StatusCode, rb)
	}
	return nil
}

func (a appAPI) setEndpoint(ctx context.Context, url string, events ...string) error {
	return a.call(ctx, "/app/webhooks/set", map[string]any{"url": url, "events": events, "secret": webhookSecret})
}

// deleteEndpoint deletes the endpoint, trying again after a failure (a
// backend would): on PostgreSQL a delete racing the delivery worker's
// transaction can fail (docs/benchmarks.md, Webhooks). Failures are counted.
func (a appAPI) deleteEndpoint(ctx context.Context, url string, failures *int, logf func(string, ...any)) error {
	var err error
	for try := range 5 {
		if err = a.call(ctx, "/app/webhooks/delete", map[string]any{"url": url}); err == nil {
			return nil
		}
		*failures++
		logf("  delete the endpoint (try %d): %v", try+1, err)
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// webhookRound is what one round measured.
type webhookRound struct {
	Off, On, Sustained float64 // sends/s
	Sent, Delivered    int     // the on step's sends and their events received
	NoHook, Hook, Rx   []time.Duration
}

func p50(ds []time.Duration) time.Duration { return quantileOf(ds, 0.5) }

func quantileOf(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// figures turns a round into the scenario's figures.
func (w webhookRound) figures() figures {
	f := figures{"off_msgs_per_s": w.Off, "on_msgs_per_s": w.On, "on_sustained_per_s": w.Sustained,
		"lost": float64(w.Sent - w.Delivered)}
	if w.Off > 0 {
		f["on_over_off"] = w.Sustained / w.Off
		f["on_sends_over_off"] = w.On / w.Off
	}
	if len(w.NoHook) > 0 && len(w.Hook) > 0 && len(w.Rx) > 0 {
		added := ms(p50(w.Hook)) - ms(p50(w.NoHook))
		rx := ms(p50(w.Rx))
		f["nohook_p50_ms"], f["nohook_p99_ms"] = ms(p50(w.NoHook)), ms(quantileOf(w.NoHook, 0.99))
		f["hook_p50_ms"], f["hook_p99_ms"] = ms(p50(w.Hook)), ms(quantileOf(w.Hook, 0.99))
		f["rx_p50_ms"], f["rx_p99_ms"] = rx, ms(quantileOf(w.Rx, 0.99))
		f["hook_added_p50_ms"] = max(0, added) // a negative difference is noise: nothing added
		f["hook_added_over_budget"] = max(0, added) / (rx + 1)
	}
	return f
}

// webhooksBench runs the scenario's rounds against a started chatd whose
// app secret is known (its kind's Secret), and returns one figures per
// round. It fails when an event was lost or a signature did not verify.
func webhooksBench(ctx context.Context, e env) ([]figures, error) {
	k := e.r.kind
	if k.Secret == "" {
		return nil, fmt.Errorf("no app secret for the signed API")
	}
	rx, err := startWebhookRx()
	if err != nil {
		return nil, err
	}
	defer rx.close()
	api := appAPI{base: "http://" + e.r.addr, appID: k.AppID, secret: k.Secret, hc: &http.Client{Timeout: 30 * time.Second}}
	pairs := max(1, min(e.cfg.WebhookPairs, len(e.fx.Users)/2))
	conns, got, err := connectMany(ctx, e.r, e.fx.Users, 0, 2*pairs, 64, 1, nil)
	defer closeAll(conns)
	if got < 2*pairs {
		return nil, fmt.Errorf("connect: %d of %d: %w", got, 2*pairs, err)
	}
	args := make([][]byte, pairs)
	for i := range pairs {
		args[i] = []byte(`{"targetId":"` + e.fx.Users[2*i+1] + `","messageType":1,"content":{"content":"webhooks bench message"}}`)
	}
	// sendFor runs every sender closed loop for d and returns the acks,
	// when it started, and the first failure.
	sendFor := func(d time.Duration) (int, time.Time, error) {
		var n atomic.Int64
		var firstErr atomic.Value
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		var wg sync.WaitGroup
		for i := range pairs {
			wg.Go(func() {
				for dctx.Err() == nil {
					if _, err := conns[2*i].call(ctx, "send-private-message", args[i]); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					n.Add(1)
				}
			})
		}
		wg.Wait()
		err, _ := firstErr.Load().(error)
		return int(n.Load()), start, err
	}
	// sendOneByOne times n sends of the first sender, one at a time.
	sendOneByOne := func(n int) ([]time.Duration, error) {
		out := make([]time.Duration, 0, n)
		for range n {
			t := time.Now()
			if _, err := conns[0].call(ctx, "send-private-message", args[0]); err != nil {
				return nil, err
			}
			out = append(out, time.Since(t))
		}
		return out, nil
	}
	eventsURL, hookURL := rx.url+"/events", rx.url+"/hook"

	if _, _, err := sendFor(500 * time.Millisecond); err != nil { // warm-up
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	var out []figures
	var sentAll, deleteFailures int
	for round := range max(1, e.cfg.Rounds) {
		var w webhookRound
		off := func() error {
			n, start, err := sendFor(e.cfg.WebhookDur)
			w.Off = float64(n) / time.Since(start).Seconds()
			return err
		}
		on := func() error {
			if err := api.setEndpoint(ctx, eventsURL, chat.EventMessageSent); err != nil {
				return err
			}
			before, _ := rx.events()
			n, start, err := sendFor(e.cfg.WebhookDur)
			w.On = float64(n) / time.Since(start).Seconds()
			if err != nil {
				return err
			}
			// Until every event arrived, or none for webhookStall (a
			// failed attempt is retried 10 s later), or webhookDrainWait.
			var have, seen int
			var last time.Time
			progress := time.Now()
			for deadline := progress.Add(webhookDrainWait); ctx.Err() == nil; time.Sleep(5 * time.Millisecond) {
				if have, last = rx.events(); have != seen {
					seen, progress = have, time.Now()
				}
				if have-before >= n || time.Now().After(deadline) || time.Since(progress) > webhookStall {
					break
				}
			}
			w.Sent, w.Delivered = n, have-before
			sentAll += n
			w.Sustained = float64(n) / last.Sub(start).Seconds()
			// Deleting an endpoint fails its pending deliveries: only
			// once everything arrived.
			return api.deleteEndpoint(ctx, eventsURL, &deleteFailures, e.logf)
		}
		// The hook's steps are split in webhookHookChunks chunks each,
		// alternated, so a slow spell of the shared machine (or of the
		// database) falls on both.
		chunk := max(1, e.cfg.WebhookHookSends/webhookHookChunks)
		noHook := func() error {
			d, err := sendOneByOne(chunk)
			w.NoHook = append(w.NoHook, d...)
			return err
		}
		hook := func() error {
			if err := api.setEndpoint(ctx, hookURL, chat.EventBeforeSend); err != nil {
				return err
			}
			rx.takeRxLat()
			d, err := sendOneByOne(chunk)
			w.Hook = append(w.Hook, d...)
			if err != nil {
				return err
			}
			w.Rx = append(w.Rx, rx.takeRxLat()...)
			return api.deleteEndpoint(ctx, hookURL, &deleteFailures, e.logf)
		}
		steps := []func() error{off, on}
		if round%2 == 1 {
			steps = []func() error{on, off}
		}
		for c := range webhookHookChunks {
			if (round+c)%2 == 0 {
				steps = append(steps, noHook, hook)
			} else {
				steps = append(steps, hook, noHook)
			}
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return out, fmt.Errorf("round %d: %w", round+1, err)
			}
		}
		f := w.figures()
		f["endpoint_delete_failures"] = float64(deleteFailures)
		e.logf("  %s round %d: sends/s off %.0f, on %.0f (sustained %.0f: %.2f× off), events %d of %d; send p50 no hook %.2f ms, hook %.2f ms (p99 %.2f / %.2f), receiver p50 %.3f ms: added %.2f ms (budget %.2f ms)",
			k.Name, round+1, w.Off, w.On, w.Sustained, f["on_over_off"], w.Delivered, w.Sent,
			f["nohook_p50_ms"], f["hook_p50_ms"], f["nohook_p99_ms"], f["hook_p99_ms"], f["rx_p50_ms"], f["hook_added_p50_ms"], f["rx_p50_ms"]+1)
		out = append(out, f)
	}
	if deleteFailures > 0 {
		e.logf("  %s: %d failed endpoint deletes; its log: %.2000s", k.Name, deleteFailures, e.r.stderr.String())
	}
	rx.mu.Lock()
	total, dups, bad, others := len(rx.ids), rx.dups, rx.bad, rx.others
	rx.mu.Unlock()
	if total != sentAll || bad > 0 || others > 0 {
		return out, fmt.Errorf("%d message.sent events received for %d sends (%d duplicates, %d bad signatures, %d events of other types)", total, sentAll, dups, bad, others)
	}
	e.logf("  %s: every one of %d message.sent events received, signature verified (%d duplicates)", k.Name, total, dups)
	return out, nil
}

// webhooksPostgres runs the scenario against one chatd node on a fresh
// PostgreSQL schema (the memory broker), seeded through chatd's own store
// like the cluster scenario, and returns its figures with keys prefixed
// "pg_".
func webhooksPostgres(ctx context.Context, cfg runConfig, dir string, serverCPU int, logf func(string, ...any)) ([]figures, error) {
	b := make([]byte, 6)
	rand.Read(b)
	schema := "chatbench_webhooks_" + hex.EncodeToString(b)
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
	app, err := svc.CreateApp(ctx, "bench", "chatbench webhooks fixture")
	if err != nil {
		st.Close()
		return nil, err
	}
	k := &serverKind{Name: "chatd-postgres", AppID: app.ID, Secret: app.Secret, Tokens: map[string]string{}, dir: filepath.Join(dir, "webhooks-pg")}
	fx := &fixture{}
	for i := range 2 * cfg.WebhookPairs {
		u := userID(i)
		tok, err := svc.GetToken(ctx, app, u, "Name "+u, "")
		if err != nil {
			st.Close()
			return nil, err
		}
		k.Tokens[u] = tok
		fx.Users = append(fx.Users, u)
	}
	st.Close()
	k.start = func(ctx context.Context, addr string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, cfg.ChatdBin)
		cmd.Env = append(os.Environ(), chatdBenchEnv(addr, pgURL, filepath.Join(k.dir, "files"))...)
		return cmd, nil
	}
	r, err := startServer(ctx, k, serverCPU)
	if err != nil {
		return nil, err
	}
	defer r.stop()
	rounds, err := webhooksBench(ctx, env{cfg: cfg, fx: fx, r: r, logf: logf})
	for i, f := range rounds {
		pf := figures{}
		for key, v := range f {
			pf["pg_"+key] = v
		}
		rounds[i] = pf
	}
	if err != nil {
		err = fmt.Errorf("%w (stderr: %.500s)", err, r.stderr.String())
	}
	return rounds, err
}

// chatdBenchEnv is the environment of a chatd started by chatbench: no
// abuse limits (every client is on loopback), and webhooks allowed to the
// loopback receiver.
func chatdBenchEnv(addr, storeURL, blobs string) []string {
	return []string{"CHATD_ADDR=" + addr, "CHATD_STORE=" + storeURL, "CHATD_BLOBS=file:" + blobs,
		"CHATD_LOG_LEVEL=warn", "CHATD_USER_SEND_RATE=0", "CHATD_APP_SEND_RATE=0",
		"CHATD_HANDSHAKE_RATE_IP=0", "CHATD_MAX_USER_SOCKETS=0", "CHATD_USER_EVENT_RATE=0", "CHATD_MAX_CONNS_PER_IP=0", "CHATD_USER_ANSWER_RATE=0",
		"CHATD_WEBHOOK_ALLOW_PRIVATE=true"}
}

// webhooksMarkdown is the webhooks section of latest.md: the two
// goals judged on the medians of the rounds, per store.
func webhooksMarkdown(res map[string][]figures) string {
	rounds := res["chatd"]
	if len(rounds) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Webhooks (issue 15): chatd alone, one fast local receiver\n\n")
	med := func(key string, lower bool) (float64, bool) {
		var v []float64
		for _, f := range rounds {
			if x, ok := f[key]; ok {
				v = append(v, x)
			}
		}
		if len(v) == 0 {
			return 0, false
		}
		return medianSpread(v, lower).Median, true
	}
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	for _, s := range []struct{ name, p string }{{"SQLite", ""}, {"PostgreSQL", "pg_"}} {
		off, ok1 := med(s.p+"off_msgs_per_s", false)
		sus, ok2 := med(s.p+"on_sustained_per_s", false)
		ratio, ok3 := med(s.p+"on_over_off", false)
		if ok1 && ok2 && ok3 {
			on, _ := med(s.p+"on_msgs_per_s", false)
			fmt.Fprintf(&b, "- %s, send throughput with webhooks on ≥ 80 %% of off: **%s** — %.2f× (%.0f sends/s sustained until every event was delivered, %.0f while sending, against %.0f without; median of %d rounds)\n",
				s.name, verdict(ratio >= 0.8), ratio, sus, on, off, len(rounds))
		}
		added, ok1 := med(s.p+"hook_added_p50_ms", true)
		rx, ok2 := med(s.p+"rx_p50_ms", true)
		over, ok3 := med(s.p+"hook_added_over_budget", true)
		if ok1 && ok2 && ok3 {
			nh, _ := med(s.p+"nohook_p50_ms", true)
			h, _ := med(s.p+"hook_p50_ms", true)
			nh99, _ := med(s.p+"nohook_p99_ms", true)
			h99, _ := med(s.p+"hook_p99_ms", true)
			fmt.Fprintf(&b, "- %s, before-send hook adds ≤ the receiver's p50 + 1 ms at p50: **%s** — +%.3f ms against a budget of %.3f ms (%.2f×); send p50 %.2f → %.2f ms, p99 %.2f → %.2f ms; the receiver's own p50 %.3f ms\n",
				s.name, verdict(over <= 1), added, rx+1, over, nh, h, nh99, h99, rx)
		}
	}
	return b.String()
}
