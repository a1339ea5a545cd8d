package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/chatd/chatd/internal/testenv"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// acked is a send that its sender saw acknowledged.
type acked struct {
	conv        string // conversation key
	clientMsgID string
	msg         message
}

// ackLog collects acknowledged sends from many goroutines.
type ackLog struct {
	mu   sync.Mutex
	list []acked
	http atomic.Int64 // sends acknowledged over HTTP
}

func (l *ackLog) add(a acked) {
	l.mu.Lock()
	l.list = append(l.list, a)
	l.mu.Unlock()
}

func (l *ackLog) all() []acked {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]acked(nil), l.list...)
}

// supervise reconnects d to a live node whenever its connection drops, then
// catches up with sync, as a real client does, until stop is closed.
func supervise(c *cluster, d *device, stop <-chan struct{}, errs chan<- error) {
	for {
		select {
		case <-stop:
			return
		case <-d.disconnected():
		}
		// Back off before reconnecting, as socket.io clients do; messages sent
		// meanwhile must come back through sync.
		select {
		case <-stop:
			return
		case <-time.After(300 * time.Millisecond):
		}
		start := time.Now()
		for attempt := 0; ; attempt++ {
			select {
			case <-stop:
				return
			default:
			}
			live := c.liveNodes()
			if len(live) > 0 {
				n := live[attempt%len(live)]
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := d.connect(ctx, n, c.node(n).base)
				cancel()
				if err == nil {
					break
				}
			}
			if time.Since(start) > waitLimit {
				errs <- fmt.Errorf("%s could not reconnect", d.name)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		d.mu.Lock()
		d.reconnects++
		d.mu.Unlock()
		if err := d.catchUp(); err != nil && !errors.Is(err, errDisconnected) {
			errs <- err
		}
	}
}

// httpSend sends one message over HTTP through a live node, retrying on
// another node with the same clientMsgId until it is acknowledged.
func httpSend(c *cluster, cv convSpec, sender, text, clientMsgID string, attempt *int) (message, error) {
	deadline := time.Now().Add(waitLimit)
	var last error
	for time.Now().Before(deadline) {
		live := c.liveNodes()
		if len(live) == 0 {
			return message{}, errors.New("no live node")
		}
		*attempt++
		n := live[*attempt%len(live)]
		r, err := c.tryDo(n, "POST", cv.path(), c.signed(map[string]any{"senderUserId": sender, "targetId": cv.target(sender),
			"messageType": 1, "content": map[string]any{"content": text}, "clientMsgId": clientMsgID}), "")
		if err == nil && r.Status == 1 {
			var m message
			return m, jsonUnmarshal(r.Data, &m)
		}
		last = fmt.Errorf("node %d: %v %+v", n, err, r)
		time.Sleep(20 * time.Millisecond)
	}
	return message{}, fmt.Errorf("send %s never acknowledged: %w", text, last)
}

// socketSend sends over d's socket, waiting out reconnections and retrying
// with the same clientMsgId until acknowledged.
func socketSend(d *device, cv convSpec, text, clientMsgID string) (message, error) {
	deadline := time.Now().Add(waitLimit)
	for {
		m, err := d.send(cv.event(), cv.target(d.user), text, clientMsgID)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, errDisconnected) || time.Now().After(deadline) {
			return m, fmt.Errorf("%s: send %s: %w", d.name, text, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterFaults kills a node while messages flow, then takes the broker
// down and brings it back. Clients of the dead node reconnect to another node
// and sync; in the end every device holds every acknowledged message once, with
// gapless seqs, and the store holds each send once. The broker is a private
// redis-server or nats-server owned by the test.
func TestClusterFaults(t *testing.T) {
	for _, b := range []struct {
		name  string
		start func(testing.TB) *privateServer
	}{
		{"redis", newPrivateRedis},
		{"nats", newPrivateNATS},
	} {
		t.Run(b.name, func(t *testing.T) {
			storeURL := freshSchema(t)
			runFaults(t, storeURL, b.start(t))
		})
	}
}

func runFaults(t *testing.T, storeURL string, brk *privateServer) {
	const nodes, victim = 3, 2
	c := newCluster(t, nodes, storeURL, brk.url())

	users := []string{"amy", "bob", "cyd"}
	var devs []*device
	byUser := map[string][]*device{}
	for i, u := range users {
		tok := c.token(i%nodes, u)
		for k := range 2 {
			n := (i + k) % nodes
			d := dialDevice(t, c, fmt.Sprintf("%s/%d", u, k), u, tok, n)
			devs = append(devs, d)
			byUser[u] = append(byUser[u], d)
		}
	}
	room := convSpec{key: "room", group: "room", name: "Room", members: users}
	pair := convSpec{key: "amy-bob", members: []string{"amy", "bob"}}
	convs := []convSpec{room, pair}
	c.call(0, "POST", "/group/create", map[string]any{"groupId": room.group, "name": room.name, "userIds": room.members})

	stop := make(chan struct{})
	errs := make(chan error, 64)
	var sup sync.WaitGroup
	for _, d := range devs {
		sup.Add(1)
		go func() { defer sup.Done(); supervise(c, d, stop, errs) }()
	}
	stopSupervisors := sync.OnceFunc(func() { close(stop); sup.Wait() })
	defer stopSupervisors()
	checkErrs := func() {
		t.Helper()
		for {
			select {
			case err := <-errs:
				t.Error(err)
			default:
				if t.Failed() {
					t.FailNow()
				}
				return
			}
		}
	}

	var acks ackLog
	// flow sends httpN messages over HTTP (alternating the group and the
	// private pair) and perDevice group messages from every device, paced so
	// that a fault can land in the middle. With until set, it sends until
	// until is closed instead.
	flow := func(phase string, httpN, perDevice int, until <-chan struct{}) {
		t.Helper()
		more := func(i, n int) bool {
			if until == nil {
				return i < n
			}
			select {
			case <-until:
				return false
			default:
				return true
			}
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			attempt := 0
			for i := 0; more(i, httpN); i++ {
				cv := convs[i%2]
				sender := cv.members[i%len(cv.members)]
				id := fmt.Sprintf("%s-http-%d", phase, i)
				m, err := httpSend(c, cv, sender, id, id, &attempt)
				if err != nil {
					errs <- err
					return
				}
				acks.add(acked{conv: cv.key, clientMsgID: id, msg: m})
				acks.http.Add(1)
				time.Sleep(10 * time.Millisecond)
			}
		}()
		for _, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; more(i, perDevice); i++ {
					id := fmt.Sprintf("%s-%s-%d", phase, d.name, i)
					m, err := socketSend(d, room, id, id)
					if err != nil {
						errs <- err
						return
					}
					acks.add(acked{conv: room.key, clientMsgID: id, msg: m})
					time.Sleep(40 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
	}

	// Phase 1: SIGKILL a node while messages flow.
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		waitUntil(func() bool { return acks.http.Load() >= 15 })
		c.node(victim).p.kill()
	}()
	flow("kill", 40, 8, nil)
	<-killed
	checkErrs()
	for _, d := range devs {
		testenv.WaitFor(t, d.name+" to be connected to a live node", func() bool {
			select {
			case <-d.disconnected():
				return false
			default:
				return d.nodeIdx() != victim
			}
		})
	}
	verifyDevices(t, c, users, byUser, convs, acks.all())
	checkErrs()

	// The node comes back and serves again: a new device of cyd's connects to
	// it and must end up with the whole history.
	c.restart(victim)
	late := dialDevice(t, c, "cyd/2", "cyd", byUser["cyd"][0].token, victim)
	devs = append(devs, late)
	byUser["cyd"] = append(byUser["cyd"], late)
	sup.Add(1)
	go func() { defer sup.Done(); supervise(c, late, stop, errs) }()

	// Phase 2: the broker goes down and comes back while messages flow. Nodes
	// report not ready during the outage, sends still commit (the store is the
	// truth), and pushes are lost until the broker returns.
	live := c.liveNodes()
	if len(live) != nodes {
		t.Fatalf("live nodes %v after restart", live)
	}
	httpAcks := func(n int64) func() bool {
		from := acks.http.Load()
		return func() bool { return acks.http.Load() >= from+n }
	}
	stopFlow := make(chan struct{})
	flowDone := make(chan struct{})
	go func() { defer close(flowDone); flow("outage", 0, 0, stopFlow) }()
	testenv.WaitFor(t, "sends before the broker outage", httpAcks(5))
	brk.p.kill()
	for _, n := range live {
		testenv.WaitFor(t, fmt.Sprintf("node %d /readyz to fail while %s is down", n, brk.name), func() bool {
			code, _ := c.readyz(c.node(n))
			return code == http.StatusServiceUnavailable
		})
	}
	testenv.WaitFor(t, "sends during the broker outage", httpAcks(5))
	brk.start()
	for _, n := range live {
		testenv.WaitFor(t, fmt.Sprintf("node %d /readyz to recover after %s restarted", n, brk.name), func() bool {
			code, _ := c.readyz(c.node(n))
			return code == http.StatusOK
		})
	}
	testenv.WaitFor(t, "sends after the broker came back", httpAcks(5))
	close(stopFlow)
	<-flowDone
	checkErrs()

	// Phase 3: delivery resumes. Resubscription may lag readiness by a moment,
	// so probe until one message reaches every device by push; after that no
	// push may be lost.
	probe := 0
	testenv.WaitFor(t, "pushes to resume after the broker restart", func() bool {
		probe++
		id := fmt.Sprintf("probe-%d", probe)
		attempt := 0
		m, err := httpSend(c, room, "amy", id, id, &attempt)
		if err != nil {
			t.Fatal(err)
		}
		acks.add(acked{conv: room.key, clientMsgID: id, msg: m})
		return waitUntilFor(2*time.Second, func() bool {
			for _, d := range devs {
				if !d.pushed(m.MsgID) {
					return false
				}
			}
			return true
		})
	})
	before := len(acks.all())
	flow("resumed", 10, 2, nil)
	checkErrs()
	for _, a := range acks.all()[before:] {
		cv := room
		if a.conv == pair.key {
			cv = pair
		}
		for _, u := range cv.members {
			for _, d := range byUser[u] {
				if !waitUntil(func() bool { return d.hasMsg(a.msg.MsgID) }) {
					t.Errorf("%s: %s not delivered after the broker came back", d.name, a.clientMsgID)
				}
			}
		}
	}
	verifyDevices(t, c, users, byUser, convs, acks.all())
	stopSupervisors()
	checkErrs()
	for _, d := range devs {
		log, _, _ := d.snapshot()
		live := map[string]bool{}
		for _, r := range log {
			if r.via != "sync" {
				live[r.msg.MsgID] = true
			}
		}
		bySync := map[string]bool{}
		for _, r := range log {
			if r.via == "sync" && !live[r.msg.MsgID] {
				bySync[r.msg.MsgID] = true
			}
		}
		d.mu.Lock()
		t.Logf("%s: %d reconnects, %d messages live (push or ack), %d recovered only by sync", d.name, d.reconnects, len(live), len(bySync))
		d.mu.Unlock()
	}
	t.Logf("%d sends acknowledged, %d probes until pushes resumed", len(acks.all()), probe)
}

// waitUntilFor polls cond for at most d.
func waitUntilFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// pushed reports whether msgID reached d by push.
func (d *device) pushed(msgID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pushes[msgID] > 0
}

// verifyDevices makes every device catch up with sync, then checks that it
// holds each conversation gaplessly from seq 1, that every acknowledged send
// is there once at its seq, that no push came twice, and that the store holds
// exactly the acknowledged sends (retries with the same clientMsgId included).
func verifyDevices(t *testing.T, c *cluster, users []string, byUser map[string][]*device, convs []convSpec, acks []acked) {
	t.Helper()
	perConv := map[string][]acked{}
	for _, a := range acks {
		perConv[a.conv] = append(perConv[a.conv], a)
	}
	for _, u := range users {
		live := c.liveNodes()
		ss := c.sessionsHTTP(live[0], u)
		for _, d := range byUser[u] {
			if err := d.catchUp(); err != nil {
				t.Fatalf("%s: catch up: %v", d.name, err)
			}
			log, pushes, _ := d.snapshot()
			for id, n := range pushes {
				if n > 1 {
					t.Errorf("%s: message %s pushed %d times", d.name, id, n)
				}
			}
			for _, cv := range convs {
				if !cv.has(u) {
					continue
				}
				var s *listedSession
				for i := range ss {
					if ss[i].TargetID == cv.target(u) && (ss[i].ConversationType == 2) == (cv.group != "") {
						s = &ss[i]
					}
				}
				want := perConv[cv.key]
				if s == nil {
					if len(want) > 0 {
						t.Errorf("%s: no session for %s", u, cv.key)
					}
					continue
				}
				if s.LastSeq != int64(len(want)) {
					t.Errorf("%s: lastSeq %d with %d acknowledged sends: the store lost or duplicated a send", cv.key, s.LastSeq, len(want))
				}
				bySeq := map[int64]string{}
				for _, r := range log {
					if r.sid != s.SID {
						continue
					}
					if prev, ok := bySeq[r.msg.Seq]; ok && prev != r.msg.MsgID {
						t.Errorf("%s: %s seq %d is both %s and %s", d.name, cv.key, r.msg.Seq, prev, r.msg.MsgID)
					}
					bySeq[r.msg.Seq] = r.msg.MsgID
				}
				for seq := int64(1); seq <= s.LastSeq; seq++ {
					if _, ok := bySeq[seq]; !ok {
						t.Errorf("%s: %s has a gap at seq %d of %d", d.name, cv.key, seq, s.LastSeq)
						break
					}
				}
				seenIDs := map[string]bool{}
				for _, a := range want {
					if bySeq[a.msg.Seq] != a.msg.MsgID {
						t.Errorf("%s: acknowledged %s (seq %d) missing", d.name, a.clientMsgID, a.msg.Seq)
					}
					if seenIDs[a.msg.MsgID] {
						t.Errorf("%s: two acknowledged sends share message %s", cv.key, a.msg.MsgID)
					}
					seenIDs[a.msg.MsgID] = true
				}
			}
		}
	}
}
