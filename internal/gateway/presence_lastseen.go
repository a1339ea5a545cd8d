package gateway

import (
	"context"
	"time"

	"github.com/chatd/chatd/internal/chat"
)

// lastSeen outlives restarts (docs/socket-protocol.md, Presence): when a
// user goes offline their lastSeen is queued and the queue is written every
// lastSeenFlush in one store call, so a storm of disconnects (a node
// restarting, a network blip) is a few writes, not one per user. Presence
// answers for users this node has no time for are completed from the store.
const (
	lastSeenFlush = time.Second
	// maxLastSeenQueue bounds the queue; past it a write is made at once.
	maxLastSeenQueue = 10_000
)

// saveSeenLocked queues a user's lastSeen (p.mu held).
func (p *presence) saveSeenLocked(appID, userID string, at int64) {
	if at <= 0 {
		return
	}
	if p.seen == nil {
		p.seen = map[string]chat.LastSeen{}
	}
	key := userKey(appID, userID)
	if old, ok := p.seen[key]; ok && old.At.UnixMilli() >= at {
		return
	}
	p.seen[key] = chat.LastSeen{AppID: appID, UserID: userID, At: time.UnixMilli(at)}
	if len(p.seen) >= maxLastSeenQueue {
		batch := p.takeSeenLocked()
		go p.writeSeen(batch)
	}
}

func (p *presence) takeSeenLocked() []chat.LastSeen {
	out := make([]chat.LastSeen, 0, len(p.seen))
	for _, l := range p.seen {
		out = append(out, l)
	}
	clear(p.seen)
	return out
}

// flushSeen writes the queue.
func (p *presence) flushSeen() {
	p.mu.Lock()
	batch := p.takeSeenLocked()
	p.mu.Unlock()
	p.writeSeen(batch)
}

func (p *presence) writeSeen(batch []chat.LastSeen) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.g.chat.SaveLastSeen(ctx, batch); err != nil {
		p.g.log.Warn("save last seen", "users", len(batch), "err", err)
	}
}

// seenLoop writes the queue every lastSeenFlush until the presence stops.
func (p *presence) seenLoop() {
	t := time.NewTicker(lastSeenFlush)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.flushSeen()
		}
	}
}

// closeSeen records the users still online through this node as last seen
// now (the node is stopping), and writes the queue.
func (p *presence) closeSeen() {
	now := time.Now().UnixMilli()
	p.mu.Lock()
	for key := range p.local {
		if u := p.users[key]; u != nil {
			p.saveSeenLocked(u.appID, u.userID, now)
		}
	}
	for key := range p.pending {
		if u := p.users[key]; u != nil {
			p.saveSeenLocked(u.appID, u.userID, now)
		}
	}
	p.mu.Unlock()
	p.flushSeen()
}

// fillSeen completes the lastSeen of offline users this node knows no time
// for (it started after they left) from the store, and remembers it.
func (p *presence) fillSeen(ctx context.Context, appID string, states []PresenceState) {
	var ids []string
	for _, st := range states {
		if !st.Online && st.LastSeen == 0 {
			ids = append(ids, st.UserID)
		}
	}
	if len(ids) == 0 {
		return
	}
	seen, err := p.g.chat.LastSeen(ctx, appID, ids)
	if err != nil {
		p.g.log.Warn("load last seen", "err", err)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, st := range states {
		at, ok := seen[st.UserID]
		if !ok || st.Online || st.LastSeen != 0 {
			continue
		}
		states[i].LastSeen = at.UnixMilli()
		key := userKey(appID, st.UserID)
		u := p.users[key]
		if u == nil {
			u = &userPresence{appID: appID, userID: st.UserID, nodes: map[string]struct{}{}}
			p.users[key] = u
		}
		u.lastSeen = max(u.lastSeen, states[i].LastSeen)
	}
}
