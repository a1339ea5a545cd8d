package socketio

import (
	"sync"
	"sync/atomic"

	"github.com/chatd/chatd/internal/shard"
)

// Middleware authorizes a namespace connection. The data it returns is
// available as Socket.Data; an error refuses the connection with
// CONNECT_ERROR carrying err.Error().
type Middleware func(h *Handshake) (data any, err error)

// Namespace is a Socket.IO namespace.
type Namespace struct {
	srv  *Server
	name string

	mu       sync.RWMutex
	mws      []Middleware
	onConn   []func(*Socket)
	handlers map[string]EventHandler // for every socket of the namespace
	onDisc   []func(*Socket, string)

	count atomic.Int64
	// A socket's own room (named after its id) is not stored in rooms: the
	// socket registry answers for it, which saves two maps per idle socket.
	socks *shard.Map[*Socket]
	rooms *shard.Map[map[*Socket]struct{}]
}

func newNamespace(srv *Server, name string) *Namespace {
	return &Namespace{srv: srv, name: name,
		socks: shard.New[*Socket](32), rooms: shard.New[map[*Socket]struct{}](32)}
}

// Name returns the namespace's name, e.g. "/".
func (ns *Namespace) Name() string { return ns.name }

// Use adds an auth middleware; middlewares run in order and the data of the
// last one that returned non-nil data is kept.
func (ns *Namespace) Use(mw Middleware) {
	ns.mu.Lock()
	ns.mws = append(ns.mws, mw)
	ns.mu.Unlock()
}

// OnConnection registers fn, called for each accepted socket before the
// CONNECT ack is written.
func (ns *Namespace) OnConnection(fn func(s *Socket)) {
	ns.mu.Lock()
	ns.onConn = append(ns.onConn, fn)
	ns.mu.Unlock()
}

// On registers the handler of event for every socket of the namespace, once
// instead of per socket: a socket's own handler (Socket.On) takes precedence.
func (ns *Namespace) On(event string, h EventHandler) {
	ns.mu.Lock()
	if ns.handlers == nil {
		ns.handlers = make(map[string]EventHandler)
	}
	ns.handlers[event] = h
	ns.mu.Unlock()
}

// OnDisconnect registers fn, called once when any socket of the namespace
// leaves, after the socket's own disconnect handlers.
func (ns *Namespace) OnDisconnect(fn func(s *Socket, reason string)) {
	ns.mu.Lock()
	ns.onDisc = append(ns.onDisc, fn)
	ns.mu.Unlock()
}

func (ns *Namespace) handler(event string) EventHandler {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.handlers[event]
}

// Count returns the number of sockets connected to the namespace.
func (ns *Namespace) Count() int { return int(ns.count.Load()) }

func (ns *Namespace) authorize(h *Handshake) (any, error) {
	ns.mu.RLock()
	mws := ns.mws
	ns.mu.RUnlock()
	var data any
	for _, mw := range mws {
		d, err := mw(h)
		if err != nil {
			return nil, err
		}
		if d != nil {
			data = d
		}
	}
	return data, nil
}

func (ns *Namespace) add(s *Socket) {
	ns.socks.Store(s.id, s)
	ns.count.Add(1)
}

func (ns *Namespace) remove(s *Socket) {
	ns.socks.With(s.id, func(_ int, m map[string]*Socket) {
		if m[s.id] == s {
			delete(m, s.id)
		}
	})
	ns.count.Add(-1)
}

// Socket returns the connected socket with the given id, or nil.
func (ns *Namespace) Socket(id string) *Socket {
	s, _ := ns.socks.Load(id)
	return s
}

func (ns *Namespace) connected(s *Socket) {
	ns.mu.RLock()
	fns := ns.onConn
	ns.mu.RUnlock()
	for _, fn := range fns {
		fn(s)
	}
}

func (ns *Namespace) join(room string, s *Socket) {
	ns.rooms.With(room, func(_ int, rooms map[string]map[*Socket]struct{}) {
		m := rooms[room]
		if m == nil {
			m = make(map[*Socket]struct{})
			rooms[room] = m
		}
		m[s] = struct{}{}
	})
}

func (ns *Namespace) leave(room string, s *Socket) {
	ns.rooms.With(room, func(_ int, rooms map[string]map[*Socket]struct{}) {
		if m := rooms[room]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(rooms, room)
			}
		}
	})
}

// RoomSize returns the number of sockets in room.
func (ns *Namespace) RoomSize(room string) int {
	var n int
	ns.rooms.View(room, func(rooms map[string]map[*Socket]struct{}) { n = len(rooms[room]) })
	if n == 0 && ns.Socket(room) != nil {
		return 1
	}
	return n
}

// To starts a broadcast to the members of room.
func (ns *Namespace) To(room string) *Broadcast {
	return &Broadcast{ns: ns, rooms: []string{room}}
}

// Emit sends an event to every socket of the namespace.
func (ns *Namespace) Emit(event string, args ...any) error {
	p, err := Prepare(ns.name, event, args...)
	if err != nil {
		return err
	}
	ns.socks.Range(func(m map[string]*Socket) {
		for _, s := range m {
			_ = s.EmitRaw(p)
		}
	})
	return nil
}

// each calls fn for every member of room, under the room's read lock.
func (ns *Namespace) each(room string, fn func(*Socket)) {
	var n int
	ns.rooms.View(room, func(rooms map[string]map[*Socket]struct{}) {
		members := rooms[room]
		n = len(members)
		for s := range members {
			fn(s)
		}
	})
	if n == 0 {
		if s := ns.Socket(room); s != nil {
			fn(s)
		}
	}
}

// Broadcast is a pending emit to the members of one or more rooms.
type Broadcast struct {
	ns     *Namespace
	rooms  []string
	except []string
}

// To adds another room; a socket in several rooms gets the event once.
func (b *Broadcast) To(room string) *Broadcast {
	b.rooms = append(b.rooms, room)
	return b
}

// Except leaves out the members of room.
func (b *Broadcast) Except(room string) *Broadcast {
	b.except = append(b.except, room)
	return b
}

// Emit encodes the event once and queues it to every member.
func (b *Broadcast) Emit(event string, args ...any) error {
	p, err := Prepare(b.ns.name, event, args...)
	if err != nil {
		return err
	}
	return b.EmitRaw(p)
}

// EmitRaw queues a prepared packet to every member. Members whose queue is
// full are disconnected; that is not an error of the broadcast.
func (b *Broadcast) EmitRaw(p *Prepared) error {
	if len(b.rooms) == 1 && len(b.except) == 0 {
		b.ns.each(b.rooms[0], func(s *Socket) { _ = s.EmitRaw(p) })
		return nil
	}
	skip := make(map[*Socket]struct{})
	for _, room := range b.except {
		b.ns.each(room, func(s *Socket) { skip[s] = struct{}{} })
	}
	for _, room := range b.rooms {
		b.ns.each(room, func(s *Socket) {
			if _, done := skip[s]; !done {
				skip[s] = struct{}{}
				_ = s.EmitRaw(p)
			}
		})
	}
	return nil
}
