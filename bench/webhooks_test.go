package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/postgres"
	"github.com/chatd/chatd/internal/store/sqlite"
	"github.com/chatd/chatd/internal/testenv"
	"github.com/chatd/chatd/internal/webhook"
)

// webhookService is a service over a fresh SQLite store (or PostgreSQL
// schema, with pg) with a delivery worker, users u0…u(n-1), and a fast
// local receiver counting deliveries.
func webhookService(b *testing.B, users int, pg ...bool) (*chat.Service, store.App, *webhook.Worker, *atomic.Int64, string) {
	b.Helper()
	ctx := context.Background()
	var st store.Store
	var err error
	if len(pg) > 0 && pg[0] {
		st, err = postgres.Open(ctx, pgSchema(b))
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(b.TempDir(), "chatd.db"))
	}
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/hook" {
			io.WriteString(w, `{"action":"allow"}`)
			return
		}
		got.Add(1)
	}))
	w := webhook.New(webhook.Options{Store: st, AllowPrivate: true, Poll: 50 * time.Millisecond})
	svc := chat.New(st, chat.Options{Webhooks: chat.WebhookOptions{BeforeSend: w.BeforeSend, Written: w.Wake}})
	w.Start()
	b.Cleanup(func() { w.Close(); rx.Close(); st.Close() })
	app, err := svc.CreateApp(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	for i := range users {
		if _, err := svc.GetToken(ctx, app, fmt.Sprintf("u%d", i), fmt.Sprintf("User %d", i), ""); err != nil {
			b.Fatal(err)
		}
	}
	return svc, app, w, &got, rx.URL
}

// BenchmarkWebhooksSendParallel: private sends from 16 goroutines with no
// webhook, and with every message.sent delivered to a local receiver by the
// worker (which shares the CPUs). The issue asks "on" to stay ≥ 80 % of
// "off" (docs/benchmarks.md).
func BenchmarkWebhooksSendParallel(b *testing.B) { webhooksSendParallel(b, false) }

// BenchmarkWebhooksSendParallelPostgres is the same on PostgreSQL
// (CHATD_TEST_POSTGRES; a schema of its own).
func BenchmarkWebhooksSendParallelPostgres(b *testing.B) {
	testenv.URL(b, "CHATD_TEST_POSTGRES")
	webhooksSendParallel(b, true)
}

func webhooksSendParallel(b *testing.B, pg bool) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			svc, app, _, got, url := webhookService(b, 64, pg)
			ctx := context.Background()
			if on {
				if _, err := svc.SetWebhook(ctx, app.ID, chat.WebhookInput{URL: url + "/events", Events: []string{chat.EventMessageSent}}); err != nil {
					b.Fatal(err)
				}
			}
			b.SetParallelism(16)
			var next, sent atomic.Int64
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				me := (next.Add(1) - 1) % 32
				from, to := fmt.Sprintf("u%d", 2*me), fmt.Sprintf("u%d", 2*me+1)
				for i := 0; pb.Next(); i++ {
					if _, err := svc.SendPrivate(ctx, chat.SendInput{AppID: app.ID, SenderID: from, TargetID: to, Type: 1, Content: content(i)}); err != nil {
						b.Error(err)
						return
					}
					sent.Add(1)
				}
			})
			b.ReportMetric(float64(sent.Load())/time.Since(start).Seconds(), "sends/s")
			if on {
				// Every event reaches the receiver. A worker that lags
				// behind leaves writes for after the sends: sustained is
				// the sends per second until the last one was delivered
				// (equal to sends/s when the worker keeps up).
				for deadline := time.Now().Add(time.Minute); got.Load() < sent.Load() && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				if got.Load() < sent.Load() {
					b.Fatalf("delivered %d of %d", got.Load(), sent.Load())
				}
				b.ReportMetric(float64(sent.Load())/time.Since(start).Seconds(), "sustained/s")
			}
		})
	}
}

// BenchmarkBeforeSend: one send at a time without a hook, with a local
// before-send hook, and the hook receiver's own latency (one signed POST
// from a Go client), as p50s. The issue asks the hook to add at most the
// receiver's latency + 1 ms at p50.
func BenchmarkBeforeSend(b *testing.B) {
	svc, app, _, _, url := webhookService(b, 2)
	ctx := context.Background()
	p50 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	send := func(i int) time.Duration {
		t := time.Now()
		if _, err := svc.SendPrivate(ctx, chat.SendInput{AppID: app.ID, SenderID: "u0", TargetID: "u1", Type: 1, Content: content(i)}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	var without, with, rx []time.Duration
	for i := 0; b.Loop(); i++ {
		without = append(without, send(i))
	}
	if _, err := svc.SetWebhook(ctx, app.ID, chat.WebhookInput{URL: url + "/hook", Events: []string{chat.EventBeforeSend}}); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{}
	for i := range len(without) {
		with = append(with, send(i))
		t := time.Now()
		resp, err := client.Post(url+"/hook", "application/json", http.NoBody)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		rx = append(rx, time.Since(t))
	}
	b.ReportMetric(p50(without), "p50-no-hook-ms")
	b.ReportMetric(p50(with), "p50-hook-ms")
	b.ReportMetric(p50(rx), "p50-receiver-ms")
	b.ReportMetric(p50(with)-p50(without)-p50(rx), "p50-overhead-ms")
}

// pgSchema creates a uniquely named schema, dropped when the benchmark
// ends, and returns a URL whose search_path selects it.
func pgSchema(b *testing.B) string {
	b.Helper()
	base := testenv.URL(b, "CHATD_TEST_POSTGRES")
	var r [6]byte
	rand.Read(r[:])
	schema := "chatd_b_" + hex.EncodeToString(r[:])
	ctx := context.Background()
	exec := func(q string) {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	exec("CREATE SCHEMA " + schema)
	b.Cleanup(func() { exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
