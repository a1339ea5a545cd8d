package signature

import (
	"container/heap"
	"context"
	"crypto/subtle"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chatd/chatd/internal/params"
)

// Error codes, node-chat's.
const (
	CodeBadParam     = 1002 // missing parameter, bad or expired time_stamp
	CodeBadSignature = 1004 // signature mismatch or nonce replayed
	CodeOther        = 1000 // nonce cache full for the app
)

// DefaultWindow is how far time_stamp may be from the server clock.
const DefaultWindow = 5 * time.Minute

// DefaultMaxNonces is the default number of nonces remembered per app.
const DefaultMaxNonces = 100_000

// maxNonceLen bounds what one remembered nonce may cost.
const maxNonceLen = 128

// largeWork is the canonical text (bytes, summed over the conventions to
// check) past which a signature check counts as large: large checks run at
// most MaxLargeChecks at a time, so that forged big requests, from however
// many addresses, cannot take every core.
const largeWork = 256 << 10

// Error is a refused signed request. Message is safe to show to the caller:
// it never holds the secret or the expected signature.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Verifier checks signed requests. It is safe for concurrent use.
//
// Nonces are remembered per app until the request's time_stamp leaves the
// window, so a replay is refused for as long as the original would still be
// accepted. Memory is bounded: at most MaxNonces live nonces per app. When an
// app is at the cap, further requests are refused (code 1000, "retry later")
// rather than evicting live nonces, because eviction would reopen replays.
// Nonces are only recorded for requests whose signature is valid, so only a
// holder of the app secret can fill its cache.
type Verifier struct {
	// Window is the accepted distance between time_stamp and Now, and how
	// long nonces are remembered.
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxNonces is the per-app cap on remembered nonces.
	MaxNonces int
	// Shared, when set, also records every nonce where all chatd nodes see
	// it, so that a request replayed to another node is refused too. The
	// local cache still answers repeats on this node without a round trip.
	Shared NonceStore
	// MaxLargeChecks bounds the large signature checks running at once;
	// 0 means half the CPUs (at least 1).
	MaxLargeChecks int

	mu        sync.Mutex
	apps      map[string]*appNonces
	lastSweep time.Time

	largeOnce sync.Once
	large     chan struct{} // a slot per large check running
}

// NewVerifier returns a Verifier with the given window (DefaultWindow if
// window <= 0) and DefaultMaxNonces.
func NewVerifier(window time.Duration) *Verifier {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Verifier{Window: window, MaxNonces: DefaultMaxNonces}
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) window() time.Duration {
	if v.Window <= 0 {
		return DefaultWindow
	}
	return v.Window
}

// NonceStore records nonces across nodes.
type NonceStore interface {
	// UseNonce records nonce for the app until expires and reports false if
	// it was already recorded and has not expired.
	UseNonce(ctx context.Context, appID, nonce string, expires time.Time) (bool, error)
}

// Verify checks p's app_id, time_stamp, nonce_str and sign against secret
// with node-chat's recipe, and records the nonce. It returns nil or an *Error.
func (v *Verifier) Verify(ctx context.Context, p *params.Params, secret string) error {
	return v.VerifyRoute(ctx, p, secret, "")
}

// VerifyRoute is Verify for a request to route ("METHOD /path"): when route
// is not empty, the signature must also cover it (see SignRoute), so that a
// request signed for one route is refused on every other.
//
// The checks run cheapest first, so that a request that cannot be valid
// costs next to nothing: parameters present, nonce shape, timestamp window,
// a nonce this node has already seen; only then is the canonical form built,
// once per convention that can differ for these parameters (at most 8, one
// for most requests), and hashed as it is written. The nonce is recorded
// only once the request is accepted: a request refused for any reason,
// including a failure of the shared nonce store, leaves its nonce unused, so
// that its retry is not taken for a replay.
func (v *Verifier) VerifyRoute(ctx context.Context, p *params.Params, secret, route string) error {
	var fields [4]string
	for i, k := range []string{"app_id", "time_stamp", "nonce_str", "sign"} {
		s, ok := p.String(k)
		if !ok || s == "" {
			return &Error{CodeBadParam, "missing parameter " + k}
		}
		fields[i] = s
	}
	app, nonce, sign := fields[0], fields[2], fields[3]
	if len(nonce) > maxNonceLen {
		return &Error{CodeBadParam, fmt.Sprintf("nonce_str is longer than %d characters", maxNonceLen)}
	}
	if !utf8.ValidString(nonce) || strings.ContainsFunc(nonce, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return &Error{CodeBadParam, "nonce_str must be text without control characters"}
	}
	if len(sign) != 32 {
		return &Error{CodeBadSignature, "signature mismatch"}
	}
	ts, ok, err := p.Int("time_stamp")
	if err != nil || !ok || ts <= 0 {
		return &Error{CodeBadParam, "time_stamp must be an integer: milliseconds (or seconds) since the Unix epoch"}
	}
	if ts < 1e12 { // seconds; any millisecond time since 2001 is larger
		ts *= 1000
	}
	window := v.window()
	now := v.now().UnixMilli()
	if d := now - ts; d > window.Milliseconds() || d < -window.Milliseconds() {
		return &Error{CodeBadParam, "time_stamp is more than " + humanDuration(window) + " away from server time"}
	}
	if v.seen(app, nonce, now) {
		return &Error{CodeBadSignature, "nonce_str already used"}
	}
	convs, size := conventionsAndSize(p)
	if size*int64(len(convs)) > largeWork {
		release, err := v.acquireLarge(ctx)
		if err != nil {
			return err
		}
		defer release()
	}
	if !matchConventions(p, secret, sign, route, convs) {
		return &Error{CodeBadSignature, "signature mismatch"}
	}
	expiry := ts + window.Milliseconds()
	if err := v.useNonce(app, nonce, expiry, now); err != nil {
		return err
	}
	if v.Shared != nil {
		fresh, err := v.Shared.UseNonce(ctx, app, nonce, time.UnixMilli(expiry))
		if err != nil {
			v.forget(app, nonce, expiry)
			return &Error{CodeOther, "cannot check nonce_str now; retry later"}
		}
		if !fresh {
			return &Error{CodeBadSignature, "nonce_str already used"}
		}
	}
	return nil
}

// Match reports whether sign (hex, either case) is a valid signature of p
// with secret in any of the accepted forms: empty values kept or left out,
// nested keys in received or sorted order, numbers as JavaScript prints them
// or as received. It checks no timestamp or nonce.
func Match(p *params.Params, secret, sign string) bool {
	return MatchRoute(p, secret, sign, "")
}

// MatchRoute is Match with the route bound into the signed string when
// route is not empty (see SignRoute). Each accepted form is built only when
// it differs from the others for p, and hashed as it is written.
func MatchRoute(p *params.Params, secret, sign, route string) bool {
	return matchConventions(p, secret, sign, route, conventions(p))
}

func matchConventions(p *params.Params, secret, sign, route string, convs []CanonicalOptions) bool {
	got := []byte(strings.ToLower(sign))
	match := 0
	for _, opts := range convs {
		match |= subtle.ConstantTimeCompare(got, []byte(routeDigest(p, opts, route, secret)))
	}
	return match == 1
}

// acquireLarge waits for a slot to run a large check; the caller releases
// it. A request that gives up waiting is told to retry.
func (v *Verifier) acquireLarge(ctx context.Context) (release func(), err error) {
	v.largeOnce.Do(func() {
		n := v.MaxLargeChecks
		if n <= 0 {
			n = max(1, runtime.GOMAXPROCS(0)/2)
		}
		v.large = make(chan struct{}, n)
	})
	select {
	case v.large <- struct{}{}:
		return func() { <-v.large }, nil
	case <-ctx.Done():
		return nil, &Error{CodeOther, "too many large signed requests at once; retry later"}
	}
}

func humanDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		if m := d / time.Minute; m == 1 {
			return "1 minute"
		} else {
			return fmt.Sprintf("%d minutes", m)
		}
	}
	return d.String()
}

// useNonce records nonce for app until expiry (ms), refusing a nonce that is
// still remembered.
func (v *Verifier) useNonce(app, nonce string, expiry, now int64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.apps == nil {
		v.apps = map[string]*appNonces{}
	}
	// Apps that stop sending would keep their nonces forever: sweep all apps
	// once per window.
	if t := time.UnixMilli(now); t.Sub(v.lastSweep) > v.window() || t.Before(v.lastSweep) {
		v.lastSweep = t
		for id, a := range v.apps {
			a.expire(now)
			if len(a.seen) == 0 {
				delete(v.apps, id)
			}
		}
	}
	a := v.apps[app]
	if a == nil {
		a = &appNonces{seen: map[string]int64{}}
		v.apps[app] = a
	}
	a.expire(now)
	if _, dup := a.seen[nonce]; dup {
		return &Error{CodeBadSignature, "nonce_str already used"}
	}
	limit := v.MaxNonces
	if limit <= 0 {
		limit = DefaultMaxNonces
	}
	if len(a.seen) >= limit {
		return &Error{CodeOther, fmt.Sprintf("too many signed requests for this app within %s; retry later", humanDuration(v.window()))}
	}
	a.seen[nonce] = expiry
	heap.Push(&a.queue, nonceEntry{nonce: nonce, expiry: expiry})
	return nil
}

// nonceCount is the number of remembered nonces for app (for tests).
func (v *Verifier) nonceCount(app string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if a := v.apps[app]; a != nil {
		return len(a.seen)
	}
	return 0
}

// seen reports whether nonce is remembered for app (unexpired) without
// recording it.
func (v *Verifier) seen(app, nonce string, now int64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	a := v.apps[app]
	if a == nil {
		return false
	}
	exp, ok := a.seen[nonce]
	return ok && exp >= now
}

// forget drops a nonce that useNonce recorded with expiry for a request
// that was refused after all.
func (v *Verifier) forget(app, nonce string, expiry int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if a := v.apps[app]; a != nil && a.seen[nonce] == expiry {
		delete(a.seen, nonce)
	}
}

type appNonces struct {
	seen  map[string]int64 // nonce → expiry, ms since epoch
	queue nonceHeap
}

func (a *appNonces) expire(now int64) {
	for len(a.queue) > 0 && a.queue[0].expiry < now {
		e := heap.Pop(&a.queue).(nonceEntry)
		if a.seen[e.nonce] == e.expiry {
			delete(a.seen, e.nonce)
		}
	}
}

type nonceEntry struct {
	nonce  string
	expiry int64
}

// nonceHeap is a min-heap by expiry.
type nonceHeap []nonceEntry

func (h nonceHeap) Len() int           { return len(h) }
func (h nonceHeap) Less(i, j int) bool { return h[i].expiry < h[j].expiry }
func (h nonceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nonceHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *nonceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
