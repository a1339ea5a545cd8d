package cluster_test

import (
	"encoding/json"
	"testing"

	"github.com/chatd/chatd/internal/testenv"
)

// update is the part of a message-updated push the test checks.
type update struct {
	SID       string `json:"sid"`
	MsgID     string `json:"msgId"`
	Version   int64  `json:"version"`
	EditCount int    `json:"editCount"`
	Recalled  bool   `json:"recalled"`
	Reactions []struct {
		Emoji string `json:"emoji"`
		Count int    `json:"count"`
	} `json:"reactions"`
}

// latest returns the newest update d got for msgID.
func (d *device) latest(msgID string) (update, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var best update
	found := false
	for _, raw := range d.updates {
		var u update
		if json.Unmarshal(raw, &u) == nil && u.MsgID == msgID && u.Version >= best.Version {
			best, found = u, true
		}
	}
	return best, found
}

// TestClusterMessageUpdates: edits, reactions and recalls made through one
// node reach devices on the other, and sync-changes on either node
// returns the same final state.
func TestClusterMessageUpdates(t *testing.T) {
	c := newCluster(t, 2, freshSchema(t), testenv.URL(t, "CHATD_TEST_REDIS"))
	ben := dialDevice(t, c, "ben@node0", "ben", c.token(0, "ben"), 0)
	cat := dialDevice(t, c, "cat@node1", "cat", c.token(0, "cat"), 1)
	c.call(0, "POST", "/group/create", map[string]any{"groupId": "room", "name": "Room", "userIds": []string{"ben", "cat"}})

	m, err := ben.send("send-group-message", "room", "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	if !waitUntil(func() bool { return cat.hasMsg(m.MsgID) }) {
		t.Fatal("cat did not get the message")
	}
	catSID := ""
	for _, s := range c.sessionsHTTP(1, "cat") {
		if s.TargetID == "room" {
			catSID = s.SID
		}
	}
	reached := func(d *device, pred func(update) bool) bool {
		return waitUntil(func() bool { u, ok := d.latest(m.MsgID); return ok && pred(u) })
	}

	// Edit through node 0, seen on node 1.
	if err := ben.emit("edit-message", map[string]any{"sid": m.SendSession.SID, "msgId": m.MsgID, "content": map[string]any{"content": "hello!"}}, nil); err != nil {
		t.Fatal(err)
	}
	if !reached(cat, func(u update) bool { return u.EditCount == 1 && u.SID == catSID }) {
		t.Fatal("cat@node1 did not get the edit made through node 0")
	}
	// Reaction through node 1, seen on node 0.
	if err := cat.emit("react", map[string]any{"sid": catSID, "msgId": m.MsgID, "emoji": "👍"}, nil); err != nil {
		t.Fatal(err)
	}
	if !reached(ben, func(u update) bool { return len(u.Reactions) == 1 && u.Reactions[0].Count == 1 }) {
		t.Fatal("ben@node0 did not get the reaction made through node 1")
	}
	// Recall by the app through node 1, seen on both.
	if r := c.call(1, "POST", "/message/recall", map[string]any{"msgId": m.MsgID, "conversationType": 2, "targetId": "room"}); r.Status != 1 {
		t.Fatalf("recall: %+v", r)
	}
	for _, d := range []*device{ben, cat} {
		if !reached(d, func(u update) bool { return u.Recalled && u.Version == 3 }) {
			t.Fatalf("%s did not get the recall", d.name)
		}
	}
	// Both nodes answer sync-changes with the same final state.
	for _, d := range []*device{ben, cat} {
		sid := catSID
		if d == ben {
			sid = m.SendSession.SID
		}
		var ch struct {
			Messages []update `json:"messages"`
			Version  int64    `json:"version"`
		}
		if err := d.emit("sync-changes", map[string]any{"sid": sid, "afterVersion": 0}, &ch); err != nil {
			t.Fatal(err)
		}
		if len(ch.Messages) != 1 || !ch.Messages[0].Recalled || ch.Version != 3 || len(ch.Messages[0].Reactions) != 0 {
			t.Fatalf("%s: sync-changes = %+v", d.name, ch)
		}
	}
}
