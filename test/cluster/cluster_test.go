package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/chatd/chatd/internal/testenv"
	"io"
	"mime/multipart"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// convSpec is one conversation of the delivery scenario.
type convSpec struct {
	key     string   // label used in contents
	group   string   // group id; "" for a private conversation
	name    string   // group name
	members []string // for a private conversation, the two users
}

func (c convSpec) event() string {
	if c.group != "" {
		return "send-group-message"
	}
	return "send-private-message"
}

func (c convSpec) path() string {
	if c.group != "" {
		return "/group/send/message"
	}
	return "/private/send/message"
}

// target is what sender puts in targetId.
func (c convSpec) target(sender string) string {
	if c.group != "" {
		return c.group
	}
	if c.members[0] == sender {
		return c.members[1]
	}
	return c.members[0]
}

// title is the session title user sees for the conversation.
func (c convSpec) title(user string) string {
	if c.group != "" {
		return c.name
	}
	return displayName(c.target(user))
}

func (c convSpec) has(user string) bool { return slices.Contains(c.members, user) }

// waitUntil polls cond until it holds or waitLimit passes; safe off the test goroutine.
func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func (d *device) hasMsg(msgID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.log {
		if r.msg.MsgID == msgID {
			return true
		}
	}
	return false
}

// TestClusterDelivery runs three chatd nodes on one PostgreSQL schema and one
// broker, with every user's two devices on different nodes. Private and group
// messages are sent over sockets and over HTTP through every node; every
// device must get every message of its conversations exactly once, in seq
// order, with its own user's sendSession, and every node must report the same
// unread counts.
func TestClusterDelivery(t *testing.T) {
	for _, b := range []struct{ name, env string }{
		{"redis", "CHATD_TEST_REDIS"},
		{"nats", "CHATD_TEST_NATS"},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel() // each broker's cluster has its own schema and app
			brokerURL := testenv.URL(t, b.env)
			runDelivery(t, brokerURL)
		})
	}
}

func runDelivery(t *testing.T, brokerURL string) {
	const nodes, perConv = 3, 12

	c := newCluster(t, nodes, freshSchema(t), brokerURL)

	users := []string{"ann", "ben", "cat", "dan"}
	devices := map[string][]*device{}
	for i, u := range users {
		tok := c.token(i%nodes, u)
		for k := range 2 {
			n := (i + k) % nodes // a user's two devices sit on different nodes
			devices[u] = append(devices[u], dialDevice(t, c, fmt.Sprintf("%s/%d@node%d", u, k, n), u, tok, n))
		}
	}
	convs := []convSpec{
		{key: "p-ann-ben", members: []string{"ann", "ben"}},
		{key: "p-cat-dan", members: []string{"cat", "dan"}},
		{key: "p-ann-dan", members: []string{"ann", "dan"}},
		{key: "g-all", group: "all", name: "Everyone", members: users},
		{key: "g-trio", group: "trio", name: "Trio", members: []string{"ben", "cat", "dan"}},
	}
	for i, cv := range convs {
		if cv.group != "" {
			c.call(i%nodes, "POST", "/group/create", map[string]any{"groupId": cv.group, "name": cv.name, "userIds": cv.members})
		}
	}

	// One goroutine per conversation; inside one conversation each message is
	// sent once the previous one reached every device, so that arrival order
	// is defined and "in seq order" is a fair demand. Senders, transports and
	// nodes rotate.
	results := make([][]sent, len(convs))
	var wg sync.WaitGroup
	for ci, cv := range convs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perConv {
				sender := cv.members[j%len(cv.members)]
				text := fmt.Sprintf("%s#%d", cv.key, j+1)
				var s sent
				s.sender = sender
				if j%2 == 0 {
					d := devices[sender][(j/2)%2]
					m, err := d.send(cv.event(), cv.target(sender), text, "")
					if err != nil {
						t.Errorf("%s: socket send %s: %v", d.name, text, err)
						return
					}
					s.msg, s.via = m, d
				} else {
					n := (ci + j) % nodes
					r, err := c.tryDo(n, "POST", cv.path(), c.signed(map[string]any{"senderUserId": sender, "targetId": cv.target(sender),
						"messageType": 1, "content": map[string]any{"content": text}}), "")
					if err != nil || r.Status != 1 {
						t.Errorf("node %d: HTTP send %s: %v %+v", n, text, err, r)
						return
					}
					if err := jsonUnmarshal(r.Data, &s.msg); err != nil {
						t.Errorf("HTTP send reply: %v", err)
						return
					}
				}
				if s.msg.Seq != int64(j+1) || s.msg.text() != text {
					t.Errorf("%s: reply seq %d text %q; want seq %d", text, s.msg.Seq, s.msg.text(), j+1)
				}
				results[ci] = append(results[ci], s)
				for _, u := range cv.members {
					for _, d := range devices[u] {
						if !waitUntil(func() bool { return d.hasMsg(s.msg.MsgID) }) {
							t.Errorf("%s never got %s", d.name, text)
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Unread is what came after the user's own last message: sending moves the
	// sender's read mark.
	lastSent := func(u string) map[string]int64 {
		out := map[string]int64{}
		for ci, cv := range convs {
			for _, s := range results[ci] {
				if s.sender == u {
					out[cv.key] = s.msg.Seq
				}
			}
		}
		return out
	}

	// Every user's sessions, through each node's HTTP API: same sids, titles
	// and unread counts everywhere.
	sidOf := map[string]map[string]string{} // user → conv key → sid
	for _, u := range users {
		sidOf[u] = map[string]string{}
		var first []listedSession
		for n := range nodes {
			ss := c.sessionsHTTP(n, u)
			checkSessions(t, fmt.Sprintf("%s via HTTP on node %d", u, n), u, ss, convs, lastSent(u), perConv)
			if n == 0 {
				first = ss
				for _, s := range ss {
					for _, cv := range convs {
						if cv.has(u) && s.TargetID == cv.target(u) && (s.ConversationType == 2) == (cv.group != "") {
							sidOf[u][cv.key] = s.SID
						}
					}
				}
			} else if !sameSessions(first, ss) {
				t.Errorf("%s: node %d lists %+v; node 0 lists %+v", u, n, ss, first)
			}
		}
	}

	// What each device received.
	for _, u := range users {
		for _, d := range devices[u] {
			log, pushes, _ := d.snapshot()
			total := 0
			for ci, cv := range convs {
				if !cv.has(u) {
					continue
				}
				var got []received
				ids := map[string]bool{}
				for _, s := range results[ci] {
					ids[s.msg.MsgID] = true
				}
				for _, r := range log {
					if ids[r.msg.MsgID] {
						got = append(got, r)
					}
				}
				total += len(got)
				if len(got) != perConv {
					t.Errorf("%s: %d messages of %s; want %d exactly once", d.name, len(got), cv.key, perConv)
					continue
				}
				for j, r := range got {
					s := results[ci][j]
					if r.msg.Seq != int64(j+1) || r.msg.MsgID != s.msg.MsgID {
						t.Errorf("%s: %s message %d has seq %d (%s); want seq %d in order", d.name, cv.key, j, r.msg.Seq, r.msg.text(), j+1)
					}
					wantVia := "push"
					if s.via == d {
						wantVia = "ack"
					}
					if r.via != wantVia {
						t.Errorf("%s: %s got by %s; want %s", d.name, r.msg.text(), r.via, wantVia)
					}
					if r.via == "push" && r.msg.Own != (s.sender == u) {
						t.Errorf("%s: push of %s from %s marked own=%v", d.name, r.msg.text(), s.sender, r.msg.Own)
					}
					if pushes[r.msg.MsgID] > 1 || (wantVia == "ack" && pushes[r.msg.MsgID] != 0) {
						t.Errorf("%s: %s pushed %d times", d.name, r.msg.text(), pushes[r.msg.MsgID])
					}
					if r.msg.SenderUserID != s.sender || r.msg.ConversationType != map[bool]int{false: 1, true: 2}[cv.group != ""] {
						t.Errorf("%s: %s from %q type %d", d.name, r.msg.text(), r.msg.SenderUserID, r.msg.ConversationType)
					}
					ss := r.msg.SendSession
					if ss == nil || ss.SID != sidOf[u][cv.key] || ss.Title != cv.title(u) {
						t.Errorf("%s: %s sendSession %+v; want sid %s title %q", d.name, r.msg.text(), ss, sidOf[u][cv.key], cv.title(u))
					}
				}
			}
			if len(log) != total {
				t.Errorf("%s: received %d messages, %d of them from its conversations", d.name, len(log), total)
			}
			// The socket session list agrees with HTTP.
			ss, err := d.sessions()
			if err != nil {
				t.Fatalf("%s: session-list: %v", d.name, err)
			}
			checkSessions(t, d.name+" session-list", u, ss, convs, lastSent(u), perConv)
		}
	}
	// session-list on the one node that holds none of a user's devices, so
	// that every user's list is read over a socket on every node.
	for i, u := range users {
		n := (i + 2) % nodes
		d := dialDevice(t, c, fmt.Sprintf("%s/extra@node%d", u, n), u, devices[u][0].token, n)
		ss, err := d.sessions()
		if err != nil {
			t.Fatalf("%s: session-list: %v", d.name, err)
		}
		checkSessions(t, d.name+" session-list", u, ss, convs, lastSent(u), perConv)
		d.close()
	}

	// A read mark set on one node clears the unread count on every node and
	// reaches the user's other device, on another node.
	reader, other := devices["ann"][0], devices["ann"][1]
	sid := sidOf["ann"]["g-all"]
	if err := reader.emit("set-session-read", sid, nil); err != nil {
		t.Fatalf("set-session-read: %v", err)
	}
	for n := range nodes {
		for _, s := range c.sessionsHTTP(n, "ann") {
			if s.SID == sid && (s.Unread != 0 || s.ReadSeq != perConv) {
				t.Errorf("node %d: after read mark %+v", n, s)
			}
		}
	}
	testenv.WaitFor(t, "the read mark to reach "+other.name, func() bool {
		_, _, reads := other.snapshot()
		return slices.Contains(reads, sid)
	})
	if _, _, reads := reader.snapshot(); slices.Contains(reads, sid) {
		t.Errorf("%s got its own read mark back", reader.name)
	}

	burst(t, c, devices, convs[3], perConv)
	sharedUploads(t, c, reader.token)

	// Revoking a user's tokens on one node closes the user's sockets on every
	// node, and the old token opens no new one anywhere.
	c.call(2, "POST", "/user/revokeToken", map[string]any{"userId": "dan"})
	for _, d := range devices["dan"] {
		select {
		case <-d.disconnected():
		case <-time.After(waitLimit):
			t.Fatalf("%s still connected after its tokens were revoked", d.name)
		}
	}
	for n := range nodes {
		d := newDevice("dan/revoked", "dan", devices["dan"][0].token, c.app.AppID)
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		err := d.connect(ctx, n, c.node(n).base)
		cancel()
		if err == nil {
			d.close()
			t.Errorf("node %d accepted a revoked token", n)
		}
	}
	for _, d := range devices["ann"] {
		select {
		case <-d.disconnected():
			t.Errorf("%s was disconnected by another user's revocation", d.name)
		default:
		}
	}
}

// burst has every device of every member, and the HTTP API of every node,
// send into one group at once. Cross-node pushes carry no ordering promise
// (the broker is best effort and each node publishes on its own), so here
// each device must get every message exactly once and, ordered by seq, hold
// the conversation without a gap; arrivals out of seq order are only logged.
func burst(t *testing.T, c *cluster, devices map[string][]*device, cv convSpec, already int) {
	const each = 5
	var (
		mu   sync.Mutex
		sent []message
		wg   sync.WaitGroup
	)
	add := func(m message) {
		mu.Lock()
		sent = append(sent, m)
		mu.Unlock()
	}
	for _, u := range cv.members {
		for _, d := range devices[u] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					m, err := d.send(cv.event(), cv.target(u), fmt.Sprintf("burst %s %d", d.name, i), "")
					if err != nil {
						t.Errorf("%s: burst send: %v", d.name, err)
						return
					}
					add(m)
				}
			}()
		}
	}
	for n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				sender := cv.members[(n+i)%len(cv.members)]
				r, err := c.tryDo(n, "POST", cv.path(), c.signed(map[string]any{"senderUserId": sender, "targetId": cv.target(sender),
					"messageType": 1, "content": map[string]any{"content": fmt.Sprintf("burst http node%d %d", n, i)}}), "")
				var m message
				if err == nil && r.Status == 1 {
					err = jsonUnmarshal(r.Data, &m)
				} else if err == nil {
					err = fmt.Errorf("%+v", r)
				}
				if err != nil {
					t.Errorf("node %d: burst HTTP send: %v", n, err)
					return
				}
				add(m)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	total := already + len(sent)
	ids := map[string]bool{}
	for _, m := range sent {
		ids[m.MsgID] = true
	}
	for _, u := range cv.members {
		for _, d := range devices[u] {
			testenv.WaitFor(t, d.name+" to receive the burst", func() bool {
				n := 0
				log, _, _ := d.snapshot()
				for _, r := range log {
					if ids[r.msg.MsgID] {
						n++
					}
				}
				return n >= len(sent)
			})
			log, pushes, _ := d.snapshot()
			var seqs []int64
			outOfOrder := 0
			for _, r := range log {
				if !ids[r.msg.MsgID] {
					continue
				}
				if pushes[r.msg.MsgID] > 1 {
					t.Errorf("%s: %s pushed %d times", d.name, r.msg.text(), pushes[r.msg.MsgID])
				}
				if len(seqs) > 0 && r.msg.Seq < seqs[len(seqs)-1] {
					outOfOrder++
				}
				seqs = append(seqs, r.msg.Seq)
			}
			slices.Sort(seqs)
			if len(seqs) != len(sent) || seqs[0] != int64(already+1) || seqs[len(seqs)-1] != int64(total) || len(slices.Compact(seqs)) != len(sent) {
				t.Errorf("%s: burst seqs %v; want %d..%d once each", d.name, seqs, already+1, total)
			}
			if outOfOrder > 0 {
				t.Logf("%s: %d of %d burst messages arrived after a higher seq (clients order by seq)", d.name, outOfOrder, len(sent))
			}
		}
	}
}

// sharedUploads stores a file through one node and downloads it through
// every other: the nodes share one uploads directory.
func sharedUploads(t *testing.T, c *cluster, token string) {
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 200)...)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("up_file", "pic.png")
	fw.Write(png)
	mw.Close()
	res, err := c.http.Post(c.node(0).base+"/file/upload?appId="+c.app.AppID+"&token="+url.QueryEscape(token), mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Status int
		Data   struct{ FullURL string }
	}
	err = json.NewDecoder(res.Body).Decode(&r)
	res.Body.Close()
	if err != nil || r.Status != 1 {
		t.Fatalf("upload on node 0: %v %+v", err, r)
	}
	u, err := url.Parse(r.Data.FullURL)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n < len(c.nodes); n++ {
		res, err := c.http.Get(c.node(n).base + u.Path)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(got, png) {
			t.Errorf("node %d: GET %s: HTTP %d, %d bytes; want the %d uploaded bytes", n, u.Path, res.StatusCode, len(got), len(png))
		}
	}
}

// sent is one message as its sender got it back.
type sent struct {
	msg    message
	sender string
	via    *device // the sending device; nil when sent over HTTP
}

// checkSessions compares a session list with the scenario: one session per
// conversation of user, titled for user, with perConv messages and unread
// counted from the user's last own message.
func checkSessions(t *testing.T, who, user string, ss []listedSession, convs []convSpec, lastSent map[string]int64, perConv int64) {
	t.Helper()
	want := 0
	for _, cv := range convs {
		if !cv.has(user) {
			continue
		}
		want++
		typ := 1
		if cv.group != "" {
			typ = 2
		}
		found := false
		for _, s := range ss {
			if s.ConversationType != typ || s.TargetID != cv.target(user) {
				continue
			}
			found = true
			if s.Title != cv.title(user) || s.LastSeq != perConv || s.Unread != perConv-lastSent[cv.key] {
				t.Errorf("%s: %s is %+v; want title %q, lastSeq %d, unread %d", who, cv.key, s, cv.title(user), perConv, perConv-lastSent[cv.key])
			}
		}
		if !found {
			t.Errorf("%s: no session for %s in %+v", who, cv.key, ss)
		}
	}
	if len(ss) != want {
		t.Errorf("%s: %d sessions; want %d", who, len(ss), want)
	}
}

// sameSessions reports whether two nodes list the same sessions.
func sameSessions(a, b []listedSession) bool {
	key := func(ss []listedSession) []string {
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%+v", s))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
