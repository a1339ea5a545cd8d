package cluster_test

import (
	"testing"

	"github.com/chatd/chatd/internal/testenv"
)

// TestClusterGroupRemoval: nodes keep group member lists in memory, and
// nothing about membership goes over the broker. A member removed through
// node 0 gets nothing sent through node 1 afterwards, though node 1 had
// the list with her in it; a member added through node 0 gets the next
// send through node 1.
func TestClusterGroupRemoval(t *testing.T) {
	c := newCluster(t, 2, freshSchema(t), testenv.URL(t, "CHATD_TEST_REDIS"))
	ben := dialDevice(t, c, "ben@node1", "ben", c.token(0, "ben"), 1)
	cat := dialDevice(t, c, "cat@node1", "cat", c.token(0, "cat"), 1)
	dan := dialDevice(t, c, "dan@node1", "dan", c.token(0, "dan"), 1)
	c.call(0, "POST", "/group/create", map[string]any{"groupId": "room", "name": "Room", "userIds": []string{"ben", "cat"}})

	sendRoom := func(text string) message {
		t.Helper()
		m, err := ben.send("send-group-message", "room", text, "")
		if err != nil {
			t.Fatalf("send %q through node 1: %v", text, err)
		}
		return m
	}
	got := func(d *device, msgID string) bool {
		t.Helper()
		return waitUntil(func() bool { return d.hasMsg(msgID) })
	}
	if m := sendRoom("one"); !got(cat, m.MsgID) {
		t.Fatal("cat did not get the first message")
	}

	c.call(0, "POST", "/group/remove", map[string]any{"groupId": "room", "userIds": []string{"cat"}})
	two := sendRoom("two")
	// A private message to cat sent through node 1 after "two" reaches her
	// after "two" would have.
	p, err := ben.send("send-private-message", "cat", "after", "")
	if err != nil {
		t.Fatal(err)
	}
	if !got(cat, p.MsgID) {
		t.Fatal("cat did not get the private message")
	}
	if cat.hasMsg(two.MsgID) {
		t.Fatal("cat, removed through node 0, got a message sent through node 1 after the removal")
	}

	c.call(0, "POST", "/group/join", map[string]any{"groupId": "room", "userIds": []string{"dan"}})
	if m := sendRoom("three"); !got(dan, m.MsgID) {
		t.Fatal("dan, added through node 0, did not get the next send through node 1")
	}
}
