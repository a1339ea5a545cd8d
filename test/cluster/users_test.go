package cluster_test

import (
	"context"
	"testing"

	"github.com/chatd/chatd/internal/testenv"
)

// TestClusterUserChanges: nodes remember users for the send path, so a
// change made through one node must reach the others. A rename through
// node 0 shows in the titles of sends through node 1, which had the old
// name in memory; a revocation through node 0 closes the user's socket on
// node 1, and the old token is refused there.
func TestClusterUserChanges(t *testing.T) {
	for _, b := range []struct{ name, env string }{
		{"redis", "CHATD_TEST_REDIS"},
		{"nats", "CHATD_TEST_NATS"},
	} {
		t.Run(b.name, func(t *testing.T) {
			c := newCluster(t, 2, freshSchema(t), testenv.URL(t, b.env))
			annTok := c.token(0, "ann")
			ben := dialDevice(t, c, "ben@node1", "ben", c.token(0, "ben"), 1)
			ann := dialDevice(t, c, "ann@node1", "ann", annTok, 1)

			title := func() (string, string) {
				t.Helper()
				m, err := ben.send("send-private-message", "ann", "hello", "")
				if err != nil {
					t.Fatalf("send through node 1: %v", err)
				}
				return m.SendSession.Title, m.SendSession.Avatar
			}
			if got, _ := title(); got != displayName("ann") {
				t.Fatalf("first send titled %q; want %q", got, displayName("ann"))
			}
			c.call(0, "POST", "/user/getToken", map[string]any{"userId": "ann", "name": "Ann Renamed", "avatarUri": "https://a.example/new"})
			var got, avatar string
			if !waitUntil(func() bool { got, avatar = title(); return got == "Ann Renamed" }) || avatar != "https://a.example/new" {
				t.Fatalf("after a rename through node 0, node 1 titles ben's session %q %q", got, avatar)
			}

			c.call(0, "POST", "/user/revokeToken", map[string]any{"userId": "ann"})
			select {
			case <-ann.disconnected():
			case <-contextDone(t):
				t.Fatal("ann's socket on node 1 outlived the revocation of her tokens")
			}
			d := newDevice("ann-again@node1", "ann", annTok, c.app.AppID)
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			if err := d.connect(ctx, 1, c.node(1).base); err == nil {
				d.close()
				t.Fatal("node 1 accepted a revoked token")
			}
			// Sends to her still work, with her current name.
			if got, _ := title(); got != "Ann Renamed" {
				t.Fatalf("after the revocation node 1 titles ben's session %q", got)
			}
		})
	}
}

// contextDone is closed after waitLimit, or when the test ends.
func contextDone(t *testing.T) <-chan struct{} {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx.Done()
}
