package cluster_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/testenv"
)

// TestClusterGroupEventsAndProfiles: a group change made through node 0 is
// stored as a notice and pushed to a member on node 1; a mute set through
// node 0 refuses a send through node 1; a rename through node 0 reaches the
// sendUser of the next send through node 1.
func TestClusterGroupEventsAndProfiles(t *testing.T) {
	c := newCluster(t, 2, freshSchema(t), testenv.URL(t, "CHATD_TEST_REDIS"))
	ben := dialDevice(t, c, "ben@node1", "ben", c.token(0, "ben"), 1)
	c.token(0, "cat")
	c.call(0, "POST", "/group/create", map[string]any{"groupId": "club", "name": "Club", "userIds": []string{"ben", "cat"}})
	c.call(0, "POST", "/group/join", map[string]any{"groupId": "club", "userIds": []string{"dan"}})

	notice := func() (message, bool) {
		ben.mu.Lock()
		defer ben.mu.Unlock()
		for _, r := range ben.log {
			if r.msg.MessageType == 7 {
				return r.msg, true
			}
		}
		return message{}, false
	}
	if !waitUntil(func() bool { _, ok := notice(); return ok }) {
		t.Fatal("ben on node 1 got no notice of dan joining through node 0")
	}
	n, _ := notice()
	var content struct{ Content, Event string }
	json.Unmarshal(n.Content, &content)
	if content.Event != "joined" || content.Content != "dan joined the group" {
		t.Fatalf("notice = %s", n.Content)
	}

	c.call(0, "POST", "/group/mute", map[string]any{"groupId": "club", "userIds": []string{"ben"}, "until": time.Now().Add(time.Hour).UnixMilli()})
	if _, err := ben.send("send-group-message", "club", "hush", ""); err == nil {
		t.Fatal("a send through node 1 by a member muted through node 0 went through")
	}
	c.call(0, "POST", "/group/unmute", map[string]any{"groupId": "club", "userIds": []string{"ben"}})

	c.call(0, "POST", "/user/update", map[string]any{"userId": "ben", "name": "Benjamin"})
	// The change reaches node 1's user cache through the broker.
	renamed := waitUntil(func() bool {
		var sent struct {
			SendUser struct{ Name string } `json:"sendUser"`
		}
		err := ben.emit("send-group-message", map[string]any{"targetId": "club", "messageType": 1, "content": map[string]any{"content": "hi"}}, &sent)
		return err == nil && sent.SendUser.Name == "Benjamin"
	})
	if !renamed {
		t.Fatal("sends through node 1 never showed the name changed through node 0")
	}
}
