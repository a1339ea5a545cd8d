package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/chatd/chatd/internal/socketio/engineio"
)

// AckFunc answers a client's event; it sends at most once.
type AckFunc func(args ...any) error

// EventHandler handles one event. ack is nil when the client asked for none.
type EventHandler func(s *Socket, args []json.RawMessage, ack AckFunc)

// AnyHandler handles events that have no EventHandler.
type AnyHandler func(s *Socket, event string, args []json.RawMessage, ack AckFunc)

// Errors returned by emits.
var (
	ErrDisconnected = errors.New("socketio: socket disconnected")
	ErrNamespace    = errors.New("socketio: prepared packet is for another namespace")
	ErrAcked        = errors.New("socketio: ack already sent")
)

// Socket is one client connected to one namespace.
type Socket struct {
	id     string
	ns     *Namespace
	client *client
	auth   json.RawMessage // the CONNECT payload
	at     time.Time       // when the socket connected
	data   any

	mu       sync.Mutex
	handlers map[string]EventHandler
	onAny    AnyHandler
	onDisc   []func(*Socket, string)
	rooms    map[string]struct{}
	acked    bool              // the CONNECT ack was sent
	early    []*engineio.Frame // emitted before the CONNECT ack
	closed   bool

	bins [][]byte // attachments of the event being handled

	ackSeq  int64
	waiting map[int64]func(s *Socket, args []json.RawMessage) // guarded by mu
}

// ID returns the socket id (also the name of its own room).
func (s *Socket) ID() string { return s.id }

// SessionID returns the Engine.IO session id of the connection.
func (s *Socket) SessionID() string { return s.client.sess.ID() }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.ns }

// Data returns what the namespace middleware returned.
func (s *Socket) Data() any { return s.data }

// Handshake returns the connection's handshake. It is rebuilt on each call
// from what the connection keeps (the handshake's query and header are kept
// packed, as an idle socket should hold little).
func (s *Socket) Handshake() *Handshake { return s.client.handshake(s.auth, s.at) }

// Protocol returns the Engine.IO revision: 3 or 4.
func (s *Socket) Protocol() int { return s.client.sess.Protocol() }

// Attachments returns the binary attachments of the event being handled,
// in placeholder order; valid only during the handler call.
func (s *Socket) Attachments() [][]byte { return s.bins }

// On registers the handler of event for this socket; it takes precedence
// over the namespace's (Namespace.On). Handlers run on the connection's reader,
// one at a time in arrival order; while one runs, nothing else is read from
// that connection (heartbeats included), so long work belongs in a goroutine.
func (s *Socket) On(event string, h EventHandler) {
	s.mu.Lock()
	if s.handlers == nil {
		s.handlers = make(map[string]EventHandler)
	}
	s.handlers[event] = h
	s.mu.Unlock()
}

// OnAny registers the fallback for events without a handler.
func (s *Socket) OnAny(h AnyHandler) {
	s.mu.Lock()
	s.onAny = h
	s.mu.Unlock()
}

// OnDisconnect registers fn, called once when the socket leaves.
func (s *Socket) OnDisconnect(fn func(s *Socket, reason string)) {
	s.mu.Lock()
	s.onDisc = append(s.onDisc, fn)
	s.mu.Unlock()
}

// Emit sends an event. It never blocks; when the connection's queue is full
// the connection is closed.
func (s *Socket) Emit(event string, args ...any) error {
	p, err := Prepare(s.ns.name, event, args...)
	if err != nil {
		return err
	}
	return s.EmitRaw(p)
}

// EmitRaw sends a prepared packet.
func (s *Socket) EmitRaw(p *Prepared) error {
	if p.nsp != s.ns.name {
		return ErrNamespace
	}
	return s.send(p.frames)
}

func (s *Socket) send(frames []*engineio.Frame) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrDisconnected
	}
	if !s.acked {
		s.early = append(s.early, frames...)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return s.client.sess.Send(frames...)
}

// ready sends the CONNECT ack, then what was emitted before it.
func (s *Socket) ready(ack *engineio.Frame) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	frames := append([]*engineio.Frame{ack}, s.early...)
	s.early = nil
	s.acked = true
	// Sent under the lock so that no later emit overtakes them.
	_ = s.client.sess.Send(frames...)
	s.mu.Unlock()
}

// Join adds the socket to room. Every socket is always in the room named
// after its id.
func (s *Socket) Join(room string) {
	if room == s.id {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.rooms == nil {
		s.rooms = make(map[string]struct{}, 2)
	}
	_, in := s.rooms[room]
	s.rooms[room] = struct{}{}
	s.mu.Unlock()
	if !in {
		s.ns.join(room, s)
	}
}

// Leave removes the socket from room.
func (s *Socket) Leave(room string) {
	s.mu.Lock()
	_, in := s.rooms[room]
	delete(s.rooms, room)
	s.mu.Unlock()
	if in {
		s.ns.leave(room, s)
	}
}

// Rooms lists the rooms the socket is in, its own included, sorted.
func (s *Socket) Rooms() []string {
	s.mu.Lock()
	out := make([]string, 0, len(s.rooms)+1)
	out = append(out, s.id)
	for r := range s.rooms {
		out = append(out, r)
	}
	s.mu.Unlock()
	slices.Sort(out)
	return out
}

// To starts a broadcast to room from this socket's namespace.
func (s *Socket) To(room string) *Broadcast { return s.ns.To(room) }

// Disconnect leaves the namespace, telling the client.
func (s *Socket) Disconnect() {
	s.mu.Lock()
	acked := s.acked && !s.closed
	s.mu.Unlock()
	if acked {
		_ = s.client.sess.Send(engineio.MessageFrame(appendHeader(nil, Disconnect, 0, s.ns.name, -1)))
	}
	s.onClose("server namespace disconnect")
}

// Close closes the whole underlying connection (all its namespaces).
func (s *Socket) Close() { s.client.sess.Close() }

func (s *Socket) onClose(reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	rooms := s.rooms
	s.rooms = nil
	fns := s.onDisc
	s.early = nil
	s.waiting = nil
	s.mu.Unlock()

	s.client.removeSocket(s)
	for r := range rooms {
		s.ns.leave(r, s)
	}
	s.ns.remove(s)
	s.ns.mu.RLock()
	nsFns := s.ns.onDisc
	s.ns.mu.RUnlock()
	for _, fn := range slices.Concat(fns, nsFns) {
		func() {
			defer s.ns.srv.recover(s.client.sess.ID(), "disconnect handler")
			fn(s, reason)
		}()
	}
}

func (s *Socket) onEvent(p *Packet, bins [][]byte) {
	name, ok := plainString(p.Args[0])
	if !ok {
		if err := json.Unmarshal(p.Args[0], &name); err != nil {
			s.client.fail("bad event name")
			return
		}
	}
	s.mu.Lock()
	h := s.handlers[name]
	anyH := s.onAny
	s.mu.Unlock()
	if h == nil {
		h = s.ns.handler(name)
	}
	var ack AckFunc
	if p.ID >= 0 {
		ack = s.ackFunc(p.ID)
	}
	s.bins = bins
	defer func() { s.bins = nil }()
	switch {
	case h != nil:
		h(s, p.Args[1:], ack)
	case anyH != nil:
		anyH(s, name, p.Args[1:], ack)
	}
}

// EmitWithAck sends an event asking the client to acknowledge it; onAck runs
// on the connection's reader when the answer arrives (attachments available
// through Attachments), and never if the socket disconnects first.
func (s *Socket) EmitWithAck(onAck func(s *Socket, args []json.RawMessage), event string, args ...any) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrDisconnected
	}
	id := s.ackSeq
	s.ackSeq++
	if s.waiting == nil {
		s.waiting = make(map[int64]func(*Socket, []json.RawMessage))
	}
	s.waiting[id] = onAck
	s.mu.Unlock()
	text, atts, err := encodeArgs(Event, s.ns.name, id, event, args)
	if err == nil {
		err = s.send(framesOf(text, atts))
	}
	if err != nil {
		s.mu.Lock()
		delete(s.waiting, id)
		s.mu.Unlock()
	}
	return err
}

func (s *Socket) onAck(p *Packet, bins [][]byte) {
	s.mu.Lock()
	fn := s.waiting[p.ID]
	delete(s.waiting, p.ID)
	s.mu.Unlock()
	if fn == nil {
		return
	}
	s.bins = bins
	defer func() { s.bins = nil }()
	fn(s, p.Args)
}

func (s *Socket) ackFunc(id int64) AckFunc {
	var done atomic.Bool
	return func(args ...any) error {
		if done.Swap(true) {
			return ErrAcked
		}
		if f, ok := rawAckFrame(s.ns.name, id, args); ok {
			return s.send([]*engineio.Frame{f})
		}
		text, atts, err := encodeArgs(Ack, s.ns.name, id, "", args)
		if err != nil {
			return err
		}
		return s.send(framesOf(text, atts))
	}
}

// rawAckFrame encodes an ACK whose arguments are all nil or JSON text
// (json.RawMessage, as the gateway's answers are) straight into its frame,
// the bytes encodeArgs and MessageFrame would give, with one copy of each
// argument instead of three: a large answer then costs the garbage collector
// its own size once (docs/soak.md, Under attack). ok is false for other
// arguments.
func rawAckFrame(nsp string, id int64, args []any) (f *engineio.Frame, ok bool) {
	if len(args) > 4 {
		return nil, false
	}
	var buf [10][]byte
	parts := buf[:0]
	head := appendHeader(make([]byte, 0, len(nsp)+24), Ack, 0, nsp, id)
	parts = append(parts, append(head, '['))
	for i, a := range args {
		if i > 0 {
			parts = append(parts, comma)
		}
		switch v := a.(type) {
		case nil:
			parts = append(parts, null)
		case json.RawMessage:
			if len(v) == 0 {
				v = null
			}
			parts = append(parts, v)
		default:
			return nil, false
		}
	}
	parts = append(parts, closeBracket)
	return engineio.MessageFrameParts(parts...), true
}

var (
	comma        = []byte(",")
	null         = []byte("null")
	closeBracket = []byte("]")
)

// Prepared is a packet encoded once, to be sent to many sockets.
type Prepared struct {
	nsp    string
	frames []*engineio.Frame
	one    [1]*engineio.Frame // frames' array for a Template's packet
}

// Template is an event with one JSON argument into which each recipient's
// own text is spliced at a fixed point (a push that names the recipient's
// session): encoded once, then one packet per recipient without encoding.
type Template struct {
	nsp        string
	head, tail []byte
}

// PrepareTemplate encodes event with arg (valid JSON, sent as is) for
// namespace nsp; With inserts text at byte offset at of arg.
func PrepareTemplate(nsp, event string, arg json.RawMessage, at int) (*Template, error) {
	if nsp == "" {
		nsp = "/"
	}
	if at < 0 || at > len(arg) {
		return nil, fmt.Errorf("socketio: template offset %d outside the argument", at)
	}
	text, _, err := encodeArgs(Event, nsp, -1, event, []any{arg})
	if err != nil {
		return nil, err
	}
	// The argument is last in the packet, before the closing bracket.
	off := len(text) - 1 - len(arg) + at
	return &Template{nsp: nsp, head: text[:off], tail: text[off:]}, nil
}

// With returns the packet with mid spliced in. mid is not escaped: it must be
// valid inside the JSON at that point.
func (t *Template) With(mid string) *Prepared {
	p := &Prepared{nsp: t.nsp}
	p.one[0] = engineio.MessageFrameSplice(t.head, mid, t.tail)
	p.frames = p.one[:]
	return p
}

// Prepare encodes an event for namespace nsp once. []byte arguments become
// binary attachments; json.RawMessage is sent as is; anything else is
// marshalled with encoding/json.
func Prepare(nsp string, event string, args ...any) (*Prepared, error) {
	if nsp == "" {
		nsp = "/"
	}
	text, atts, err := encodeArgs(Event, nsp, -1, event, args)
	if err != nil {
		return nil, err
	}
	return &Prepared{nsp: nsp, frames: framesOf(text, atts)}, nil
}

func framesOf(text []byte, atts [][]byte) []*engineio.Frame {
	frames := make([]*engineio.Frame, 0, 1+len(atts))
	frames = append(frames, engineio.MessageFrame(text))
	for _, a := range atts {
		frames = append(frames, engineio.BinaryFrame(a))
	}
	return frames
}

// BinaryArgs returns args ready to be emitted back: top-level binary
// placeholders of the event being handled become their []byte attachments,
// everything else stays json.RawMessage.
func (s *Socket) BinaryArgs(args []json.RawMessage) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
		if len(s.bins) == 0 || len(a) == 0 || a[0] != '{' {
			continue
		}
		var ph struct {
			Placeholder bool `json:"_placeholder"`
			Num         *int `json:"num"`
		}
		if json.Unmarshal(a, &ph) == nil && ph.Placeholder && ph.Num != nil && *ph.Num >= 0 && *ph.Num < len(s.bins) {
			out[i] = s.bins[*ph.Num]
		}
	}
	return out
}

// plainString returns the JSON string a without decoding when it has no
// escape and is valid UTF-8 (every event name in practice): the same string
// json.Unmarshal would give.
func plainString(a json.RawMessage) (string, bool) {
	if len(a) < 2 || a[0] != '"' || a[len(a)-1] != '"' {
		return "", false
	}
	in := a[1 : len(a)-1]
	if bytes.IndexByte(in, '\\') >= 0 || !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}
