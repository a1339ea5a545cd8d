package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// message is a message as a client sees it (push, ack, HTTP reply or sync).
type message struct {
	MsgID            string          `json:"msgId"`
	Content          json.RawMessage `json:"content"`
	ConversationType int             `json:"conversationType"`
	SenderUserID     string          `json:"senderUserId"`
	TargetID         string          `json:"targetId"`
	MessageType      int             `json:"messageType"`
	Seq              int64           `json:"seq"`
	ClientMsgID      string          `json:"clientMsgId"`
	Own              bool            `json:"own"`
	SendSession      *struct {
		SID    string `json:"sid"`
		Title  string `json:"title"`
		Avatar string `json:"avatar"`
	} `json:"sendSession"`
}

// text is the content's "content" field, which the tests use as a unique label.
func (m message) text() string {
	var c struct{ Content string }
	json.Unmarshal(m.Content, &c)
	return c.Content
}

// listedSession is one entry of session-list (chat.Session on the wire).
type listedSession struct {
	SID              string `json:"sid"`
	ConversationType int    `json:"conversationType"`
	TargetID         string `json:"targetId"`
	Unread           int64  `json:"unread"`
	Title            string `json:"title"`
	LastSeq          int64  `json:"lastSeq"`
	ReadSeq          int64  `json:"readSeq"`
}

// received is one message a device got, and how.
type received struct {
	via string // "push", "ack" or "sync"
	sid string // the device's own session of the message
	msg message
}

// ackErr is an error-first ack's error.
type ackErr struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

func (e *ackErr) Error() string { return fmt.Sprintf("ack error %d: %s", e.Status, e.Message) }

// errDisconnected reports an emit on, or an ack lost with, a closed socket.
var errDisconnected = errors.New("socket disconnected")

// device is one connected client of a user: a websocket-only EIO4 Socket.IO
// client that records every message it receives.
type device struct {
	name  string
	user  string
	token string
	appID string

	wmu sync.Mutex // one writer at a time on the websocket

	mu         sync.Mutex
	node       int
	ws         *sioclient.WS
	nextID     int
	acks       map[int]chan []json.RawMessage
	gone       chan struct{} // closed when the current connection's reader ends
	log        []received
	pushes     map[string]int    // msgId → pushes seen
	reads      []string          // sids of session-read pushes
	updates    []json.RawMessage // message-updated pushes
	settings   []json.RawMessage // session-updated pushes (settings_test.go)
	reconnects int
	seen       map[string]map[int64]bool
}

func newDevice(name, user, token, appID string) *device {
	return &device{name: name, user: user, token: token, appID: appID,
		pushes: map[string]int{}, seen: map[string]map[int64]bool{}}
}

// connect opens a socket to base and authenticates with the CONNECT auth payload.
func (d *device) connect(ctx context.Context, node int, base string) error {
	ws, err := sioclient.DialWS(ctx, base, 4, nil)
	if err != nil {
		return err
	}
	// own-messages: the user's own messages from other devices and over HTTP
	// are pushed too, so every device sees every message; message-updated:
	// recalls, edits and reactions are pushed.
	auth, _ := json.Marshal(map[string]any{"token": d.token, "appId": d.appID, "capabilities": []string{"own-messages", "message-updated", "session-settings"}})
	if err := ws.Send("40" + string(auth)); err != nil {
		ws.Close()
		return err
	}
	ws.Conn.SetReadDeadline(time.Now().Add(waitLimit))
	m, err := ws.NextText()
	if err != nil {
		ws.Close()
		return fmt.Errorf("%s: read CONNECT reply: %w", d.name, err)
	}
	if !strings.HasPrefix(m, "40") {
		ws.Close()
		return fmt.Errorf("%s: CONNECT refused: %s", d.name, m)
	}
	ws.Conn.SetReadDeadline(time.Time{})
	ws.AutoPong = false // read answers pings under wmu
	gone := make(chan struct{})
	d.mu.Lock()
	d.node, d.ws, d.gone = node, ws, gone
	d.acks = map[int]chan []json.RawMessage{}
	d.mu.Unlock()
	go d.read(ws, gone)
	return nil
}

func (d *device) nodeIdx() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.node
}

func (d *device) disconnected() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gone
}

func (d *device) close() {
	d.mu.Lock()
	ws := d.ws
	d.mu.Unlock()
	if ws != nil {
		ws.Close()
	}
}

// read dispatches acks and pushes until the connection ends.
func (d *device) read(ws *sioclient.WS, gone chan struct{}) {
	defer func() {
		d.mu.Lock()
		for id, ch := range d.acks {
			close(ch)
			delete(d.acks, id)
		}
		close(gone)
		d.mu.Unlock()
	}()
	for {
		m, err := ws.NextText()
		if err != nil {
			return
		}
		switch {
		case m == "2":
			if d.write(ws, "3") != nil {
				return
			}
		case m == "41":
			// The server ended the socket; socket.io clients then close the
			// connection and do not reconnect on their own.
			ws.Close()
			return
		case strings.HasPrefix(m, "43"):
			i := 2
			for i < len(m) && m[i] >= '0' && m[i] <= '9' {
				i++
			}
			id, _ := strconv.Atoi(m[2:i])
			var args []json.RawMessage
			json.Unmarshal([]byte(m[i:]), &args)
			d.mu.Lock()
			ch := d.acks[id]
			delete(d.acks, id)
			d.mu.Unlock()
			if ch != nil {
				ch <- args
			}
		case strings.HasPrefix(m, "42["):
			var ev []json.RawMessage
			if json.Unmarshal([]byte(m[2:]), &ev) != nil || len(ev) < 2 {
				continue
			}
			var name string
			json.Unmarshal(ev[0], &name)
			d.onEvent(name, ev[1])
		}
	}
}

func (d *device) onEvent(name string, arg json.RawMessage) {
	switch name {
	case "message":
		var env struct {
			Status int     `json:"status"`
			Type   string  `json:"type"`
			Data   message `json:"data"`
		}
		if json.Unmarshal(arg, &env) != nil || env.Status != 1 || env.Type != "user" {
			return
		}
		sid := ""
		if env.Data.SendSession != nil {
			sid = env.Data.SendSession.SID
		}
		d.mu.Lock()
		d.pushes[env.Data.MsgID]++
		d.record(received{via: "push", sid: sid, msg: env.Data})
		d.mu.Unlock()
	case "message-updated":
		d.mu.Lock()
		d.updates = append(d.updates, append(json.RawMessage(nil), arg...))
		d.mu.Unlock()
	case "session-updated":
		d.mu.Lock()
		d.settings = append(d.settings, append(json.RawMessage(nil), arg...))
		d.mu.Unlock()
	case "session-read":
		var r struct{ SID string }
		json.Unmarshal(arg, &r)
		d.mu.Lock()
		d.reads = append(d.reads, r.SID)
		d.mu.Unlock()
	}
}

// record appends r to the log; d.mu is held.
func (d *device) record(r received) {
	d.log = append(d.log, r)
	if d.seen[r.sid] == nil {
		d.seen[r.sid] = map[int64]bool{}
	}
	d.seen[r.sid][r.msg.Seq] = true
}

// emit sends an event with an ack and returns the ack's data.
func (d *device) emit(event string, arg any, out any) error {
	payload, err := json.Marshal([]any{event, arg})
	if err != nil {
		return err
	}
	ch := make(chan []json.RawMessage, 1)
	d.mu.Lock()
	ws, gone := d.ws, d.gone
	select {
	case <-gone:
		d.mu.Unlock()
		return errDisconnected
	default:
	}
	d.nextID++
	id := d.nextID
	d.acks[id] = ch
	d.mu.Unlock()
	if err := d.write(ws, "42"+strconv.Itoa(id)+string(payload)); err != nil {
		return fmt.Errorf("%w: %v", errDisconnected, err)
	}
	var args []json.RawMessage
	select {
	case a, ok := <-ch:
		if !ok {
			return errDisconnected
		}
		args = a
	case <-time.After(waitLimit):
		return fmt.Errorf("%s: no ack for %s", d.name, event)
	}
	if len(args) == 0 {
		return fmt.Errorf("%s: empty ack for %s", d.name, event)
	}
	if string(args[0]) != "null" {
		var e ackErr
		json.Unmarshal(args[0], &e)
		return &e
	}
	if out != nil && len(args) > 1 {
		return json.Unmarshal(args[1], out)
	}
	return nil
}

func (d *device) write(ws *sioclient.WS, text string) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	ws.Conn.SetWriteDeadline(time.Now().Add(waitLimit))
	return ws.Send(text)
}

// send sends a message over the socket and records the ack.
func (d *device) send(event, target, text, clientMsgID string) (message, error) {
	var m message
	err := d.emit(event, map[string]any{"targetId": target, "messageType": 1,
		"content": map[string]any{"content": text}, "clientMsgId": clientMsgID}, &m)
	if err != nil {
		return m, err
	}
	d.mu.Lock()
	d.record(received{via: "ack", sid: m.SendSession.SID, msg: m})
	d.mu.Unlock()
	return m, nil
}

func (d *device) sessions() ([]listedSession, error) {
	var ss []listedSession
	return ss, d.emit("session-list", nil, &ss)
}

// highWater is the last seq up to which the device holds sid without a gap.
func (d *device) highWater(sid string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for d.seen[sid][n+1] {
		n++
	}
	return n
}

// catchUp does what a reconnecting client does: list the sessions, then sync
// each from the last seq it holds without a gap.
func (d *device) catchUp() error {
	ss, err := d.sessions()
	if err != nil {
		return fmt.Errorf("%s: session-list: %w", d.name, err)
	}
	for _, s := range ss {
		for {
			after := d.highWater(s.SID)
			if after >= s.LastSeq {
				break
			}
			var msgs []message
			if err := d.emit("sync", map[string]any{"sid": s.SID, "afterSeq": after, "limit": 50}, &msgs); err != nil {
				return fmt.Errorf("%s: sync: %w", d.name, err)
			}
			if len(msgs) == 0 {
				return fmt.Errorf("%s: sync %s after %d returned nothing but lastSeq is %d", d.name, s.SID, after, s.LastSeq)
			}
			d.mu.Lock()
			for _, m := range msgs {
				d.record(received{via: "sync", sid: s.SID, msg: m})
			}
			d.mu.Unlock()
		}
	}
	return nil
}

// snapshot copies what the device has received.
func (d *device) snapshot() (log []received, pushes map[string]int, reads []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pushes = make(map[string]int, len(d.pushes))
	for k, v := range d.pushes {
		pushes[k] = v
	}
	return append([]received(nil), d.log...), pushes, append([]string(nil), d.reads...)
}

// dialDevice connects a device or fails the test.
func dialDevice(t testing.TB, c *cluster, name, user, token string, node int) *device {
	t.Helper()
	d := newDevice(name, user, token, c.app.AppID)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := d.connect(ctx, node, c.node(node).base); err != nil {
		t.Fatalf("%s on node %d: %v", name, node, err)
	}
	t.Cleanup(d.close)
	return d
}
