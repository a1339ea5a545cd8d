package cluster_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/testenv"
)

// TestClusterPresence: a user connected to one node is online on the other;
// offline after the grace period once their socket closes; a node started
// later learns who is online; the users of a SIGKILLed node go offline on
// the survivors by themselves, within the stated bound (20 s).
func TestClusterPresence(t *testing.T) {
	for _, b := range []struct{ name, env string }{{"redis", "CHATD_TEST_REDIS"}, {"nats", "CHATD_TEST_NATS"}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel() // each broker's cluster has its own schema and app
			c := newCluster(t, 3, freshSchema(t), testenv.URL(t, b.env), withEnv("CHATD_PRESENCE_GRACE=100ms"))
			online := func(node int, user string) bool {
				r := c.call(node, "GET", "/user/online", map[string]any{"userIds": []string{user}})
				var st []struct {
					UserID string `json:"userId"`
					Online bool   `json:"online"`
				}
				json.Unmarshal(r.Data, &st)
				return len(st) == 1 && st[0].Online
			}
			ben := dialDevice(t, c, "ben@node0", "ben", c.token(0, "ben"), 0)
			if !waitUntil(func() bool { return online(1, "ben") && online(2, "ben") }) {
				t.Fatal("ben on node 0 is not online on nodes 1 and 2")
			}
			ben.close()
			if !waitUntil(func() bool { return !online(1, "ben") }) {
				t.Fatal("ben closed his socket: still online on node 1")
			}

			// A node that starts later is told who is online.
			dialDevice(t, c, "cat@node0", "cat", c.token(0, "cat"), 0)
			if !waitUntil(func() bool { return online(2, "cat") }) {
				t.Fatal("cat is not online on node 2")
			}
			c.node(2).p.stop()
			c.restart(2)
			if !waitUntil(func() bool { return online(2, "cat") }) {
				t.Fatal("restarted node 2 does not know cat is online")
			}

			// SIGKILL node 0: cat goes offline on the others by itself.
			killed := time.Now()
			c.node(0).p.kill()
			if !waitUntilFor(25*time.Second, func() bool { return !online(1, "cat") && !online(2, "cat") }) {
				t.Fatal("cat's node was killed: still online 25 s later")
			}
			t.Logf("offline %v after the kill", time.Since(killed).Round(time.Second))
		})
	}
}
