package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/server"
)

func TestPushStamp(t *testing.T) {
	tests := []struct {
		name string
		ev   string
		want int64
	}{
		{"chatd push", `["message",{"message":"","status":1,"data":{"msgId":"x","content":{"content":"benchmark message","bts":1700000000123456789},"seq":1}}]`, 1700000000123456789},
		{"other event", `["session-read",{"bts":5}]`, 0},
		{"no stamp", `["message",{"data":{"content":{"content":"hi"}}}]`, 0},
		{"stamp at the end", `["message",{"bts":42`, 42},
		{"empty", ``, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pushStamp([]byte(tt.ev)); got != tt.want {
				t.Errorf("pushStamp = %d, want %d", got, tt.want)
			}
		})
	}
}

func FuzzPushStamp(f *testing.F) {
	f.Add([]byte(`["message",{"data":{"content":{"bts":123}}}]`))
	f.Add([]byte(`["message","bts":`))
	f.Add([]byte(`["message",{"bts":99999999999999999999999}]`))
	f.Fuzz(func(t *testing.T, ev []byte) {
		if n := pushStamp(ev); n < 0 {
			t.Errorf("negative stamp %d", n)
		}
	})
}

func TestStampedContentRoundTrip(t *testing.T) {
	arg := stampedContent("u1", 1234567)
	ev := append([]byte(`["message",{"data":{"content":`), arg[strings.Index(string(arg), `{"content"`):]...)
	if got := pushStamp(ev); got != 1234567 {
		t.Fatalf("round trip stamp = %d", got)
	}
}

func TestMsgIDFor(t *testing.T) {
	tests := []struct {
		base string
		i    int
		want string
	}{
		{"5eed", 1, "5eed00000000000000000001"},
		{"5eed", 1_000_000, "5eed000000000000000f4240"},
		{"57a1", 255, "57a1000000000000000000ff"},
	}
	for _, tt := range tests {
		if got := msgIDFor(tt.base, tt.i); got != tt.want || len(got) != 24 {
			t.Errorf("msgIDFor(%q, %d) = %q, want %q", tt.base, tt.i, got, tt.want)
		}
	}
}

func TestReportRatiosAndTargets(t *testing.T) {
	r := &report{Results: map[string]map[string][]figures{
		"idle": {"chatd": {{"rss_per_conn_kib": 4}, {"rss_per_conn_kib": 5}, {"rss_per_conn_kib": 3}},
			"peer": {{"rss_per_conn_kib": 20}, {"rss_per_conn_kib": 10}, {"rss_per_conn_kib": 30}}},
		"fanout": {"chatd": {{"cpu_us_per_delivery": 10, "max_deliveries_per_s_p99_100ms": 30000, "cpu_over_floor": 1.2}},
			"peer": {{"cpu_us_per_delivery": 20, "max_deliveries_per_s_p99_100ms": 0, "cpu_over_floor": 2.4}}},
		"p2p": {"chatd": {{"fixed_p99_ms": -1}}, "peer": {{"fixed_p99_ms": 50}}},
	}}
	r.build(runConfig{StoreConc: 64})
	want := map[string]struct {
		ratio string
		met   string
	}{
		"rss_per_conn_kib":               {"0.20", "true"}, // medians 4 and 20
		"cpu_over_floor":                 {"0.50", "true"}, // judged on chatd's own 1.2 ≤ 1.3
		"cpu_us_per_delivery":            {"0.50", "-"},    // no target against the peer: see cpu_over_floor
		"max_deliveries_per_s_p99_100ms": {"-", "true"},
		"fixed_p99_ms":                   {"-", "-"},
	}
	for _, rw := range r.Rows {
		w, ok := want[rw.Metric]
		if !ok {
			continue
		}
		ratio, met := "-", "-"
		if rw.Ratio != nil {
			ratio = strconv.FormatFloat(*rw.Ratio, 'f', 2, 64)
		}
		if rw.Met != nil {
			met = strconv.FormatBool(*rw.Met)
		}
		if ratio != w.ratio || met != w.met {
			t.Errorf("%s: ratio %s met %s, want %s %s", rw.Metric, ratio, met, w.ratio, w.met)
		}
		delete(want, rw.Metric)
	}
	if len(want) > 0 {
		t.Errorf("rows missing: %v", want)
	}
	for _, rw := range r.Rows {
		if rw.Metric == "rss_per_conn_kib" && (*rw.ChatdMin != 3 || *rw.ChatdMax != 5 || *rw.RatioMin != 0.1 || *rw.RatioMax != 0.5) {
			t.Errorf("rss ranges: chatd %v–%v ratio %v–%v", *rw.ChatdMin, *rw.ChatdMax, *rw.RatioMin, *rw.RatioMax)
		}
	}
	if md := r.markdown(); !strings.Contains(md, "| idle | RSS per idle connection") || !strings.Contains(md, "failed") ||
		!strings.Contains(md, "| 4.00 (3.00–5.00) | 20.0 (10.0–30.0) | 0.20× (0.10–0.50) |") {
		t.Errorf("markdown:\n%s", md)
	}
}

func TestReadProcSelf(t *testing.T) {
	ps, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ps.RSS <= 0 || ps.CPU < 0 {
		t.Fatalf("readProc(self) = %+v", ps)
	}
}

// TestClientAgainstChatd drives an in-process chatd with the load client:
// connect, a private send with its ack and the receiver's push, and a
// refused token.
func TestClientAgainstChatd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Store = "sqlite:" + filepath.Join(dir, "chatd.db")
	cfg.Blobs = "file:" + filepath.Join(dir, "files")
	srv, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler)
	defer hs.Close()
	app, err := srv.Chat.CreateApp(ctx, "t", "")
	if err != nil {
		t.Fatal(err)
	}
	tokA, _ := srv.Chat.GetToken(ctx, app, "a", "A", "")
	tokB, _ := srv.Chat.GetToken(ctx, app, "b", "B", "")
	addr := strings.TrimPrefix(hs.URL, "http://")

	if _, err := dialClient(ctx, addr, nil, app.ID, "bad", nil); err == nil {
		t.Fatal("a bad token connected")
	}
	got := make(chan []byte, 1)
	b, err := dialClient(ctx, addr, srcIPs[1], app.ID, tokB, func(ev []byte) { got <- append([]byte(nil), ev...) })
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	a, err := dialClient(ctx, addr, nil, app.ID, tokA, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	sent := time.Now().UnixNano()
	data, err := a.call(ctx, "send-private-message", stampedContent("b", sent))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"seq":1`) {
		t.Fatalf("ack data %s", data)
	}
	select {
	case ev := <-got:
		if pushStamp(ev) != sent {
			t.Fatalf("push %s lacks the stamp %d", ev, sent)
		}
	case <-ctx.Done():
		t.Fatal("no push")
	}
	if _, err := a.call(ctx, "send-private-message", []byte(`{"targetId":"nobody","messageType":1,"content":{}}`)); err == nil {
		t.Fatal("send to an unknown user succeeded")
	}
}
