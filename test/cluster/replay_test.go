package cluster_test

import (
	"strings"
	"testing"
)

// TestClusterReplay: a signed request replayed to another node is refused,
// because nodes sharing PostgreSQL share the nonces of signed requests.
func TestClusterReplay(t *testing.T) {
	c := newCluster(t, 2, freshSchema(t), "memory")
	body := c.signed(map[string]any{"userId": "replayed", "name": "R", "avatarUri": ""})
	if r := c.do(0, "POST", "/user/getToken", body, ""); r.Status != 1 {
		t.Fatalf("first use: %+v", r)
	}
	for i := range 2 {
		r := c.do(i, "POST", "/user/getToken", body, "")
		if r.Status != 1004 || !strings.Contains(r.Message, "nonce_str already used") {
			t.Errorf("replay to node %d: %+v; want 1004 nonce_str already used", i, r)
		}
	}
}
