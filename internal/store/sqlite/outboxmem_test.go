package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

func hookApp(t *testing.T, s *Store) (string, store.Endpoint) {
	t.Helper()
	ctx := context.Background()
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Name: "a", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	e, err := s.SetWebhook(ctx, store.Endpoint{AppID: app, URL: "https://a.example/hook", Secret: "0123456789abcdef", Events: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	return app, e
}

func addHookEvents(t *testing.T, s *Store, app, endpoint string, from, n int) {
	t.Helper()
	var evs []*store.OutboxEvent
	for i := from; i < from+n; i++ {
		evs = append(evs, &store.OutboxEvent{AppID: app, Type: "x", OrderKey: fmt.Sprintf("k%d", i%10), Endpoints: []string{endpoint},
			Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
	}
	if err := s.AddEvents(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookRestartMidBatch: claims live in memory, so a crash loses
// them; after a restart the deliveries whose results were recorded are
// not sent again and every other one is, once.
func TestWebhookRestartMidBatch(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	app, e := hookApp(t, s)
	addHookEvents(t, s, app, e.ID, 0, 300)
	now := time.Now()
	ds, err := s.ClaimDeliveries(ctx, "n", now, time.Minute, 100)
	if err != nil || len(ds) != 100 {
		t.Fatalf("claimed %d: %v", len(ds), err)
	}
	// The first 60 (whole runs, then a run's first ones) are recorded in
	// one batch; the other 40 are in flight when the process dies.
	done := map[string]bool{}
	var rs []store.FinishedDelivery
	for _, d := range ds[:60] {
		done[d.ID] = true
		rs = append(rs, store.FinishedDelivery{ID: d.ID, Result: store.DeliveryResult{Status: store.DeliveryDelivered, HTTPStatus: 200}})
	}
	if err := s.FinishDeliveries(ctx, "n", rs); err != nil {
		t.Fatal(err)
	}
	s.Close() // nothing of the claims is written: as good as a crash
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	again := map[string]int{}
	for {
		ds, err := s.FinishAndClaim(ctx, "m", rs[:0], now, time.Minute, 64)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		rs = rs[:0]
		for _, d := range ds {
			if done[d.ID] {
				t.Fatalf("%s delivered before the crash was claimed again", d.ID)
			}
			again[d.ID]++
			rs = append(rs, store.FinishedDelivery{ID: d.ID, Result: store.DeliveryResult{Status: store.DeliveryDelivered, HTTPStatus: 200}})
		}
		if _, err := s.FinishAndClaim(ctx, "m", rs, now, time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		rs = rs[:0]
	}
	if len(again) != 240 {
		t.Fatalf("after the restart %d deliveries, want 240", len(again))
	}
	for id, n := range again {
		if n != 1 {
			t.Fatalf("%s claimed %d times", id, n)
		}
	}
	if p, _ := s.Deliveries(ctx, app, store.DeliveryQuery{Status: store.DeliveryPending, Limit: 10}); len(p) != 0 {
		t.Fatalf("pending left: %+v", p)
	}
}

// TestWebhookQueueOverflow: past maxMemDeliveries new rows stay in the
// table and are loaded once the queue has drained; every delivery is
// claimed once, in order per key, with events arriving all along.
func TestWebhookQueueOverflow(t *testing.T) {
	defer func(n int) { maxMemDeliveries = n }(maxMemDeliveries)
	maxMemDeliveries = 40
	ctx := context.Background()
	s := openTemp(t)
	app, e := hookApp(t, s)
	addHookEvents(t, s, app, e.ID, 0, 100)
	seen := map[string]bool{}
	last := map[string]int64{}
	added := 100
	var rs []store.FinishedDelivery
	for round := 0; round < 500; round++ {
		if added < 400 {
			addHookEvents(t, s, app, e.ID, added, 30)
			added += 30
		}
		ds, err := s.FinishAndClaim(ctx, "n", rs, time.Now(), time.Minute, 25)
		if err != nil {
			t.Fatal(err)
		}
		rs = rs[:0]
		if len(ds) == 0 && added >= 400 {
			break
		}
		for _, d := range ds {
			if seen[d.ID] {
				t.Fatalf("%s claimed twice", d.ID)
			}
			if d.Seq <= last[d.OrderKey] {
				t.Fatalf("key %s: seq %d after %d", d.OrderKey, d.Seq, last[d.OrderKey])
			}
			seen[d.ID], last[d.OrderKey] = true, d.Seq
			rs = append(rs, store.FinishedDelivery{ID: d.ID, Result: store.DeliveryResult{Status: store.DeliveryDelivered}})
		}
		s.outbox.mu.Lock()
		n := len(s.outbox.byID)
		s.outbox.mu.Unlock()
		if n > maxMemDeliveries {
			t.Fatalf("%d deliveries in memory", n)
		}
	}
	if len(seen) != added {
		t.Fatalf("claimed %d of %d", len(seen), added)
	}
}

// TestWebhookResultsRideSends: results queued for the writer loop commit
// in the transaction of the next batch of sends; results that fail to
// write fail alone, never a send.
func TestWebhookResultsRideSends(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	app, e := hookApp(t, s)
	c, err := s.UpsertGroup(ctx, app, "g", "G", "", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	addHookEvents(t, s, app, e.ID, 0, 10)
	ds, err := s.ClaimDeliveries(ctx, "n", time.Now(), time.Minute, 10)
	if err != nil || len(ds) != 10 {
		t.Fatalf("claimed %d: %v", len(ds), err)
	}
	st := map[int]*sql.Stmt{}
	for _, n := range append(chunkSizes, 0) {
		q := qHookTally
		if n > 0 {
			q = qHookFinishRows(n)
		}
		if st[n], err = s.wstmt(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	bad, err := s.wstmt(ctx, `INSERT INTO apps (id) VALUES (?)`) // fails: NOT NULL columns
	if err != nil {
		t.Fatal(err)
	}
	req := func(st map[int]*sql.Stmt, ds []store.Delivery) *resultsReq {
		rr := &resultsReq{st: st, done: make(chan struct{})}
		s.outbox.mu.Lock()
		for _, d := range ds {
			r := s.outbox.byID[d.ID]
			rr.todo = append(rr.todo, finished{r: r, res: store.DeliveryResult{Status: store.DeliveryDelivered, HTTPStatus: 200}, attempts: r.attempts})
		}
		s.outbox.mu.Unlock()
		return rr
	}
	sends := func() []*sendReq {
		var b []*sendReq
		for range 5 {
			b = append(b, &sendReq{ctx: ctx, res: make(chan sendRes, 1),
				m: store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`1`), At: time.Now()}})
		}
		return b
	}
	delivered := func() int {
		got, err := s.Deliveries(ctx, app, store.DeliveryQuery{Status: store.DeliveryDelivered, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	check := func(b []*sendReq) {
		t.Helper()
		for _, r := range b {
			if res := <-r.res; res.err != nil {
				t.Fatalf("send: %v", res.err)
			}
		}
	}

	good := req(st, ds[:5])
	batches := s.batches.Load()
	b := sends()
	s.commitBatch(b, []*resultsReq{good})
	check(b)
	<-good.done
	if good.err != nil || delivered() != 5 || s.batches.Load() != batches+1 || s.alone.Load() != 0 {
		t.Fatalf("rode: err %v, %d delivered, %d send transactions, %d alone", good.err, delivered(), s.batches.Load()-batches, s.alone.Load())
	}

	broken := map[int]*sql.Stmt{}
	for n, x := range st {
		broken[n] = x
	}
	broken[4], broken[1] = bad, bad
	failing := req(broken, ds[5:])
	b = sends()
	s.commitBatch(b, []*resultsReq{failing})
	check(b)
	<-failing.done
	if failing.err == nil || delivered() != 5 {
		t.Fatalf("failing results: err %v, %d delivered", failing.err, delivered())
	}
}
