// Package webhook delivers an app's webhook events (docs/webhooks.md): a
// worker per node claims due rows of the store's outbox, signs and POSTs
// them, and records the outcome; and it calls the before-send hook for
// chat. Everything it dials passes an SSRF guard checked at dial time, so a
// name that resolves to a private address later is refused too.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/store"
)

// Headers of every request chatd sends to an endpoint.
const (
	HeaderSignature = "Chatd-Signature"
	HeaderEventID   = "Chatd-Event-Id"
	HeaderDelivery  = "Chatd-Delivery-Id"
)

// Defaults of Options.
const (
	DefaultRetryBase   = 10 * time.Second
	DefaultRetryFor    = 24 * time.Hour
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 4
	DefaultPoll        = time.Second
	maxRetryDelay      = time.Hour
	claimBatch         = 64
	claimGap           = 5 * time.Millisecond
	maxReplyBytes      = 1 << 20
)

// Sign returns the Chatd-Signature header value of body sent at t:
// t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a Chatd-Signature header against body, refusing
// signatures older or newer than tolerance (0: any age). It is what a
// receiver in Go does (docs/webhooks.md).
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("webhook: malformed signature header")
	}
	if tolerance > 0 && math.Abs(float64(now.Unix()-sec)) > tolerance.Seconds() {
		return errors.New("webhook: signature timestamp outside the tolerance")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("webhook: signature mismatch")
}

// Backoff is the delay before attempt n+1 after n failed attempts: base
// doubled at each attempt, capped at an hour, with ±20% jitter so that
// deliveries failing together do not retry together.
func Backoff(n int, base time.Duration, rnd func() float64) time.Duration {
	if n < 1 {
		n = 1
	}
	d := maxRetryDelay
	if n <= 30 {
		d = min(base<<(n-1), maxRetryDelay)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rnd()))
}

// Allowed reports whether chatd may connect to ip: never to an unspecified,
// multicast or broadcast address; to loopback, private (RFC 1918, ULA,
// CGNAT) and link-local ones only when allowPrivate.
func Allowed(ip netip.Addr, allowPrivate bool) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	if allowPrivate {
		return true
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // CGNAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 of any IPv4 address
}

// CheckURL returns chat's endpoint URL check: http or https, and no
// literal address (or localhost) that Allowed refuses. Names are checked
// again each time they are dialled.
func CheckURL(allowPrivate bool) func(string) error {
	return func(raw string) error {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return errors.New("must be an http or https URL")
		}
		host := u.Hostname()
		if ip, err := netip.ParseAddr(host); err == nil {
			if !Allowed(ip, allowPrivate) {
				return errors.New("refused address (loopback, private and link-local addresses need CHATD_WEBHOOK_ALLOW_PRIVATE)")
			}
		} else if !allowPrivate && (strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost")) {
			return errors.New("refused address (localhost needs CHATD_WEBHOOK_ALLOW_PRIVATE)")
		}
		return nil
	}
}

// errRefused is the guard's refusal at dial time.
var errRefused = errors.New("webhook: refused address (CHATD_WEBHOOK_ALLOW_PRIVATE)")

// guardedClient returns an HTTP client whose every connection is checked by
// Allowed on the address actually dialled (after DNS resolution), that uses
// no proxy and follows no redirect.
func guardedClient(allowPrivate bool, perHost int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !Allowed(ap.Addr(), allowPrivate) {
			return errRefused
		}
		return nil
	}}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: perHost,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 5 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Envelope is the JSON body of every request.
type Envelope struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	AppID     string          `json:"appId"`
	CreatedAt int64           `json:"createdAt"` // Unix ms
	Data      json.RawMessage `json:"data"`
}

// envelopeBody is json.Marshal of the Envelope without re-encoding data,
// which the store keeps as chatd encoded it (compact JSON): a delivery
// costs no second pass over its payload.
func envelopeBody(id, typ, appID string, createdAt int64, data []byte) []byte {
	if len(data) == 0 {
		data = []byte("{}")
	}
	b := make([]byte, 0, len(data)+len(id)+len(typ)+len(appID)+64)
	str := func(s string) {
		q, _ := json.Marshal(s)
		b = append(b, q...)
	}
	b = append(b, `{"id":`...)
	str(id)
	b = append(b, `,"type":`...)
	str(typ)
	b = append(b, `,"appId":`...)
	str(appID)
	b = append(b, `,"createdAt":`...)
	b = strconv.AppendInt(b, createdAt, 10)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// Options configure a Worker.
type Options struct {
	Store interface {
		FinishAndClaim(ctx context.Context, owner string, rs []store.FinishedDelivery, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error)
	}
	// Recipients returns a conversation's members other than the sender;
	// Online, which of some users have a socket on any node. Both fill
	// message.sent's offlineUserIds; nil Online leaves it out.
	Recipients   func(ctx context.Context, conversationID, senderID string) ([]string, error)
	Online       func(appID string, userIDs []string) map[string]bool
	AllowPrivate bool
	RetryBase    time.Duration // first retry delay (doubles each time)
	RetryFor     time.Duration // after this, a delivery fails for good and its endpoint is paused
	Timeout      time.Duration // per attempt
	Concurrency  int           // in-flight requests per endpoint
	Poll         time.Duration // how often the outbox is read when nothing wakes the worker
	Logger       *slog.Logger
}

// Worker delivers the outbox. Its goroutines end with Close.
//
// A claim returns runs of deliveries per endpoint and order key; each run
// is delivered in order by one goroutine, and when one of it fails the rest
// is released untried. One goroutine records results in batches and claims
// in the same store call (one write transaction for both rather than one
// per delivery or per step: on SQLite the writer is shared with the sends).
type Worker struct {
	opts   Options
	owner  string
	client *http.Client
	lease  time.Duration
	log    *slog.Logger

	wake     chan struct{}
	stop     chan struct{}
	exited   chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	inflight sync.WaitGroup
	busy     atomic.Int64 // claimed deliveries not yet recorded
	results  chan store.FinishedDelivery
	recorded chan struct{}

	mu   sync.Mutex
	sems map[string]chan struct{}

	hook hookStats
	// Counters for /metrics.
	delivered, failed, retried atomic.Uint64
}

// New returns a worker; Start starts it.
func New(opts Options) *Worker {
	if opts.RetryBase <= 0 {
		opts.RetryBase = DefaultRetryBase
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = DefaultRetryFor
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	rand.Read(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	return &Worker{opts: opts, owner: hex.EncodeToString(b[:]), client: guardedClient(opts.AllowPrivate, opts.Concurrency),
		// A claim outlives its run's attempts (the claim loop takes at most
		// claimBatch, delivered Concurrency at a time per endpoint); a dead
		// node's claims go to the others after it.
		lease: 4*opts.Timeout + 5*time.Second, log: opts.Logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), exited: make(chan struct{}),
		results: make(chan store.FinishedDelivery, claimBatch), recorded: make(chan struct{}),
		ctx: ctx, cancel: cancel, sems: map[string]chan struct{}{}}
}

// Start runs the worker's loop.
func (w *Worker) Start() {
	go w.run()
}

// Wake makes the worker read the outbox now (after a commit that wrote
// events on this node). It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Close stops claiming, cancels the attempts in flight (their deliveries
// are due again at once), waits for them and records their results.
func (w *Worker) Close() error {
	select {
	case <-w.stop:
		return nil
	default:
	}
	close(w.stop)
	<-w.exited
	w.cancel()
	w.inflight.Wait()
	close(w.results)
	<-w.recorded
	w.client.CloseIdleConnections()
	return nil
}

// run records results and claims, both in one store call (on SQLite one
// transaction of the writer shared with the sends instead of two), until
// Close; then it records what the attempts cancelled by Close return.
func (w *Worker) run() {
	defer close(w.recorded)
	t := time.NewTimer(0)
	defer t.Stop()
	stop := w.stop
	stopped := func() {
		stop = nil
		close(w.exited) // no claim after this
	}
	batch := make([]store.FinishedDelivery, 0, claimBatch)
	for {
		batch = batch[:0]
		open := true
		select {
		case <-stop:
			stopped()
			continue
		case r, ok := <-w.results:
			if !ok {
				return
			}
			batch = append(batch, r)
		case <-w.wake:
		case <-t.C:
		}
		// Whatever else has arrived joins the batch.
	more:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-w.results:
				if !ok {
					open = false
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		room := 0
		if stop != nil {
			room = claimBatch - (int(w.busy.Load()) - len(batch))
		}
		full := w.finishAndClaim(batch, room)
		if !open {
			return
		}
		if stop == nil {
			continue
		}
		// Spacing the store calls lets results and events gather into
		// larger batches under load, for a few ms of latency.
		select {
		case <-stop:
			stopped()
			continue
		case <-time.After(claimGap):
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		if full {
			t.Reset(0)
		} else {
			t.Reset(w.opts.Poll)
		}
	}
}

// finishAndClaim records batch, claims up to room due deliveries and
// starts them; it reports whether it took room (there may be more).
func (w *Worker) finishAndClaim(batch []store.FinishedDelivery, room int) bool {
	if len(batch) == 0 && room <= 0 {
		return false
	}
	// Recorded even while closing: the store outlives the worker.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 10*time.Second)
	ds, err := w.opts.Store.FinishAndClaim(ctx, w.owner, batch, time.Now(), w.lease, max(room, 0))
	cancel()
	w.busy.Add(-int64(len(batch)))
	if err != nil {
		// Lost results are attempted again once their lease expires.
		w.log.Warn("webhook: record and claim deliveries", "results", len(batch), "err", err)
		return false
	}
	w.busy.Add(int64(len(ds)))
	w.start(ds)
	return room > 0 && len(ds) == room
}

// start delivers claimed deliveries: runs of one endpoint and order key,
// each in order on a goroutine of its own.
func (w *Worker) start(ds []store.Delivery) {
	var runs [][]store.Delivery
	at := map[[2]string]int{}
	for _, d := range ds {
		if d.OrderKey == "" {
			runs = append(runs, []store.Delivery{d})
			continue
		}
		k := [2]string{d.EndpointID, d.OrderKey}
		if i, ok := at[k]; ok {
			runs[i] = append(runs[i], d)
			continue
		}
		at[k] = len(runs)
		runs = append(runs, []store.Delivery{d})
	}
	for _, run := range runs {
		w.inflight.Add(1)
		go w.deliverRun(run)
	}
}

func (w *Worker) sem(endpoint string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sems[endpoint]
	if s == nil {
		s = make(chan struct{}, w.opts.Concurrency)
		w.sems[endpoint] = s
	}
	return s
}

// deliverRun delivers a run in order; after a failure the rest is released.
func (w *Worker) deliverRun(run []store.Delivery) {
	defer w.inflight.Done()
	for i, d := range run {
		if !w.deliver(d) {
			for _, rest := range run[i+1:] {
				w.results <- store.FinishedDelivery{ID: rest.ID, Result: store.DeliveryResult{Release: true}}
			}
			return
		}
	}
}

// deliver makes one attempt and queues its result; it reports success.
func (w *Worker) deliver(d store.Delivery) bool {
	sem := w.sem(d.EndpointID)
	select {
	case sem <- struct{}{}:
	case <-w.ctx.Done():
		w.results <- store.FinishedDelivery{ID: d.ID, Result: store.DeliveryResult{Release: true}}
		return false
	}
	res := store.DeliveryResult{}
	data := d.Data
	if enriched, ok := w.enrich(d); ok {
		data, res.Data = enriched, enriched
	}
	body := envelopeBody(d.EventID, d.Type, d.AppID, d.CreatedAt.UnixMilli(), data)
	status, err := w.post(w.ctx, d, body)
	<-sem
	now := time.Now()
	switch {
	case err == nil:
		res.Status, res.HTTPStatus = store.DeliveryDelivered, status
		w.delivered.Add(1)
	case w.ctx.Err() != nil:
		res = store.DeliveryResult{Release: true} // shutting down: not the receiver's failure
	default:
		res.Error, res.HTTPStatus = err.Error(), status
		if now.Sub(d.CreatedAt) >= w.opts.RetryFor {
			// Persistent failure: the delivery is kept as failed and the
			// endpoint paused until the app sets it again.
			res.Status, res.PauseAfter = store.DeliveryFailed, 1
			w.failed.Add(1)
		} else {
			res.Status, res.NextAt = store.DeliveryPending, now.Add(Backoff(d.Attempts, w.opts.RetryBase, mrand.Float64))
			w.retried.Add(1)
		}
	}
	w.results <- store.FinishedDelivery{ID: d.ID, Result: res}
	return err == nil
}

// enrich adds offlineUserIds to a message.sent on its first attempt.
func (w *Worker) enrich(d store.Delivery) (json.RawMessage, bool) {
	if d.Type != chat.EventMessageSent || w.opts.Online == nil || w.opts.Recipients == nil {
		return nil, false
	}
	var data map[string]json.RawMessage
	if json.Unmarshal(d.Data, &data) != nil {
		return nil, false
	}
	if _, done := data["offlineUserIds"]; done {
		return nil, false
	}
	var msg struct {
		SenderUserID string `json:"senderUserId"`
	}
	json.Unmarshal(data["message"], &msg)
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	users, err := w.opts.Recipients(ctx, d.OrderKey, msg.SenderUserID)
	if err != nil {
		return nil, false
	}
	online := w.opts.Online(d.AppID, users)
	offline := make([]string, 0, len(users))
	for _, u := range users {
		if !online[u] {
			offline = append(offline, u)
		}
	}
	data["offlineUserIds"], _ = json.Marshal(offline)
	out, err := json.Marshal(data)
	return out, err == nil
}

// post sends one signed request and returns the HTTP status; a non-2xx
// status is an error.
func (w *Worker) post(ctx context.Context, d store.Delivery, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	req, err := newRequest(ctx, d.URL, d.Secret, d.EventID, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set(HeaderDelivery, d.ID)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, cleanErr(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

func newRequest(ctx context.Context, u, secret, eventID string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "chatd-webhook/1")
	req.Header.Set(HeaderEventID, eventID)
	req.Header.Set(HeaderSignature, Sign(secret, time.Now(), body))
	return req, nil
}

// cleanErr keeps what an app needs to know from a client error (the
// request URL is already known to it).
func cleanErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timed out")
	}
	return err
}

// BeforeSend calls the before-send hook (chat.WebhookOptions.BeforeSend).
func (w *Worker) BeforeSend(ctx context.Context, ep store.Endpoint, data any) (chat.HookReply, error) {
	start := time.Now()
	r, err := w.beforeSend(ctx, ep, data)
	outcome := r.Action
	if err != nil {
		outcome = "error"
	}
	w.hook.observe(time.Since(start), outcome)
	return r, err
}

func (w *Worker) beforeSend(ctx context.Context, ep store.Endpoint, data any) (chat.HookReply, error) {
	timeout := time.Duration(ep.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = chat.DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := json.Marshal(data)
	if err != nil {
		return chat.HookReply{}, err
	}
	id := store.NewID()
	body, _ := json.Marshal(Envelope{ID: id, Type: chat.EventBeforeSend, AppID: ep.AppID, CreatedAt: time.Now().UnixMilli(), Data: raw})
	req, err := newRequest(ctx, ep.URL, ep.Secret, id, body)
	if err != nil {
		return chat.HookReply{}, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return chat.HookReply{}, cleanErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return chat.HookReply{}, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var r chat.HookReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReplyBytes)).Decode(&r); err != nil {
		return chat.HookReply{}, fmt.Errorf("reply: %w", err)
	}
	return r, nil
}

// hookStats is the before-send hook's latency histogram.
type hookStats struct {
	mu       sync.Mutex
	buckets  [len(hookBuckets)]uint64
	count    uint64
	sum      float64
	outcomes map[string]uint64
}

var hookBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func (h *hookStats) observe(d time.Duration, outcome string) {
	s := d.Seconds()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range hookBuckets {
		if s <= b {
			h.buckets[i]++
		}
	}
	h.count++
	h.sum += s
	if h.outcomes == nil {
		h.outcomes = map[string]uint64{}
	}
	switch outcome {
	case "allow", "reject", "replace", "error":
	default:
		outcome = "other"
	}
	h.outcomes[outcome]++
}

// WriteMetrics writes the worker's metrics in the Prometheus text format.
func (w *Worker) WriteMetrics(b io.Writer) {
	metric := func(name, typ, help string, v any) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	metric("chatd_webhook_delivered_total", "counter", "Webhook deliveries answered with 2xx by this node.", w.delivered.Load())
	metric("chatd_webhook_retries_total", "counter", "Webhook attempts that failed and were scheduled again.", w.retried.Load())
	metric("chatd_webhook_failed_total", "counter", "Webhook deliveries given up after CHATD_WEBHOOK_RETRY_FOR.", w.failed.Load())
	h := &w.hook
	h.mu.Lock()
	defer h.mu.Unlock()
	const name = "chatd_webhook_before_send_seconds"
	fmt.Fprintf(b, "# HELP %s Latency of the before-send hook, by this node.\n# TYPE %s histogram\n", name, name)
	for i, le := range hookBuckets {
		fmt.Fprintf(b, "%s_bucket{le=\"%g\"} %d\n", name, le, h.buckets[i])
	}
	fmt.Fprintf(b, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, h.count, name, h.sum, name, h.count)
	fmt.Fprintf(b, "# HELP chatd_webhook_before_send_total Before-send hook calls by outcome.\n# TYPE chatd_webhook_before_send_total counter\n")
	for _, o := range []string{"allow", "reject", "replace", "error", "other"} {
		fmt.Fprintf(b, "chatd_webhook_before_send_total{outcome=%q} %d\n", o, h.outcomes[o])
	}
}

// Presence hands presence changes to fn in order on a goroutine of its own:
// the gateway reports them with its presence table locked. A full queue
// drops changes (a user.online or user.offline is lost, never delayed
// without bound).
type Presence struct {
	ch   chan presenceChange
	stop chan struct{}
	done chan struct{}
}

type presenceChange struct {
	appID, userID string
	online        bool
	at            time.Time
}

// NewPresence starts the queue; Close ends it.
func NewPresence(fn func(ctx context.Context, appID, userID string, online bool, at time.Time)) *Presence {
	p := &Presence{ch: make(chan presenceChange, 4096), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case c := <-p.ch:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				fn(ctx, c.appID, c.userID, c.online, c.at)
				cancel()
			}
		}
	}()
	return p
}

// Push queues a change; it never blocks.
func (p *Presence) Push(appID, userID string, online bool) {
	select {
	case p.ch <- presenceChange{appID, userID, online, time.Now()}:
	default:
	}
}

// Close stops the queue and waits for the change being written.
func (p *Presence) Close() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	return nil
}
