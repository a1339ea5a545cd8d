package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/sqlite"
	"github.com/chatd/chatd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainCheckGoroutines(m)) }

func TestSignVerify(t *testing.T) {
	body := []byte(`{"id":"e1","type":"message.sent"}`)
	at := time.Unix(1_700_000_000, 0)
	h := Sign("s3cret", at, body)
	// The recipe, spelled out: HMAC-SHA256(secret, t + "." + body) in hex.
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte("1700000000." + string(body)))
	if h != "t=1700000000,v1="+hex.EncodeToString(mac.Sum(nil)) {
		t.Fatalf("header %q", h)
	}
	if err := Verify("s3cret", h, body, at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret, header string
		body           []byte
		now            time.Time
	}{
		"other secret":  {"other", h, body, at},
		"changed body":  {"s3cret", h, append([]byte(" "), body...), at},
		"too old":       {"s3cret", h, body, at.Add(time.Hour)},
		"no signature":  {"s3cret", "t=1700000000", body, at},
		"no timestamp":  {"s3cret", strings.SplitN(h, ",", 2)[1], body, at},
		"garbage":       {"s3cret", "nonsense", body, at},
		"wrong version": {"s3cret", strings.Replace(h, "v1=", "v0=", 1), body, at},
	} {
		if err := Verify(c.secret, c.header, c.body, c.now, 5*time.Minute); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestBackoff(t *testing.T) {
	mid := func() float64 { return 0.5 }
	lo := func() float64 { return 0 }
	hi := func() float64 { return 0.999999 }
	base := 10 * time.Second
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}
	for i, w := range want {
		if got := Backoff(i+1, base, mid); got != w {
			t.Errorf("attempt %d: %s, want %s", i+1, got, w)
		}
		if got := Backoff(i+1, base, lo); got != w*8/10 {
			t.Errorf("attempt %d low jitter: %s", i+1, got)
		}
		if got := Backoff(i+1, base, hi); got > w*12/10 || got < w*11/10 {
			t.Errorf("attempt %d high jitter: %s", i+1, got)
		}
	}
	if got := Backoff(40, base, mid); got != time.Hour {
		t.Errorf("cap: %s", got)
	}
	if got := Backoff(13, base, mid); got != time.Hour {
		t.Errorf("attempt 13: %s, want the hour cap", got)
	}
	// The default schedule retries for 24 h in about 30 attempts.
	var total time.Duration
	n := 0
	for total < DefaultRetryFor {
		n++
		total += Backoff(n, DefaultRetryBase, mid)
	}
	if n < 25 || n > 35 {
		t.Errorf("%d attempts in 24 h", n)
	}
}

func TestAllowed(t *testing.T) {
	for _, c := range []struct {
		ip             string
		public, always bool
	}{
		{"8.8.8.8", true, true},
		{"2001:4860:4860::8888", true, true},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"10.1.2.3", false, true},
		{"172.16.0.1", false, true},
		{"192.168.1.1", false, true},
		{"169.254.169.254", false, true}, // cloud metadata
		{"fe80::1", false, true},
		{"fc00::1", false, true},
		{"100.64.0.1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"::ffff:169.254.169.254", false, true},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"224.0.0.1", false, false},
		{"255.255.255.255", false, false},
	} {
		ip := netip.MustParseAddr(c.ip)
		if got := Allowed(ip, false); got != c.public {
			t.Errorf("Allowed(%s, false) = %v", c.ip, got)
		}
		if got := Allowed(ip, true); got != c.always {
			t.Errorf("Allowed(%s, true) = %v", c.ip, got)
		}
	}
	check := CheckURL(false)
	for _, u := range []string{"http://127.0.0.1/x", "http://[::1]:8080/", "https://localhost/hook", "http://10.0.0.1/", "ftp://example.com/", "file:///etc/passwd", "http:///x", "http://169.254.169.254/latest"} {
		if check(u) == nil {
			t.Errorf("CheckURL accepted %s", u)
		}
	}
	for _, u := range []string{"https://example.com/hook", "http://8.8.8.8:8080/x"} {
		if err := check(u); err != nil {
			t.Errorf("CheckURL(%s): %v", u, err)
		}
	}
	if err := CheckURL(true)("http://127.0.0.1:9/x"); err != nil {
		t.Errorf("allowed private: %v", err)
	}
}

// TestDialGuard: the guard holds at dial time, whatever the URL looked
// like when it was set (a name may resolve to a private address later).
func TestDialGuard(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		c := guardedClient(false, 1)
		_, err := c.Post(u, "application/json", strings.NewReader("{}"))
		if err == nil || !strings.Contains(err.Error(), "refused address") {
			t.Errorf("%s: err = %v, want the guard's refusal", u, err)
		}
		c.CloseIdleConnections()
	}
	if hits != 0 {
		t.Fatalf("the guarded client reached the server %d times", hits)
	}
	c := guardedClient(true, 1)
	resp, err := c.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.CloseIdleConnections()
	// Redirects are not followed (they could point anywhere).
	redir := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusFound))
	defer redir.Close()
	resp, err = c.Post(redir.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.CloseIdleConnections()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect followed: %d", resp.StatusCode)
	}
}

type received struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

// TestWorker: a store's outbox delivered signed, retried after failures
// exactly once more, in order per key, and a claim held by a dead owner is
// taken over after its lease.
func TestWorker(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	app := "0123456789abcdef01234567"

	var rec received
	fails := 3
	got := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs, rec.body = append(rec.reqs, r), append(rec.body, b)
		fail := fails > 0
		if fail {
			fails--
		}
		rec.mu.Unlock()
		if fail {
			w.WriteHeader(500)
			return
		}
		got <- r.Header.Get(HeaderEventID)
	}))
	defer srv.Close()
	ep, err := st.SetWebhook(ctx, store.Endpoint{AppID: app, URL: srv.URL, Secret: "whsec_test", Events: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	var evs []*store.OutboxEvent
	for i := range 5 {
		evs = append(evs, &store.OutboxEvent{AppID: app, Type: "x", OrderKey: "conv", Endpoints: []string{ep.ID},
			Data: json.RawMessage(`{"i":` + string(rune('0'+i)) + `}`)})
	}
	if err := st.AddEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	// A dead node claimed the first delivery: it comes back after the lease.
	if _, err := st.ClaimDeliveries(ctx, "dead", time.Now(), 200*time.Millisecond, 1); err != nil {
		t.Fatal(err)
	}
	w := New(Options{Store: st, AllowPrivate: true, RetryBase: time.Millisecond, Timeout: time.Second, Poll: 20 * time.Millisecond})
	w.Start()
	defer w.Close()
	for i := range 5 {
		select {
		case id := <-got:
			if id != evs[i].ID {
				t.Fatalf("delivery %d: event %s, want %s (in order)", i, id, evs[i].ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("delivery %d never arrived", i)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) != 5+3 {
		t.Fatalf("%d requests for 5 events and 3 failures", len(rec.reqs))
	}
	for i, r := range rec.reqs {
		if err := Verify("whsec_test", r.Header.Get(HeaderSignature), rec.body[i], time.Now(), time.Minute); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		var env Envelope
		if err := json.Unmarshal(rec.body[i], &env); err != nil || env.Type != "x" || env.AppID != app || env.ID != r.Header.Get(HeaderEventID) || env.CreatedAt == 0 {
			t.Fatalf("request %d: %s", i, rec.body[i])
		}
	}
	// Before-send: the reply and the latency histogram.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if Verify("hs", r.Header.Get(HeaderSignature), b, time.Now(), time.Minute) != nil {
			w.WriteHeader(401)
			return
		}
		io.WriteString(w, `{"action":"replace","content":{"content":"***"}}`)
	}))
	defer hook.Close()
	r, err := w.BeforeSend(ctx, store.Endpoint{AppID: app, URL: hook.URL, Secret: "hs"}, map[string]any{"message": map[string]any{}})
	if err != nil || r.Action != "replace" || string(r.Content) != `{"content":"***"}` {
		t.Fatalf("BeforeSend = %+v, %v", r, err)
	}
	var m strings.Builder
	w.WriteMetrics(&m)
	if !strings.Contains(m.String(), `chatd_webhook_before_send_seconds_count 1`) || !strings.Contains(m.String(), `chatd_webhook_before_send_total{outcome="replace"} 1`) {
		t.Fatalf("metrics:\n%s", m.String())
	}
}

// The body built without re-encoding the payload is what json.Marshal of
// the Envelope gives for the payloads chatd stores (its own compact JSON).
func TestEnvelopeBody(t *testing.T) {
	data, _ := json.Marshal(map[string]any{"message": map[string]any{"content": "<b>&\"é\u2028", "n": 1.5}, "offlineUserIds": []string{"a"}})
	for _, d := range []json.RawMessage{data, nil} {
		want, _ := json.Marshal(Envelope{ID: "6b10492b196bbb8ab38d6960", Type: "message.sent", AppID: "app \"<1>\"", CreatedAt: 1700000000123, Data: d})
		if d == nil {
			want, _ = json.Marshal(Envelope{ID: "6b10492b196bbb8ab38d6960", Type: "message.sent", AppID: "app \"<1>\"", CreatedAt: 1700000000123, Data: json.RawMessage("{}")})
		}
		if got := envelopeBody("6b10492b196bbb8ab38d6960", "message.sent", "app \"<1>\"", 1700000000123, d); string(got) != string(want) {
			t.Fatalf("body\n%s\nwant\n%s", got, want)
		}
	}
}
