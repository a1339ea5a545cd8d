package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
)

// Presence (docs/socket-protocol.md, Presence). A user is online while at
// least one of their sockets is connected on any node. Each node announces
// on the broker when a user's first local socket opens ("up") and, after a
// grace period with none, when the last one closed ("down"); every node
// (this one included) folds the announcements into the same table and
// pushes changes to the sockets that subscribed. Nodes beat every
// presenceBeat; a node silent for presenceNodeTimeout is taken as dead and
// its users go offline: a node's loss is known within presenceNodeTimeout
// plus one beat (≤ 20 s).
const (
	evPresenceSubscribe   = "presence-subscribe"
	evPresenceUnsubscribe = "presence-unsubscribe"
	evPresence            = "presence" // push: {userId, online, lastSeen}

	topicPresence = "presence"

	capPresence capSet = 1 << 5

	// DefaultPresenceGrace is how long a user with no socket left stays
	// online, so that a phone switching networks does not flap.
	DefaultPresenceGrace = 5 * time.Second
	// DefaultPresenceMaxSubscriptions bounds the users one socket watches.
	DefaultPresenceMaxSubscriptions = 500

	presenceBeat        = 5 * time.Second
	presenceNodeTimeout = 15 * time.Second
)

func init() {
	events[evPresenceSubscribe] = (*Gateway).presenceSubscribe
	events[evPresenceUnsubscribe] = (*Gateway).presenceUnsubscribe
	capNames["presence"] = capPresence
}

// presenceNote is what nodes tell each other.
type presenceNote struct {
	Node   string
	Kind   string     // up, down, beat, hello (a node started), state (answer to hello)
	AppID  string     `json:",omitempty"`
	UserID string     `json:",omitempty"`
	At     int64      `json:",omitempty"` // down: when the last socket closed (Unix ms)
	Users  []identity `json:",omitempty"`
}

// PresenceState is one user's presence as pushed and acknowledged.
type PresenceState struct {
	UserID   string `json:"userId"`
	Online   bool   `json:"online"`
	LastSeen int64  `json:"lastSeen"` // Unix ms when last seen online; 0: not since this node started
}

type userPresence struct {
	appID, userID string
	nodes         map[string]struct{} // nodes where the user has a socket
	lastSeen      int64
}

// presence is a node's presence table.
type presence struct {
	g     *Gateway
	node  string
	grace time.Duration
	max   int

	mu       sync.Mutex
	users    map[string]*userPresence
	nodes    map[string]time.Time // other nodes, when last heard of
	local    map[string]int       // this node's sockets per user
	socks    map[*socketio.Socket]string
	pending  map[string]*time.Timer // users whose last local socket closed, within the grace period
	watchers map[string]map[*socketio.Socket]struct{}
	watching map[*socketio.Socket]map[string]struct{}
	seen     map[string]chat.LastSeen // lastSeen waiting to be stored (presence_lastseen.go)
	stop     chan struct{}
	stopped  sync.Once
}

func newPresence(g *Gateway) *presence {
	var b [8]byte
	rand.Read(b[:])
	p := &presence{g: g, node: hex.EncodeToString(b[:]),
		grace: g.opts.PresenceGrace, max: g.opts.PresenceMaxSubscriptions,
		users: map[string]*userPresence{}, nodes: map[string]time.Time{}, local: map[string]int{},
		socks: map[*socketio.Socket]string{}, pending: map[string]*time.Timer{},
		watchers: map[string]map[*socketio.Socket]struct{}{}, watching: map[*socketio.Socket]map[string]struct{}{},
		stop: make(chan struct{})}
	if p.grace <= 0 {
		p.grace = DefaultPresenceGrace
	}
	if p.max <= 0 {
		p.max = DefaultPresenceMaxSubscriptions
	}
	return p
}

// start announces the node (the others answer with their users) and beats.
func (p *presence) start() {
	p.publish(presenceNote{Kind: "hello"})
	go p.seenLoop()
	go func() {
		t := time.NewTicker(presenceBeat)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				p.publish(presenceNote{Kind: "beat"})
				p.sweep(now)
			}
		}
	}()
}

func (p *presence) close() {
	p.stopped.Do(func() {
		close(p.stop)
		p.mu.Lock()
		for _, t := range p.pending {
			t.Stop()
		}
		p.mu.Unlock()
		p.closeSeen()
	})
}

func (p *presence) publish(n presenceNote) {
	n.Node = p.node
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.g.publish(ctx, topicPresence, n)
}

// up counts a socket that connected.
func (p *presence) up(s *socketio.Socket, id identity) {
	key := userKey(id.AppID, id.UserID)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.socks[s] = key
	p.local[key]++
	if p.local[key] > 1 {
		return
	}
	if t, ok := p.pending[key]; ok { // back within the grace period: nobody saw it leave
		t.Stop()
		delete(p.pending, key)
		return
	}
	// Published under the lock, so that this node's ups and downs of a
	// user reach the broker in order.
	p.publish(presenceNote{Kind: "up", AppID: id.AppID, UserID: id.UserID})
}

// down forgets a socket that closed; when it was the user's last one here,
// the user goes offline on this node after the grace period.
func (p *presence) down(s *socketio.Socket, id identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unwatchLocked(s, nil)
	key, ok := p.socks[s]
	if !ok {
		return
	}
	delete(p.socks, s)
	if p.local[key]--; p.local[key] > 0 {
		return
	}
	delete(p.local, key)
	at := time.Now().UnixMilli()
	var t *time.Timer
	t = time.AfterFunc(p.grace, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.pending[key] != t {
			return
		}
		delete(p.pending, key)
		p.publish(presenceNote{Kind: "down", AppID: id.AppID, UserID: id.UserID, At: at})
		p.saveSeenLocked(id.AppID, id.UserID, at)
	})
	p.pending[key] = t
}

// deliver folds a note from any node (this one included) into the table.
func (p *presence) deliver(payload any) {
	n, err := decodePayload[presenceNote](payload)
	if err != nil {
		p.g.log.Warn("bad presence payload", "err", err)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n.Node != p.node {
		if _, known := p.nodes[n.Node]; !known && n.Kind == "beat" {
			// A node taken as dead (its beats were cut off) or not yet
			// heard of: ask every node for its users again.
			p.publish(presenceNote{Kind: "hello"})
		}
		p.nodes[n.Node] = time.Now()
	}
	switch n.Kind {
	case "up":
		p.setLocked(n.AppID, n.UserID, n.Node, true, 0)
	case "down":
		p.setLocked(n.AppID, n.UserID, n.Node, false, n.At)
	case "hello":
		if n.Node != p.node {
			p.publish(presenceNote{Kind: "state", Users: p.localUsersLocked()})
		}
	case "state":
		for _, u := range n.Users {
			p.setLocked(u.AppID, u.UserID, n.Node, true, 0)
		}
	}
}

// localUsersLocked lists the users online through this node (the pending
// ones are still online).
func (p *presence) localUsersLocked() []identity {
	var out []identity
	for key := range p.local {
		if u := p.users[key]; u != nil {
			out = append(out, identity{AppID: u.appID, UserID: u.userID})
		}
	}
	for key := range p.pending {
		if u := p.users[key]; u != nil {
			out = append(out, identity{AppID: u.appID, UserID: u.userID})
		}
	}
	return out
}

// sweep takes the nodes silent for too long as dead: their users go
// offline, last seen when the node was last heard of. Those left with no
// socket on any live node are handed to Options.OnNodeGone (user.offline,
// docs/webhooks.md), outside the lock.
func (p *presence) sweep(now time.Time) {
	gone := p.sweepLocked(now)
	if fn := p.g.opts.OnNodeGone; fn != nil {
		for node, users := range gone {
			go fn(node, users)
		}
	}
}

func (p *presence) sweepLocked(now time.Time) map[string][]chat.LastSeen {
	p.mu.Lock()
	defer p.mu.Unlock()
	var gone map[string][]chat.LastSeen
	for node, last := range p.nodes {
		if now.Sub(last) < presenceNodeTimeout {
			continue
		}
		delete(p.nodes, node)
		for _, u := range p.users {
			if _, ok := u.nodes[node]; ok {
				p.setLocked(u.appID, u.userID, node, false, last.UnixMilli())
				p.saveSeenLocked(u.appID, u.userID, last.UnixMilli())
				if len(u.nodes) == 0 {
					if gone == nil {
						gone = map[string][]chat.LastSeen{}
					}
					gone[node] = append(gone[node], chat.LastSeen{AppID: u.appID, UserID: u.userID, At: last})
				}
			}
		}
	}
	return gone
}

func (p *presence) setLocked(appID, userID, node string, online bool, at int64) {
	key := userKey(appID, userID)
	u := p.users[key]
	if u == nil {
		u = &userPresence{appID: appID, userID: userID, nodes: map[string]struct{}{}}
		p.users[key] = u
	}
	was := len(u.nodes) > 0
	if online {
		u.nodes[node] = struct{}{}
	} else {
		delete(u.nodes, node)
		if len(u.nodes) == 0 && at > u.lastSeen {
			u.lastSeen = at
		}
	}
	if now := len(u.nodes) > 0; now != was {
		p.notifyLocked(key, p.stateLocked(key, userID))
		if node == p.node && p.g.opts.OnPresence != nil {
			p.g.opts.OnPresence(appID, userID, now)
		}
	}
}

func (p *presence) stateLocked(key, userID string) PresenceState {
	st := PresenceState{UserID: userID}
	if u := p.users[key]; u != nil {
		st.Online, st.LastSeen = len(u.nodes) > 0, u.lastSeen
	}
	return st
}

func (p *presence) notifyLocked(key string, st PresenceState) {
	if len(p.watchers[key]) == 0 {
		return
	}
	pp, err := socketio.Prepare("/", evPresence, st)
	if err != nil {
		p.g.log.Error("encode presence", "err", err)
		return
	}
	for s := range p.watchers[key] {
		if id, _ := s.Data().(identity); id.Caps.has(capPresence) {
			s.EmitRaw(pp)
		}
	}
}

// watch subscribes s to the users (already checked), within the bound.
func (p *presence) watch(s *socketio.Socket, appID string, userIDs []string) ([]PresenceState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.watching[s]
	n := len(w)
	for _, u := range userIDs {
		if _, ok := w[userKey(appID, u)]; !ok {
			n++
		}
	}
	if n > p.max {
		return nil, fmt.Errorf("%w: a socket may watch the presence of at most %d users", chat.ErrInvalid, p.max)
	}
	if w == nil {
		w = map[string]struct{}{}
		p.watching[s] = w
	}
	out := make([]PresenceState, 0, len(userIDs))
	for _, u := range userIDs {
		key := userKey(appID, u)
		w[key] = struct{}{}
		if p.watchers[key] == nil {
			p.watchers[key] = map[*socketio.Socket]struct{}{}
		}
		p.watchers[key][s] = struct{}{}
		out = append(out, p.stateLocked(key, u))
	}
	return out, nil
}

// unwatchLocked drops s's subscriptions to keys (all of them when nil).
func (p *presence) unwatchLocked(s *socketio.Socket, keys []string) {
	w := p.watching[s]
	if keys == nil {
		for k := range w {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		delete(w, k)
		if ws := p.watchers[k]; ws != nil {
			delete(ws, s)
			if len(ws) == 0 {
				delete(p.watchers, k)
			}
		}
	}
	if len(w) == 0 {
		delete(p.watching, s)
	}
}

// Online returns the presence of users of an app (GET /user/online).
func (g *Gateway) Online(appID string, userIDs []string) []PresenceState {
	g.pres.mu.Lock()
	out := make([]PresenceState, 0, len(userIDs))
	for _, u := range userIDs {
		out = append(out, g.pres.stateLocked(userKey(appID, u), u))
	}
	g.pres.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.OpTimeout)
	defer cancel()
	g.pres.fillSeen(ctx, appID, out)
	return out
}

type presenceArg struct {
	UserIDs []flexString `json:"userIds"`
}

func (a presenceArg) ids() []string {
	out := make([]string, len(a.UserIDs))
	for i, u := range a.UserIDs {
		out[i] = string(u)
	}
	return out
}

// socket returns the caller's socket.
func (g *Gateway) socket(c caller) *socketio.Socket {
	for _, s := range g.reg.sockets(nil, userKey(c.AppID, c.UserID)) {
		if s.ID() == c.origin {
			return s
		}
	}
	return nil
}

func (g *Gateway) presenceSubscribe(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	var in presenceArg
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	ids := in.ids()
	if len(ids) > g.pres.max {
		return nil, fmt.Errorf("%w: a socket may watch the presence of at most %d users", chat.ErrInvalid, g.pres.max)
	}
	// Only users the caller shares a conversation with: no probing of strangers.
	shared, err := g.chat.SharedWith(ctx, c.AppID, c.UserID, ids)
	if err != nil {
		return nil, err
	}
	s := g.socket(c)
	if s == nil {
		return nil, errShuttingDown
	}
	states, err := g.pres.watch(s, c.AppID, shared)
	if err == nil {
		g.pres.fillSeen(ctx, c.AppID, states)
	}
	return states, err
}

func (g *Gateway) presenceUnsubscribe(_ context.Context, c caller, arg json.RawMessage) (any, error) {
	var in presenceArg
	if len(arg) > 0 && string(arg) != "null" {
		if err := decodeArg(arg, &in); err != nil {
			return nil, err
		}
	}
	s := g.socket(c)
	if s == nil {
		return []any{}, nil
	}
	var keys []string
	for _, u := range in.ids() {
		keys = append(keys, userKey(c.AppID, u))
	}
	if len(in.UserIDs) == 0 {
		keys = nil // every subscription
	}
	g.pres.mu.Lock()
	g.pres.unwatchLocked(s, keys)
	g.pres.mu.Unlock()
	return []any{}, nil
}

func (g *Gateway) deliverPresence(payload any) { g.pres.deliver(payload) }

// OnlineUsers answers GET /user/online: the presence of 1 to
// Options.PresenceMaxSubscriptions users of the app.
func (g *Gateway) OnlineUsers(appID string, userIDs []string) (any, error) {
	if len(userIDs) == 0 || len(userIDs) > g.pres.max {
		return nil, fmt.Errorf("%w: userIds must list 1 to %d users", chat.ErrInvalid, g.pres.max)
	}
	for _, u := range userIDs {
		if u == "" || len(u) > 128 {
			return nil, fmt.Errorf("%w: userIds must be user ids", chat.ErrInvalid)
		}
	}
	return g.Online(appID, userIDs), nil
}
