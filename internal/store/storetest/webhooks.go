package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

var webhookTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"WebhookEndpoints", testWebhookEndpoints},
	{"WebhookOutboxWithSend", testWebhookOutboxWithSend},
	{"WebhookOutboxWithChange", testWebhookOutboxWithChange},
	{"WebhookClaimOrder", testWebhookClaimOrder},
	{"WebhookClaimLease", testWebhookClaimLease},
	{"WebhookFinish", testWebhookFinish},
	{"WebhookClaimConcurrent", testWebhookClaimConcurrent},
	{"WebhookFinishAndClaim", testWebhookFinishAndClaim},
	{"WebhookBatchedResults", testWebhookBatchedResults},
}

func setWebhook(t *testing.T, s store.Store, app, url string, events ...string) store.Endpoint {
	t.Helper()
	e, err := s.SetWebhook(ctx, store.Endpoint{AppID: app, URL: url, Secret: "sec-" + url, Events: events})
	if err != nil {
		t.Fatalf("SetWebhook: %v", err)
	}
	return e
}

func claim(t *testing.T, s store.Store, owner string, now time.Time, limit int) []store.Delivery {
	t.Helper()
	ds, err := s.ClaimDeliveries(ctx, owner, now, time.Minute, limit)
	if err != nil {
		t.Fatalf("ClaimDeliveries: %v", err)
	}
	return ds
}

func testWebhookEndpoints(t *testing.T, s store.Store) {
	app, other := newApp(t, s), newApp(t, s)
	e := setWebhook(t, s, app, "https://a.example/hook", "message.sent")
	if e.ID == "" || e.Secret != "sec-https://a.example/hook" || len(e.Events) != 1 || e.Status != store.EndpointActive {
		t.Fatalf("SetWebhook = %+v", e)
	}
	// Setting the same URL again updates it; an empty secret keeps the old one.
	e2, err := s.SetWebhook(ctx, store.Endpoint{AppID: app, URL: e.URL, Events: []string{"message.sent", "message.edited"}, TimeoutMS: 900, FailOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	if e2.ID != e.ID || e2.Secret != e.Secret || len(e2.Events) != 2 || e2.TimeoutMS != 900 || !e2.FailOpen {
		t.Fatalf("update = %+v, want id %s and the old secret", e2, e.ID)
	}
	setWebhook(t, s, app, "https://b.example/hook")
	list, err := s.Webhooks(ctx, app)
	if err != nil || len(list) != 2 || list[0].ID != e.ID && list[1].ID != e.ID {
		t.Fatalf("Webhooks = %+v, %v", list, err)
	}
	if list, _ := s.Webhooks(ctx, other); len(list) != 0 {
		t.Fatalf("another app sees %+v", list)
	}
	wantErr(t, "delete from another app", s.DeleteWebhook(ctx, other, e.ID), store.ErrNotFound)
	if err := s.DeleteWebhook(ctx, app, e.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete twice", s.DeleteWebhook(ctx, app, e.ID), store.ErrNotFound)
	if list, _ := s.Webhooks(ctx, app); len(list) != 1 {
		t.Fatalf("after delete: %+v", list)
	}
}

func sentEvent(app string, endpoints ...string) func(store.Message) *store.OutboxEvent {
	return func(m store.Message) *store.OutboxEvent {
		return &store.OutboxEvent{AppID: app, Type: "message.sent", OrderKey: m.ConversationID, Endpoints: endpoints,
			Data: json.RawMessage(fmt.Sprintf(`{"msgId":%q,"seq":%d}`, m.ID, m.Seq))}
	}
}

// testWebhookOutboxWithSend: a send writes its event with the message, on
// the grouped path and alone; a duplicate writes none.
func testWebhookOutboxWithSend(t *testing.T, s store.Store) {
	app := newApp(t, s)
	e := setWebhook(t, s, app, "https://a.example/hook", "message.sent")
	c := upsertGroup(t, s, app, "g", "alice", "bob")
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1,
				Content: json.RawMessage(`{"content":"x"}`), ClientMsgID: fmt.Sprintf("c%d", i%(n/2)), Event: sentEvent(app, e.ID)})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// A refused send writes nothing either.
	s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "mallory", Type: 1, Content: json.RawMessage(`{}`), Event: sentEvent(app, e.ID)})
	ds, err := s.Deliveries(ctx, app, store.DeliveryQuery{Status: -1, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != n/2 {
		t.Fatalf("%d deliveries for %d distinct messages", len(ds), n/2)
	}
	seqs := map[int64]bool{}
	for _, d := range ds {
		var data struct{ Seq int64 }
		json.Unmarshal(d.Data, &data)
		if seqs[data.Seq] || d.Type != "message.sent" || d.EndpointID != e.ID || d.Status != store.DeliveryPending || d.URL != e.URL {
			t.Fatalf("delivery %+v", d)
		}
		seqs[data.Seq] = true
	}
	// Paging by cursor, newest first.
	page, _ := s.Deliveries(ctx, app, store.DeliveryQuery{Status: -1, Limit: 5})
	next, _ := s.Deliveries(ctx, app, store.DeliveryQuery{Status: -1, Limit: 5, Before: page[4].Seq})
	if len(page) != 5 || len(next) != 5 || next[0].Seq >= page[4].Seq || page[0].Seq < page[1].Seq {
		t.Fatalf("pages %v / %v", page, next)
	}
}

// testWebhookOutboxWithChange: events bound to a store call commit with it,
// once, and not at all when it fails.
func testWebhookOutboxWithChange(t *testing.T, s store.Store) {
	app := newApp(t, s)
	e := setWebhook(t, s, app, "https://a.example/hook", "group.created")
	ev := &store.OutboxEvent{AppID: app, Type: "group.created", Endpoints: []string{e.ID}, Data: json.RawMessage(`{"groupId":"g"}`)}
	cctx := store.WithEvents(ctx, ev)
	if _, err := s.UpsertGroup(cctx, app, "g", "G", "", []string{"alice"}); err != nil {
		t.Fatal(err)
	}
	// The same context again writes nothing more.
	if err := s.AddMembers(cctx, app, "g", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	// A failing call writes nothing.
	ev2 := &store.OutboxEvent{AppID: app, Type: "group.members_changed", Endpoints: []string{e.ID}}
	if err := s.AddMembers(store.WithEvents(ctx, ev2), app, "nosuch", []string{"bob"}); err == nil {
		t.Fatal("AddMembers to no group succeeded")
	}
	// UpdateMessage reads the events when it commits: the callback fills them.
	c := upsertGroup(t, s, app, "g", "alice")
	m := send(t, s, c.ID, "alice", 1)
	ev3 := &store.OutboxEvent{AppID: app, Type: "message.edited", Endpoints: []string{e.ID}}
	if _, err := s.UpdateMessage(store.WithEvents(ctx, ev3), c.ID, m.ID, func(_ store.MessageTx, m *store.Message) error {
		m.Content = json.RawMessage(`{"content":"edited"}`)
		ev3.Data = json.RawMessage(fmt.Sprintf(`{"seq":%d}`, m.Seq))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ds, _ := s.Deliveries(ctx, app, store.DeliveryQuery{Status: -1, Limit: 10})
	if len(ds) != 2 || ds[1].Type != "group.created" || string(ds[1].Data) != `{"groupId":"g"}` || ds[1].EventID != ev.ID ||
		ds[0].Type != "message.edited" || string(ds[0].Data) != fmt.Sprintf(`{"seq":%d}`, m.Seq) {
		t.Fatalf("deliveries %+v", ds)
	}
}

// testWebhookClaimOrder: a claim takes each order key's pending deliveries
// as a run from the first, in order; a key with a claimed or retrying first
// delivery waits; a released run is claimed again whole.
func testWebhookClaimOrder(t *testing.T, s store.Store) {
	app := newApp(t, s)
	e := setWebhook(t, s, app, "https://a.example/hook", "x")
	var evs []*store.OutboxEvent
	for i := range 3 {
		evs = append(evs, &store.OutboxEvent{AppID: app, Type: "x", OrderKey: "c1", Endpoints: []string{e.ID}, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
	}
	evs = append(evs, &store.OutboxEvent{AppID: app, Type: "x", OrderKey: "c2", Endpoints: []string{e.ID}})
	if err := s.AddEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	ids := func(ds []store.Delivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.EventID)
		}
		return out
	}
	now := time.Now()
	// A limit keeps a prefix of each run.
	two := claim(t, s, "n0", now, 2)
	if fmt.Sprint(ids(two)) != fmt.Sprint([]string{evs[0].ID, evs[1].ID}) {
		t.Fatalf("claim of 2: %v", ids(two))
	}
	if more := claim(t, s, "n1", now, 10); fmt.Sprint(ids(more)) != fmt.Sprint([]string{evs[3].ID}) {
		t.Fatalf("claimed past c1's claimed run: %v", ids(more))
	}
	for _, d := range two {
		s.FinishDelivery(ctx, d.ID, "n0", store.DeliveryResult{Release: true})
	}
	got := claim(t, s, "n2", now, 10)
	if fmt.Sprint(ids(got)) != fmt.Sprint([]string{evs[0].ID, evs[1].ID, evs[2].ID}) || got[0].Attempts != 1 || got[0].Secret == "" {
		t.Fatalf("run of c1: %+v", got)
	}
	// The first fails and is retried later; the rest of its run is released.
	if err := s.FinishDeliveries(ctx, "n2", []store.FinishedDelivery{
		{ID: got[0].ID, Result: store.DeliveryResult{Status: store.DeliveryPending, NextAt: now.Add(time.Hour), Error: "500"}},
		{ID: got[1].ID, Result: store.DeliveryResult{Release: true}},
		{ID: got[2].ID, Result: store.DeliveryResult{Release: true}},
	}); err != nil {
		t.Fatal(err)
	}
	if more := claim(t, s, "n2", now, 10); len(more) != 0 {
		t.Fatalf("claimed past a retry: %v", ids(more))
	}
	again := claim(t, s, "n3", now.Add(2*time.Hour), 10) // c1 and c2 (whose lease expired)
	if len(again) != 4 || again[0].EventID != evs[0].ID || again[0].Attempts != 2 || again[1].Attempts != 1 {
		t.Fatalf("retry due: %+v", again)
	}
}

// testWebhookClaimLease: a claim that is not finished goes to another owner
// when its lease expires, and the first owner's late result is ignored.
func testWebhookClaimLease(t *testing.T, s store.Store) {
	app := newApp(t, s)
	e := setWebhook(t, s, app, "https://a.example/hook", "x")
	s.AddEvents(ctx, &store.OutboxEvent{AppID: app, Type: "x", OrderKey: "k", Endpoints: []string{e.ID}})
	now := time.Now()
	first := claim(t, s, "dead", now, 10)
	if len(first) != 1 {
		t.Fatalf("claim %+v", first)
	}
	if got := claim(t, s, "n2", now.Add(30*time.Second), 10); len(got) != 0 {
		t.Fatalf("claimed within the lease: %+v", got)
	}
	got := claim(t, s, "n2", now.Add(2*time.Minute), 10)
	if len(got) != 1 || got[0].ID != first[0].ID || got[0].Attempts != 2 {
		t.Fatalf("after the lease: %+v", got)
	}
	s.FinishDelivery(ctx, first[0].ID, "dead", store.DeliveryResult{Status: store.DeliveryFailed, Error: "late"})
	ds, _ := s.Deliveries(ctx, app, store.DeliveryQuery{Status: -1, Limit: 1})
	if ds[0].Status != store.DeliveryPending {
		t.Fatalf("the lost claim's result was recorded: %+v", ds[0])
	}
}

// testWebhookFinish: failures are counted per endpoint and pause it; a
// success resets them; redelivery and deletion.
func testWebhookFinish(t *testing.T, s store.Store) {
	app, other := newApp(t, s), newApp(t, s)
	e := setWebhook(t, s, app, "https://a.example/hook", "x")
	for range 3 {
		s.AddEvents(ctx, &store.OutboxEvent{AppID: app, Type: "x", Endpoints: []string{e.ID}})
	}
	now := time.Now()
	ds := claim(t, s, "n", now, 10)
	if len(ds) != 3 {
		t.Fatalf("claimed %d", len(ds))
	}
	s.FinishDelivery(ctx, ds[0].ID, "n", store.DeliveryResult{Status: store.DeliveryFailed, Error: "boom", HTTPStatus: 500, PauseAfter: 2,
		Data: json.RawMessage(`{"frozen":true}`)})
	s.FinishDelivery(ctx, ds[1].ID, "n", store.DeliveryResult{Status: store.DeliveryPending, NextAt: now, Error: "boom", PauseAfter: 2})
	list, _ := s.Webhooks(ctx, app)
	if len(list) != 1 || list[0].Status != store.EndpointPaused || list[0].Failures != 2 || list[0].Reason == "" {
		t.Fatalf("endpoint after 2 failures: %+v", list[0])
	}
	if got := claim(t, s, "n", now.Add(time.Hour), 10); len(got) != 0 {
		t.Fatalf("claimed for a paused endpoint: %+v", got)
	}
	failed, _ := s.Deliveries(ctx, app, store.DeliveryQuery{Status: store.DeliveryFailed, Limit: 10})
	if len(failed) != 1 || failed[0].ID != ds[0].ID || failed[0].LastStatus != 500 || failed[0].LastError != "boom" ||
		string(failed[0].Data) != `{"frozen":true}` || failed[0].DoneAt.IsZero() {
		t.Fatalf("failed: %+v", failed)
	}
	// Setting the endpoint again resumes it.
	setWebhook(t, s, app, e.URL, "x")
	wantErr(t, "redeliver another app's", s.Redeliver(ctx, other, ds[0].ID), store.ErrNotFound)
	if err := s.Redeliver(ctx, app, ds[0].ID); err != nil {
		t.Fatal(err)
	}
	got := claim(t, s, "m", now.Add(2*time.Hour), 10)
	if len(got) != 3 { // the redelivered one, the retry and the one whose lease expired
		t.Fatalf("after resume: %+v", got)
	}
	for _, d := range got {
		s.FinishDelivery(ctx, d.ID, "m", store.DeliveryResult{Status: store.DeliveryDelivered, HTTPStatus: 204})
	}
	list, _ = s.Webhooks(ctx, app)
	if list[0].Failures != 0 {
		t.Fatalf("failures after success: %+v", list[0])
	}
	// Deleting the endpoint fails what it had pending.
	if err := s.DeleteWebhook(ctx, app, e.ID); err != nil {
		t.Fatal(err)
	}
	pending, _ := s.Deliveries(ctx, app, store.DeliveryQuery{Status: store.DeliveryPending, Limit: 10})
	if len(pending) != 0 {
		t.Fatalf("pending after delete: %+v", pending)
	}
	// A delivery of a deleted endpoint cannot be redelivered: it would
	// stay pending for ever.
	wantErr(t, "redeliver for a deleted endpoint", s.Redeliver(ctx, app, ds[0].ID), store.ErrEndpointDeleted)
	if pending, _ := s.Deliveries(ctx, app, store.DeliveryQuery{Status: store.DeliveryPending, Limit: 10}); len(pending) != 0 {
		t.Fatalf("pending after a refused redelivery: %+v", pending)
	}
	wantErr(t, "redeliver none", s.Redeliver(ctx, app, store.NewID()), store.ErrNotFound)
}

// testWebhookClaimConcurrent: owners claiming at once never get the same
// delivery.
func testWebhookClaimConcurrent(t *testing.T, s store.Store) {
	app := newApp(t, s)
	e := setWebhook(t, s, app, "https://a.example/hook", "x")
	const n = 200
	var evs []*store.OutboxEvent
	for i := range n {
		evs = append(evs, &store.OutboxEvent{AppID: app, Type: "x", OrderKey: fmt.Sprintf("k%d", i%20), Endpoints: []string{e.ID}})
	}
	if err := s.AddEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		owner := fmt.Sprintf("n%d", w)
		wg.Go(func() {
			for idle := 0; idle < 3; {
				ds, err := s.ClaimDeliveries(ctx, owner, time.Now(), time.Minute, 7)
				if err != nil {
					errs <- err
					return
				}
				if len(ds) == 0 {
					idle++
					time.Sleep(5 * time.Millisecond)
					continue
				}
				idle = 0
				for _, d := range ds {
					mu.Lock()
					if prev, ok := seen[d.ID]; ok {
						mu.Unlock()
						errs <- fmt.Errorf("%s claimed by %s and %s", d.ID, prev, owner)
						return
					}
					seen[d.ID] = owner
					mu.Unlock()
					if err := s.FinishDelivery(ctx, d.ID, owner, store.DeliveryResult{Status: store.DeliveryDelivered}); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("delivered %d of %d", len(seen), n)
	}
}

// testWebhookFinishAndClaim: results and a claim in one call; the claim
// sees the results (a key's next delivery follows the one just finished),
// and a retry holds its key back.
func testWebhookFinishAndClaim(t *testing.T, s store.Store) {
	app := newApp(t, s)
	e := setWebhook(t, s, app, "https://a.example/hook", "x")
	for _, key := range []string{"k", "k", "j", "j"} {
		s.AddEvents(ctx, &store.OutboxEvent{AppID: app, Type: "x", OrderKey: key, Endpoints: []string{e.ID}})
	}
	now := time.Now()
	first := claim(t, s, "n", now, 1)
	if len(first) != 1 || first[0].OrderKey != "k" {
		t.Fatalf("first claim: %+v", first)
	}
	// Nothing to record and no room: nothing happens.
	if got, err := s.FinishAndClaim(ctx, "n", nil, now, time.Minute, 0); err != nil || len(got) != 0 {
		t.Fatalf("empty FinishAndClaim: %v %+v", err, got)
	}
	got, err := s.FinishAndClaim(ctx, "n", []store.FinishedDelivery{{ID: first[0].ID, Result: store.DeliveryResult{Status: store.DeliveryDelivered, HTTPStatus: 200}}},
		now, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].OrderKey != "k" || got[0].URL != e.URL || got[0].Secret == "" || got[0].Attempts != 1 {
		t.Fatalf("claimed after the first result: %+v", got)
	}
	// The second k fails (retry later), j's are delivered: nothing is left
	// to claim now, and the retry is not due.
	// Results count in order: the failure after the successes is one.
	var rs []store.FinishedDelivery
	for _, d := range got[1:] {
		rs = append(rs, store.FinishedDelivery{ID: d.ID, Result: store.DeliveryResult{Status: store.DeliveryDelivered, HTTPStatus: 204}})
	}
	rs = append(rs, store.FinishedDelivery{ID: got[0].ID, Result: store.DeliveryResult{Status: store.DeliveryPending, NextAt: now.Add(time.Hour), Error: "boom"}})
	if again, err := s.FinishAndClaim(ctx, "n", rs, now, time.Minute, 10); err != nil || len(again) != 0 {
		t.Fatalf("after the results: %v %+v", err, again)
	}
	done, _ := s.Deliveries(ctx, app, store.DeliveryQuery{Status: store.DeliveryDelivered, Limit: 10})
	pending, _ := s.Deliveries(ctx, app, store.DeliveryQuery{Status: store.DeliveryPending, Limit: 10})
	if len(done) != 3 || len(pending) != 1 || pending[0].ID != got[0].ID || pending[0].LastError != "boom" {
		t.Fatalf("delivered %+v, pending %+v", done, pending)
	}
	if list, _ := s.Webhooks(ctx, app); list[0].Failures != 1 {
		t.Fatalf("failures: %+v", list[0])
	}
}

// testWebhookBatchedResults: many events from sends and changes, claimed
// and recorded in batches the way the worker does (each batch's results
// with the next claim, some released): each is claimed once per attempt,
// delivered exactly once, in order per key, and every result is stored.
func testWebhookBatchedResults(t *testing.T, s store.Store) {
	app := newApp(t, s)
	e := setWebhook(t, s, app, "https://a.example/hook", "message.sent", "x")
	c := upsertGroup(t, s, app, "g", "alice", "bob")
	const sends, others = 300, 100
	var wg sync.WaitGroup
	for i := range sends {
		wg.Go(func() {
			if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1,
				Content: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), Event: sentEvent(app, e.ID)}); err != nil {
				t.Error(err)
			}
		})
	}
	for i := range others {
		wg.Go(func() {
			if err := s.AddEvents(ctx, &store.OutboxEvent{AppID: app, Type: "x", OrderKey: fmt.Sprintf("k%d", i%7), Endpoints: []string{e.ID},
				Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	delivered := map[string]int{}
	lastSeq := map[string]int64{} // per key: the last delivered seq
	var rs []store.FinishedDelivery
	now := time.Now()
	for round := 0; round < 1000; round++ {
		ds, err := s.FinishAndClaim(ctx, "n", rs, now, time.Minute, 37)
		if err != nil {
			t.Fatal(err)
		}
		rs = rs[:0]
		if len(ds) == 0 {
			break
		}
		released := map[string]bool{}
		for i, d := range ds {
			// Every seventh of a claim is released with the rest of its
			// key's run (as after a failure), to be claimed again.
			if (i+round)%7 == 3 || released[d.OrderKey] {
				released[d.OrderKey] = true
				rs = append(rs, store.FinishedDelivery{ID: d.ID, Result: store.DeliveryResult{Release: true}})
				continue
			}
			if d.Seq <= lastSeq[d.OrderKey] {
				t.Fatalf("key %s: seq %d delivered after %d", d.OrderKey, d.Seq, lastSeq[d.OrderKey])
			}
			lastSeq[d.OrderKey] = d.Seq
			delivered[d.ID]++
			if d.Attempts != 1 || len(d.Data) == 0 || d.URL != e.URL {
				t.Fatalf("claimed %+v", d)
			}
			rs = append(rs, store.FinishedDelivery{ID: d.ID, Result: store.DeliveryResult{Status: store.DeliveryDelivered, HTTPStatus: 200 + i%3}})
		}
	}
	if len(delivered) != sends+others {
		t.Fatalf("delivered %d of %d", len(delivered), sends+others)
	}
	for id, n := range delivered {
		if n != 1 {
			t.Fatalf("%s delivered %d times", id, n)
		}
	}
	var all []store.Delivery
	for before := int64(0); ; {
		page, err := s.Deliveries(ctx, app, store.DeliveryQuery{Status: -1, Before: before, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 200 {
			break
		}
		before = page[len(page)-1].Seq
	}
	if len(all) != sends+others {
		t.Fatalf("listed %d deliveries", len(all))
	}
	for _, d := range all {
		if d.Status != store.DeliveryDelivered || d.Attempts != 1 || d.LastStatus < 200 || d.LastStatus > 202 || d.DoneAt.IsZero() {
			t.Fatalf("stored %+v", d)
		}
	}
}
