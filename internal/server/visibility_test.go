package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// userSocket is a socket.io 4 client authenticated as one user, emitting
// events and waiting for their acks.
type userSocket struct {
	t    *testing.T
	c    *sioclient.WS
	next int
}

func (n *node) socket(token string) *userSocket {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.DialWS(ctx, n.ts.URL, 4, url.Values{})
	if err != nil {
		n.t.Fatal(err)
	}
	c.AutoPong = true
	n.t.Cleanup(func() { c.Close() })
	if err := c.Send(`40{"token":"` + token + `","appId":"` + n.app.AppID + `"}`); err != nil {
		n.t.Fatal(err)
	}
	if ack, err := c.NextText(); err != nil || !strings.HasPrefix(ack, "40{") {
		n.t.Fatalf("connect: %q, %v", ack, err)
	}
	return &userSocket{t: n.t, c: c}
}

// emit sends event with arg and returns its ack: the error object (nil on
// success) and the data. Pushes that arrive meanwhile are skipped.
func (s *userSocket) emit(event string, arg any) (errObj map[string]any, data json.RawMessage) {
	s.t.Helper()
	s.next++
	id := s.next
	frame, _ := json.Marshal([]any{event, arg})
	if err := s.c.Send(fmt.Sprintf("42%d%s", id, frame)); err != nil {
		s.t.Fatal(err)
	}
	prefix := fmt.Sprintf("43%d[", id)
	for {
		text, err := s.c.NextText()
		if err != nil {
			s.t.Fatalf("%s: %v", event, err)
		}
		if !strings.HasPrefix(text, prefix) {
			continue
		}
		var ack []json.RawMessage
		if err := json.Unmarshal([]byte(text[len(prefix)-1:]), &ack); err != nil || len(ack) == 0 {
			s.t.Fatalf("%s: bad ack %q", event, text)
		}
		json.Unmarshal(ack[0], &errObj)
		if len(ack) > 1 {
			data = ack[1]
		}
		return errObj, data
	}
}

type wireMsg struct {
	Seq     int64 `json:"seq"`
	Content struct {
		Content string `json:"content"`
	} `json:"content"`
}

func texts(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var ms []wireMsg
	if err := json.Unmarshal(raw, &ms); err != nil {
		t.Fatalf("not a message list: %s", raw)
	}
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Content.Content)
	}
	return out
}

// groupView is everything a member can read of group g: the HTTP history,
// and over a socket the session's last message and unread count, the
// history page and sync from 0.
type groupView struct {
	http, history, sync []string
	last                string
	unread              int
}

func (n *node) groupView(user string) groupView {
	n.t.Helper()
	var v groupView
	r := n.call("POST", "/session/messages", map[string]any{"userId": user, "targetId": "g", "conversationType": 2, "limit": 100})
	if r.Status != 1 {
		n.t.Fatalf("history of %s: %+v", user, r)
	}
	v.http = texts(n.t, r.Data)
	slices.Reverse(v.http)
	s := n.socket(n.token(user))
	e, data := s.emit("session-list", nil)
	var list []struct {
		SID      string `json:"sid"`
		TargetID string `json:"targetId"`
		Unread   int    `json:"unread"`
		LastMsg  *struct {
			Content string `json:"content"`
		} `json:"lastMsg"`
	}
	if e != nil || json.Unmarshal(data, &list) != nil {
		n.t.Fatalf("session-list: %v %s", e, data)
	}
	sid := ""
	for _, ss := range list {
		if ss.TargetID == "g" {
			sid, v.unread = ss.SID, ss.Unread
			if ss.LastMsg != nil {
				v.last = ss.LastMsg.Content
			}
		}
	}
	if sid == "" {
		n.t.Fatalf("%s has no session of g: %s", user, data)
	}
	e, data = s.emit("session-message-list", map[string]any{"sid": sid, "limit": 100})
	if e != nil {
		n.t.Fatalf("session-message-list: %v", e)
	}
	v.history = texts(n.t, data)
	slices.Reverse(v.history)
	e, data = s.emit("sync", map[string]any{"sid": sid, "afterSeq": 0, "limit": 100})
	if e != nil {
		n.t.Fatalf("sync: %v", e)
	}
	v.sync = texts(n.t, data)
	return v
}

func (n *node) wantGroupView(user string, want []string, unread int) {
	n.t.Helper()
	v := n.groupView(user)
	last := ""
	if len(want) > 0 {
		last = want[len(want)-1]
	}
	for what, got := range map[string][]string{"HTTP history": v.http, "session-message-list": v.history, "sync": v.sync} {
		if !slices.Equal(got, want) {
			n.t.Errorf("%s: %s = %q; want %q", user, what, got, want)
		}
	}
	if v.last != last || v.unread != unread {
		n.t.Errorf("%s: session lastMsg %q unread %d; want %q, %d", user, v.last, v.unread, last, unread)
	}
}

// TestGroupVisibility: a member reads a group's messages from when they
// (last) joined, over HTTP and sockets alike, unless the join or the group
// grants the whole history.
func TestGroupVisibility(t *testing.T) {
	n := startNode(t)
	for _, u := range []string{"owner", "early", "late", "granted"} {
		n.token(u)
	}
	mustOK := func(path string, fields map[string]any) {
		t.Helper()
		if r := n.call("POST", path, fields); r.Status != 1 {
			t.Fatalf("%s: %+v", path, r)
		}
	}
	mustOK("/group/create", map[string]any{"groupId": "g", "name": "G", "userIds": []string{"owner", "early"}})
	mustOK("/group/send/message", send("owner", "g", "before"))
	// Membership changes are stored as notices (docs/groups.md), which
	// follow the same rule and count as unread.
	const (
		lateJoined    = "Nlate joined the group"
		grantedJoined = "Ngranted joined the group"
		earlyRemoved  = "Nearly was removed from the group"
		earlyJoined   = "Nearly joined the group"
		renamed       = "The group was renamed to \u201cG2\u201d"
	)
	mustOK("/group/join", map[string]any{"groupId": "g", "userIds": []string{"late"}})
	mustOK("/group/join", map[string]any{"groupId": "g", "userIds": []string{"granted"}, "fullHistory": true})
	n.wantGroupView("late", []string{lateJoined, grantedJoined}, 2)
	n.wantGroupView("granted", []string{"before", lateJoined, grantedJoined}, 1)
	mustOK("/group/send/message", send("owner", "g", "after join"))
	n.wantGroupView("late", []string{lateJoined, grantedJoined, "after join"}, 3)
	n.wantGroupView("early", []string{"before", lateJoined, grantedJoined, "after join"}, 4)

	// Removed, then added again: what was said in between stays unseen.
	mustOK("/group/remove", map[string]any{"groupId": "g", "userIds": []string{"early"}})
	mustOK("/group/send/message", send("owner", "g", "while out"))
	mustOK("/group/join", map[string]any{"groupId": "g", "userIds": []string{"early"}})
	n.wantGroupView("early", []string{earlyJoined}, 1)
	mustOK("/group/send/message", send("owner", "g", "back"))
	n.wantGroupView("early", []string{earlyJoined, "back"}, 2)

	// The group's setting shows every member the whole history, and can be
	// taken back.
	all := []string{"before", lateJoined, grantedJoined, "after join", earlyRemoved, "while out", earlyJoined, "back"}
	mustOK("/group/create", map[string]any{"groupId": "g", "name": "G", "userIds": []string{"owner"}, "fullHistory": "true"})
	n.wantGroupView("early", all, 2)
	n.wantGroupView("late", all, 7)
	mustOK("/group/create", map[string]any{"groupId": "g", "name": "G", "userIds": []string{"owner"}, "fullHistory": false})
	n.wantGroupView("late", all[1:], 7)
	// Renaming without the flag leaves the setting as it is.
	mustOK("/group/create", map[string]any{"groupId": "g", "name": "G2", "userIds": []string{"owner"}})
	n.wantGroupView("early", []string{earlyJoined, "back", renamed}, 3)
	all = append(all, renamed)

	// A message from before the join is no paging cursor for the member.
	r := n.call("POST", "/session/messages", map[string]any{"userId": "granted", "targetId": "g", "conversationType": 2, "limit": 100})
	var page []struct {
		MsgID string `json:"msgId"`
	}
	if json.Unmarshal(r.Data, &page); len(page) != len(all) {
		t.Fatalf("granted member's history: %s", r.Data)
	}
	first := page[len(page)-1].MsgID // "before"
	if r := n.call("POST", "/session/messages", map[string]any{"userId": "late", "targetId": "g", "conversationType": 2, "lastmsgId": first}); r.HTTP != 404 || !strings.Contains(r.Message, "message") {
		t.Fatalf("paging from a message sent before the join: %+v; want 404", r)
	}
	if r := n.call("POST", "/session/messages", map[string]any{"userId": "granted", "targetId": "g", "conversationType": 2, "lastmsgId": page[0].MsgID}); r.Status != 1 || len(texts(t, r.Data)) != len(all)-1 {
		t.Fatalf("paging within what the member sees: %+v", r)
	}

	if r := n.call("POST", "/group/join", map[string]any{"groupId": "g", "userIds": []string{"x"}, "fullHistory": "maybe"}); r.Status != 1002 || !strings.Contains(r.Message, "fullHistory") {
		t.Fatalf("bad fullHistory: %+v", r)
	}
}
