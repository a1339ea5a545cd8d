package cluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/testenv"
)

// TestClusterWebhooks: two nodes on one PostgreSQL outbox deliver each
// event exactly once, whichever node wrote it (docs/webhooks.md). Nodes
// claim due rows with FOR UPDATE SKIP LOCKED; a node picks up what another
// wrote at its next poll.
func TestClusterWebhooks(t *testing.T) {
	t.Setenv("CHATD_WEBHOOK_ALLOW_PRIVATE", "true")
	t.Setenv("CHATD_WEBHOOK_POLL", "50ms")
	t.Setenv("CHATD_WEBHOOK_RETRY_BASE", "50ms")
	var mu sync.Mutex
	got := map[string]int{}
	types := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev struct{ ID, Type string }
		json.Unmarshal(b, &ev)
		mu.Lock()
		got[ev.ID]++
		if got[ev.ID] == 1 {
			types[ev.Type]++
		}
		mu.Unlock()
	}))
	defer srv.Close()

	c := newCluster(t, 2, freshSchema(t), testenv.URL(t, "CHATD_TEST_REDIS"))
	c.call(0, "POST", "/app/webhooks/set", map[string]any{"url": srv.URL, "events": []string{
		"message.sent", "message.edited", "group.created", "group.members_changed", "group.dismissed"}})
	for _, u := range []string{"ann", "bo"} {
		c.token(0, u)
	}
	// Each node trusts its copy of the app's endpoints for a second
	// (docs/webhooks.md): node 1 learns of the endpoint set on node 0.
	time.Sleep(1200 * time.Millisecond)

	const perNode = 40
	want := map[string]int{"message.sent": 2 * perNode, "group.created": 2, "group.members_changed": 2, "group.dismissed": 2}
	var wg sync.WaitGroup
	for n := range 2 {
		wg.Go(func() {
			group := fmt.Sprintf("g%d", n)
			c.call(n, "POST", "/group/create", map[string]any{"groupId": group, "name": group, "userIds": []string{"ann"}})
			c.call(n, "POST", "/group/join", map[string]any{"groupId": group, "userIds": []string{"bo"}})
			for i := range perNode {
				c.call(n, "POST", "/private/send/message", map[string]any{"senderUserId": "ann", "targetId": "bo",
					"messageType": 1, "content": map[string]any{"content": fmt.Sprintf("n%d-%d", n, i)}})
			}
			c.call(n, "POST", "/group/dismiss", map[string]any{"groupId": group})
		})
	}
	wg.Wait()
	total := 0
	for _, n := range want {
		total += n
	}
	if !waitUntil(func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= total }) {
		mu.Lock()
		t.Fatalf("got %d of %d events: %v", len(got), total, types)
	}
	time.Sleep(time.Second) // a duplicate would arrive by now
	mu.Lock()
	defer mu.Unlock()
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	for typ, n := range want {
		if types[typ] != n {
			t.Errorf("%s: %d events, want %d", typ, types[typ], n)
		}
	}
	if len(got) != total {
		t.Errorf("%d events, want %d", len(got), total)
	}
}
