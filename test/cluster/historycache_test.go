package cluster_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/testenv"
)

// TestClusterHistoryCache: a page cached on node 1 (read twice) is never
// served stale after a change made through node 0 (docs/architecture.md,
// The history cache): an edit, a reaction, a recall and a send show at once
// (the cache checks the conversation's versions in the store), a new name
// once the users topic has reached node 1.
func TestClusterHistoryCache(t *testing.T) {
	c := newCluster(t, 2, freshSchema(t), testenv.URL(t, "CHATD_TEST_REDIS"))
	ben := dialDevice(t, c, "ben@node0", "ben", c.token(0, "ben"), 0)
	cat := dialDevice(t, c, "cat@node1", "cat", c.token(0, "cat"), 1)
	c.call(0, "POST", "/group/create", map[string]any{"groupId": "room", "name": "Room", "userIds": []string{"ben", "cat"}})
	m, err := ben.send("send-group-message", "room", "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	catSID := ""
	for _, s := range c.sessionsHTTP(1, "cat") {
		if s.TargetID == "room" {
			catSID = s.SID
		}
	}
	type page []struct {
		MsgID     string          `json:"msgId"`
		Content   json.RawMessage `json:"content"`
		Recalled  bool            `json:"recalled"`
		SendUser  struct{ Name string }
		Reactions []struct{ Emoji string }
	}
	// history reads cat's newest page on node 1 twice: the second is the
	// cached one when nothing changed in between.
	history := func() page {
		t.Helper()
		var p page
		for range 2 {
			if err := cat.emit("session-message-list", map[string]any{"sid": catSID, "limit": 20}, &p); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	history()
	emit := func(d *device, event string, arg map[string]any) {
		t.Helper()
		if err := d.emit(event, arg, nil); err != nil {
			t.Fatalf("%s: %v", event, err)
		}
	}
	emit(ben, "edit-message", map[string]any{"sid": m.SendSession.SID, "msgId": m.MsgID, "content": map[string]any{"content": "hello!"}})
	if p := history(); len(p) != 1 || !strings.Contains(string(p[0].Content), "hello!") {
		t.Fatalf("after an edit through node 0, node 1 answered %+v", p)
	}
	emit(ben, "react", map[string]any{"sid": m.SendSession.SID, "msgId": m.MsgID, "emoji": "👍"})
	if p := history(); len(p) != 1 || len(p[0].Reactions) != 1 {
		t.Fatalf("after a reaction through node 0, node 1 answered %+v", p)
	}
	m2, err := ben.send("send-group-message", "room", "again", "")
	if err != nil {
		t.Fatal(err)
	}
	if p := history(); len(p) != 2 || p[0].MsgID != m2.MsgID {
		t.Fatalf("after a send through node 0, node 1 answered %+v", p)
	}
	c.call(0, "POST", "/message/recall", map[string]any{"msgId": m.MsgID, "conversationType": 2, "targetId": "room"})
	if p := history(); len(p) != 2 || !p[1].Recalled {
		t.Fatalf("after a recall through node 0, node 1 answered %+v", p)
	}
	c.call(0, "POST", "/user/getToken", map[string]any{"userId": "ben", "name": "Ben Renamed"})
	if !waitUntil(func() bool { p := history(); return len(p) == 2 && p[0].SendUser.Name == "Ben Renamed" }) {
		t.Fatalf("node 1 still shows ben's old name: %+v", history())
	}
}
