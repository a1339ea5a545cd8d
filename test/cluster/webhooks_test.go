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

// TestClusterWebhookDeadNodeOffline: when a node is SIGKILLed, its users
// who have no socket left on a live node get user.offline exactly once,
// from the one survivor that claims the dead node (docs/webhooks.md), within
// the presence bound (docs/socket-protocol.md, Presence: 20 s) and the
// delivery's own time; a user still connected to a survivor gets none.
func TestClusterWebhookDeadNodeOffline(t *testing.T) {
	for _, b := range []struct{ name, env string }{{"redis", "CHATD_TEST_REDIS"}, {"nats", "CHATD_TEST_NATS"}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel() // each broker's cluster has its own schema and app
			type offline struct {
				eventID string
				at      int64
			}
			var mu sync.Mutex
			got := map[string][]offline{} // user → user.offline deliveries
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				var ev struct {
					ID, Type string
					Data     struct {
						UserID string `json:"userId"`
						At     int64  `json:"at"`
					}
				}
				json.Unmarshal(b, &ev)
				if ev.Type == "user.offline" {
					mu.Lock()
					got[ev.Data.UserID] = append(got[ev.Data.UserID], offline{ev.ID, ev.Data.At})
					mu.Unlock()
				}
			}))
			defer srv.Close()
			deliveries := func(user string) []offline {
				mu.Lock()
				defer mu.Unlock()
				return append([]offline(nil), got[user]...)
			}

			c := newCluster(t, 3, freshSchema(t), testenv.URL(t, b.env), withEnv("CHATD_PRESENCE_GRACE=100ms",
				"CHATD_WEBHOOK_ALLOW_PRIVATE=true", "CHATD_WEBHOOK_POLL=50ms", "CHATD_WEBHOOK_RETRY_BASE=50ms"))
			c.call(0, "POST", "/app/webhooks/set", map[string]any{"url": srv.URL, "events": []string{"user.offline"}})
			time.Sleep(1200 * time.Millisecond) // every node's copy of the endpoints (docs/webhooks.md)
			online := func(node int, user string) bool {
				r := c.call(node, "GET", "/user/online", map[string]any{"userIds": []string{user}})
				var st []struct {
					Online bool `json:"online"`
				}
				json.Unmarshal(r.Data, &st)
				return len(st) == 1 && st[0].Online
			}
			// solo is on node 1 only; both is on nodes 1 and 2.
			dialDevice(t, c, "solo@node1", "solo", c.token(0, "solo"), 1)
			bothTok := c.token(0, "both")
			dialDevice(t, c, "both@node1", "both", bothTok, 1)
			dialDevice(t, c, "both@node2", "both", bothTok, 2)
			if !waitUntil(func() bool { return online(0, "solo") && online(2, "solo") && online(0, "both") }) {
				t.Fatal("solo and both are not online on the other nodes")
			}

			killed := time.Now()
			c.node(1).p.kill()
			if !waitUntilFor(30*time.Second, func() bool { return len(deliveries("solo")) > 0 }) {
				t.Fatalf("solo's node was killed: no user.offline 30 s later (online on node 0: %v)", online(0, "solo"))
			}
			after := time.Since(killed)
			// Both survivors take the node as dead within a beat (5 s) of
			// each other; a second event would have arrived by now.
			time.Sleep(6 * time.Second)
			solo := deliveries("solo")
			if len(solo) != 1 {
				t.Fatalf("solo: %d user.offline deliveries, want 1: %v", len(solo), solo)
			}
			if at := time.UnixMilli(solo[0].at); at.After(killed) || killed.Sub(at) > 10*time.Second {
				t.Errorf("solo's user.offline at %v, the node was killed at %v (at: when the node was last heard of)", at, killed)
			}
			if n := deliveries("both"); len(n) != 0 || !online(0, "both") {
				t.Errorf("both is still connected to node 2: user.offline %v, online on node 0 %v", n, online(0, "both"))
			}
			t.Logf("user.offline delivered %v after the kill", after.Round(100*time.Millisecond))
		})
	}
}
