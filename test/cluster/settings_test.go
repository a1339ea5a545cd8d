package cluster_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/testenv"
)

// settingsOf returns the newest session-updated push d got for sid.
func (d *device) settingsOf(sid string) (st struct {
	SID    string `json:"sid"`
	Pinned bool   `json:"pinned"`
	Muted  bool   `json:"muted"`
	Hidden bool   `json:"hidden"`
	Draft  string `json:"draft"`
}, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, raw := range d.settings {
		var x = st
		if json.Unmarshal(raw, &x) == nil && x.SID == sid {
			st, ok = x, true
		}
	}
	return st, ok
}

// TestClusterSettings: a pin and mute made on a device on one node reach
// the same user's device on the other node, over Redis and NATS; a hide
// made over HTTP on one node is seen in the list on the other; a block made
// through one node refuses, on the other node, sends that node let through
// a moment before (its cached blocks are forgotten through the broker,
// well before their expiry).
func TestClusterSettings(t *testing.T) {
	for _, b := range []struct{ name, env string }{{"redis", "CHATD_TEST_REDIS"}, {"nats", "CHATD_TEST_NATS"}} {
		t.Run(b.name, func(t *testing.T) {
			c := newCluster(t, 2, freshSchema(t), testenv.URL(t, b.env))
			tok := c.token(0, "ben")
			c.token(0, "cat")
			ben0 := dialDevice(t, c, "ben@node0", "ben", tok, 0)
			ben1 := dialDevice(t, c, "ben@node1", "ben", tok, 1)
			hi := map[string]any{"senderUserId": "cat", "targetId": "ben", "messageType": 1, "content": map[string]any{"content": "hi"}}
			c.call(1, "POST", "/private/send/message", hi)
			sid := c.sessionsHTTP(0, "ben")[0].SID

			if err := ben0.emit("session-update", map[string]any{"sid": sid, "pinned": true, "muted": true, "draft": "later"}, nil); err != nil {
				t.Fatal(err)
			}
			if !waitUntil(func() bool { st, ok := ben1.settingsOf(sid); return ok && st.Pinned && st.Muted && st.Draft == "later" }) {
				t.Fatal("ben@node1 did not get the settings made on node 0")
			}
			if _, ok := ben0.settingsOf(sid); ok {
				t.Fatal("the device that made the change was pushed it too")
			}
			c.call(1, "POST", "/session/hide", map[string]any{"userId": "ben", "sid": sid})
			if !waitUntil(func() bool { st, ok := ben0.settingsOf(sid); return ok && st.Hidden }) {
				t.Fatal("ben@node0 did not get the hide made over HTTP on node 1")
			}
			if ss := c.sessionsHTTP(0, "ben"); len(ss) != 0 {
				t.Fatalf("hidden session still listed on node 0: %+v", ss)
			}

			// Node 1 caches cat → ben as allowed; a block through node 0
			// makes it forget.
			c.call(1, "POST", "/private/send/message", hi)
			blocked := time.Now()
			if err := ben0.emit("block-user", map[string]any{"userIds": []string{"cat"}}, nil); err != nil {
				t.Fatal(err)
			}
			refused := waitUntilFor(2*time.Second, func() bool {
				r := c.do(1, "POST", "/private/send/message", c.signed(hi), "")
				return r.HTTP == 403 && strings.HasPrefix(r.Message, "blocked")
			})
			if !refused {
				t.Fatal("node 1 still lets cat's sends to ben through after the block")
			}
			t.Logf("refused on node 1 %v after the block", time.Since(blocked).Round(time.Millisecond))
		})
	}
}
