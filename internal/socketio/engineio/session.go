package engineio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// Handler receives a session's messages and its end.
type Handler interface {
	// HandleMessage is called for each message packet, one at a time, in
	// arrival order. data is owned by the handler.
	HandleMessage(s *Conn, data []byte, binary bool)
	// HandleClose is called once when the session ends.
	HandleClose(s *Conn, reason string)
}

// Errors returned by Conn.Send.
var (
	ErrClosed    = errors.New("engineio: session closed")
	ErrQueueFull = errors.New("engineio: send queue full")
)

var errTooLarge = errors.New("engineio: payload too large")

// readChunk is how much a blocking websocket read adds to a message's buffer
// at a time.
const readChunk = 32 << 10

type state int

const (
	statePolling state = iota
	stateUpgrading
	stateWebsocket
	stateClosed
)

type closeMode int

const (
	closeError    closeMode = iota // drop queued frames; a pending poll gets "1"
	closeGraceful                  // flush queued frames, then close
	closeByClient                  // the client sent "1"; a pending poll gets "6"
)

// Conn is one Engine.IO connection, whatever its transport.
type Conn struct {
	srv        *Server
	id         string
	proto      int
	b64        bool   // an EIO3 polling client that takes binary only as base64 (b64=1)
	rawQuery   string // the handshake's query, parsed on demand
	header     string // the handshake's header, flattened by flattenHeader
	remoteAddr string
	handler    Handler
	limit      atomic.Int64 // SetMessageLimit's; 0: MaxPayload

	mu           sync.Mutex
	state        state
	mode         closeMode
	queue        []*Frame
	pending      int64 // bytes queued or being written: Send's cap
	spare        []*Frame
	getActive    bool
	postActive   bool
	wake         chan struct{} // a pending GET waits here
	conn         net.Conn
	probeConn    net.Conn     // a websocket being probed for upgrade
	rd           *wsReader    // the readiness-driven reader of conn, if any
	writing      bool         // the write side is owned (writer.go): by the pool or writeLoop
	wshard       *writerShard // the writer pool shard of this session
	timer        *time.Timer
	awaitingPong bool
	pingDue      time.Time // when the next EIO4 ping is due
	pongDeadline time.Time

	dispatchMu sync.Mutex

	// The websocket write side (writer.go).
	wmu   sync.Mutex      // serialises writes to the connection
	raw   syscall.RawConn // rawOf's, for non-blocking writes; owned by the writer
	rawOf net.Conn
}

// ID returns the session id.
func (s *Conn) ID() string { return s.id }

// Protocol returns the Engine.IO protocol revision: 3 or 4.
func (s *Conn) Protocol() int { return s.proto }

// Query returns the handshake request's query. It is parsed on each call:
// an idle session keeps only the raw string.
func (s *Conn) Query() url.Values {
	q, _ := url.ParseQuery(s.rawQuery)
	return q
}

// Header returns a copy of the handshake request's header, rebuilt on each
// call from the one string the session keeps.
func (s *Conn) Header() http.Header { return unflattenHeader(s.header) }

// RemoteAddr returns the handshake request's remote address.
func (s *Conn) RemoteAddr() string { return s.remoteAddr }

// MaxPayload returns the largest message the session accepts now.
func (s *Conn) MaxPayload() int64 {
	if l := s.limit.Load(); l > 0 && l < s.srv.opts.MaxPayload {
		return l
	}
	return s.srv.opts.MaxPayload
}

// SetMessageLimit lowers the largest message the session accepts to n bytes
// (0 restores Options.MaxPayload): an application keeps what a client that
// has not authenticated yet may send small.
func (s *Conn) SetMessageLimit(n int64) { s.limit.Store(n) }

// SetHandler sets the session's handler; call it from Options.OnConn.
func (s *Conn) SetHandler(h Handler) { s.handler = h }

// Close closes the session after flushing what is queued.
func (s *Conn) Close() { s.closeWith("server close", closeGraceful) }

// Send queues frames to be written together, in order. It never blocks: when
// the session's pending output would go over MaxBufferBytes (or SendQueue
// frames), the session is closed as a slow consumer and nothing is queued;
// the client reconnects and catches up. A batch larger than the cap still goes
// out when nothing else is pending, so one large answer is never refused.
func (s *Conn) Send(frames ...*Frame) error {
	n := framesSize(frames)
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return ErrClosed
	}
	if len(s.queue)+len(frames) > s.srv.opts.SendQueue || (s.pending > 0 && s.pending+n > s.srv.opts.MaxBufferBytes) {
		pending := s.pending
		s.mu.Unlock()
		s.srv.slow.Add(1)
		s.srv.log.Warn("engineio: closing a slow consumer", "sid", s.id, "remote", s.remoteAddr,
			"pendingBytes", pending, "sendBytes", n, "maxBufferBytes", s.srv.opts.MaxBufferBytes)
		// Closing runs the close handlers, which may take locks the caller holds.
		go s.closeSlow()
		return ErrQueueFull
	}
	s.queue = append(s.queue, frames...)
	s.pending += n
	s.kickLocked()
	s.mu.Unlock()
	return nil
}

var closeSlowBytes = ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusPolicyViolation, "slow consumer")))

// closeSlow closes a slow consumer, telling a websocket client why (close
// code 1008, "slow consumer") when no frame is being written to it.
func (s *Conn) closeSlow() {
	s.mu.Lock()
	conn := s.conn
	ws := s.state == stateWebsocket
	s.mu.Unlock()
	if ws && conn != nil && s.wmu.TryLock() {
		_ = conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = conn.Write(closeSlowBytes)
		s.wmu.Unlock()
	}
	s.closeWith("slow consumer", closeError)
}

// framesSize is what frames weigh against MaxBufferBytes: their websocket
// bytes, about what polling sends too.
func framesSize(frames []*Frame) int64 {
	var n int64
	for _, f := range frames {
		n += int64(len(f.ws)) + 1
	}
	return n
}

// written subtracts n bytes the writer has sent from the pending output.
func (s *Conn) written(n int64) {
	s.mu.Lock()
	s.pending = max(s.pending-n, 0)
	s.mu.Unlock()
}

// kickLocked gets queued frames moving on the current transport.
func (s *Conn) kickLocked() {
	if s.state == stateWebsocket {
		if !s.writing {
			s.writing = true
			s.scheduleLocked()
		}
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Conn) recoverPanic(where string) {
	if r := recover(); r != nil {
		s.srv.log.Error("engineio: panic recovered", "sid", s.id, "where", where, "panic", r, "stack", string(debug.Stack()))
		go s.closeWith("panic", closeError)
	}
}

var closeFrameBytes = ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))

func (s *Conn) closeWith(reason string, mode closeMode) {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	prev := s.state
	s.state = stateClosed
	s.mode = mode
	if s.timer != nil {
		s.timer.Stop()
	}
	conn := s.conn
	if mode != closeGraceful {
		s.queue, s.pending = nil, 0
	}
	if prev == stateWebsocket && mode == closeGraceful {
		// The writer flushes the queue, then sends a close frame.
		if !s.writing {
			s.writing = true
			go s.writeLoop(nil, false, 0)
		}
		conn = nil
	}
	probe := s.probeConn
	rd := s.rd
	// A client that posts "1" while no GET is pending still gets its next GET
	// answered (with a noop), as the reference server does.
	deferRemove := prev == statePolling && mode == closeByClient && !s.getActive
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
	if probe != nil {
		_ = probe.Close()
	}
	if rd != nil {
		rd.stop()
	}
	s.srv.count.Add(-1)
	if deferRemove {
		time.AfterFunc(min(s.srv.opts.PingTimeout, 10*time.Second), func() { s.srv.remove(s) })
	} else {
		s.srv.remove(s)
	}
	if s.handler != nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.srv.log.Error("engineio: panic in close handler", "sid", s.id, "panic", r, "stack", string(debug.Stack()))
				}
			}()
			s.handler.HandleClose(s, reason)
		}()
	}
}

func (s *Conn) onTimer() {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	if s.proto == 3 || s.awaitingPong {
		s.mu.Unlock()
		s.closeWith("ping timeout", closeError)
		return
	}
	s.awaitingPong = true
	// The deadline counts from when the ping was due, so a timer that fires
	// late on a busy machine does not give the client extra time.
	s.pongDeadline = s.pingDue.Add(s.srv.opts.PingTimeout)
	s.timer.Reset(max(time.Until(s.pongDeadline), 0))
	s.mu.Unlock()
	_ = s.Send(framePing)
}

// onPacket handles one packet from the client; it reports false once the
// session is closed.
func (s *Conn) onPacket(p Packet) bool {
	switch p.Type {
	case Message:
		s.dispatch(p.Data, p.Binary)
	case Ping:
		if s.proto == 3 {
			s.mu.Lock()
			if s.timer != nil && s.state != stateClosed {
				s.timer.Reset(s.srv.opts.PingInterval + s.srv.opts.PingTimeout)
			}
			s.mu.Unlock()
			if len(p.Data) == 0 {
				_ = s.Send(framePong)
			} else {
				_ = s.Send(NewFrame(Pong, p.Data))
			}
		}
	case Pong:
		s.mu.Lock()
		if s.awaitingPong && s.state != stateClosed {
			s.awaitingPong = false
			s.pingDue = time.Now().Add(s.srv.opts.PingInterval)
			s.timer.Reset(s.srv.opts.PingInterval)
		}
		s.mu.Unlock()
	case Close:
		s.closeWith("client close", closeByClient)
		return false
	}
	s.mu.Lock()
	open := s.state != stateClosed
	s.mu.Unlock()
	return open
}

func (s *Conn) dispatch(data []byte, binary bool) {
	if s.handler == nil {
		return
	}
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	defer s.recoverPanic("message handler")
	s.handler.HandleMessage(s, data, binary)
}

// ---- long-polling ----

func (s *Conn) handleGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.awaitingPong && s.state != stateClosed && time.Now().After(s.pongDeadline) {
		// The timer is late on a busy machine; the session is already dead.
		s.mu.Unlock()
		s.closeWith("ping timeout", closeError)
		s.mu.Lock()
	}
	switch s.state {
	case stateUpgrading:
		s.mu.Unlock()
		s.writePayload(w, []*Frame{frameNoop})
		return
	case statePolling:
	case stateClosed:
		if s.mode == closeByClient && !s.getActive {
			s.mu.Unlock()
			s.srv.remove(s)
			s.writePayload(w, []*Frame{frameNoop})
			return
		}
		fallthrough
	default:
		s.mu.Unlock()
		httpError(w, http.StatusBadRequest, errBadRequest)
		return
	}
	if s.getActive {
		s.mu.Unlock()
		httpError(w, http.StatusBadRequest, errBadRequest)
		s.closeWith("duplicate poll", closeError)
		return
	}
	s.getActive = true
	var out []*Frame
	for {
		if len(s.queue) > 0 {
			out, s.queue, s.pending = s.queue, nil, 0
			if s.state == stateClosed && s.mode == closeGraceful {
				out = append(out, frameClose)
			}
			break
		}
		if s.state == stateClosed {
			if s.mode == closeByClient {
				out = []*Frame{frameNoop}
			} else {
				out = []*Frame{frameClose}
			}
			break
		}
		if s.state != statePolling {
			out = []*Frame{frameNoop}
			break
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-r.Context().Done():
			s.mu.Lock()
			s.getActive = false
			s.mu.Unlock()
			s.closeWith("transport close", closeError)
			return
		}
		s.mu.Lock()
	}
	s.getActive = false
	s.mu.Unlock()
	s.writePayload(w, out)
}

func (s *Conn) writePayload(w http.ResponseWriter, frames []*Frame) {
	var buf []byte
	contentType := "text/plain; charset=UTF-8"
	if s.proto == 3 && !s.b64 && slices.ContainsFunc(frames, (*Frame).Binary) {
		// An EIO3 client that did not ask for base64 gets binary as binary.
		contentType = "application/octet-stream"
		for _, f := range frames {
			buf = f.appendBinaryPayloadV3(buf)
		}
	} else {
		for i, f := range frames {
			buf = f.appendPolling(buf, s.proto, i == 0)
		}
	}
	// The wait for frames may have been long; the write gets its own time.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.srv.opts.WriteTimeout))
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", fmt.Sprint(len(buf)))
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(buf)
}

func (s *Conn) handlePost(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.state != statePolling && s.state != stateUpgrading {
		s.mu.Unlock()
		httpError(w, http.StatusBadRequest, errBadRequest)
		return
	}
	if s.postActive {
		s.mu.Unlock()
		httpError(w, http.StatusBadRequest, errBadRequest)
		s.closeWith("duplicate post", closeError)
		return
	}
	s.postActive = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.postActive = false
		s.mu.Unlock()
	}()

	max := s.MaxPayload()
	if r.ContentLength > max {
		s.closeWith("payload too large", closeError)
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		s.closeWith("transport error", closeError)
		httpError(w, http.StatusBadRequest, errBadRequest)
		return
	}
	if int64(len(body)) > max {
		s.closeWith("payload too large", closeError)
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	var packets []Packet
	if s.proto == 4 {
		packets, err = DecodePayloadV4(body)
	} else {
		packets, err = DecodePayloadV3(body)
	}
	if err != nil {
		s.closeWith("parse error", closeError)
		httpError(w, http.StatusBadRequest, errBadRequest)
		return
	}
	for _, p := range packets {
		if !s.onPacket(p) {
			break
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	_, _ = io.WriteString(w, "ok")
}

// ---- websocket ----

// hijack upgrades r to a websocket and returns the connection and anything
// the client sent early, which must be read before the connection.
func (srv *Server) hijack(w http.ResponseWriter, r *http.Request) (net.Conn, []byte, error) {
	conn, rw, _, err := srv.upgrader.Upgrade(r, w)
	if err != nil {
		return nil, nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	// The request's deadlines (chatd's HTTP timeouts) must not outlive it:
	// the websocket sets its own.
	_ = conn.SetDeadline(time.Time{})
	// Read straight from the connection so that no buffer is held while the
	// socket idles, and let net/http's buffers go.
	var early []byte
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		early = bytes.Clone(b)
	}
	return conn, early, nil
}

// earlyReader reads the bytes a client sent before the upgrade finished,
// then the connection.
type earlyReader struct {
	early []byte
	conn  net.Conn
}

func (r *earlyReader) Read(p []byte) (int, error) {
	if len(r.early) > 0 {
		n := copy(p, r.early)
		r.early = r.early[n:]
		if len(r.early) == 0 {
			r.early = nil
		}
		return n, nil
	}
	return r.conn.Read(p)
}

func (srv *Server) handshakeWS(w http.ResponseWriter, r *http.Request, proto int) {
	conn, early, err := srv.hijack(w, r)
	if err != nil {
		srv.log.Debug("engineio: websocket handshake failed", "err", err)
		return
	}
	s := srv.newSession(r, proto, false)
	s.state = stateWebsocket
	s.conn = conn
	srv.start(s)
	s.mu.Lock()
	if s.state == stateWebsocket && len(s.queue) > 0 {
		s.kickLocked()
	}
	s.mu.Unlock()
	s.serveWS(conn, early)
}

func (s *Conn) upgradeWS(w http.ResponseWriter, r *http.Request) {
	conn, early, err := s.srv.hijack(w, r)
	if err != nil {
		return
	}
	s.mu.Lock()
	ok := s.state == statePolling
	s.mu.Unlock()
	if !ok {
		// Already upgraded (or closing): accept, then close this extra socket.
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write(closeFrameBytes)
		_ = conn.Close()
		return
	}
	// The short upgrade handshake runs on a blocking reader, with a deadline
	// so that a silent connection does not stay; the connection goes to
	// serveWS once it carries the session.
	_ = conn.SetReadDeadline(time.Now().Add(s.srv.opts.HandshakeTimeout))
	go s.readLoop(conn, &earlyReader{early: early, conn: conn}, true)
}

// readLoop reads websocket messages until the connection ends. When probing
// it first runs the upgrade handshake (2probe/3probe/5), then hands the
// connection to serveWS.
func (s *Conn) readLoop(conn net.Conn, rd *earlyReader, probing bool) {
	defer s.recoverPanic("reader")
	var buf []byte
	for {
		msg, op, err := s.readMessage(conn, rd, buf[:0])
		if err != nil {
			if probing {
				s.mu.Lock()
				if s.state == stateUpgrading && s.probeConn == conn {
					s.state = statePolling
					s.probeConn = nil
				}
				s.mu.Unlock()
				_ = conn.Close()
				return
			}
			s.readFailed(conn, err)
			return
		}
		if probing {
			if !s.probe(conn, msg, op) {
				_ = conn.Close()
				return
			}
			s.mu.Lock()
			upgraded := s.state == stateWebsocket && s.conn == conn
			s.mu.Unlock()
			if upgraded {
				// readMessage never reads past a frame: what is left of
				// the early bytes and the connection is the session's.
				_ = conn.SetReadDeadline(time.Time{})
				s.serveWS(conn, rd.early)
				return
			}
			continue
		}
		if !s.onWSMessage(msg, op) {
			return
		}
		// Messages are handed to the handler; only reuse the buffer when
		// the packet was not a message.
		if len(msg) > 0 && msg[0] != '0'+byte(Message) && op == ws.OpText {
			buf = msg
		} else {
			buf = nil
		}
	}
}

// readFailed ends the session after a read error.
func (s *Conn) readFailed(conn net.Conn, err error) {
	if errors.Is(err, errTooLarge) {
		_ = s.writeControl(conn, ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusMessageTooBig, ""))), time.Second)
		s.closeWith("payload too large", closeError)
		return
	}
	s.closeWith("transport close", closeError)
}

// onWSMessage decodes and handles one websocket data message; it reports
// false once the session is closed.
func (s *Conn) onWSMessage(msg []byte, op ws.OpCode) bool {
	var p Packet
	var err error
	if op == ws.OpBinary {
		if s.proto == 3 {
			p, err = DecodeBinaryV3(msg)
		} else {
			p = Packet{Type: Message, Data: msg, Binary: true}
		}
	} else {
		p, err = DecodePacket(msg)
	}
	if err != nil {
		s.closeWith("parse error", closeError)
		return false
	}
	return s.onPacket(p)
}

// onControl answers a client's control frame; it reports false when the
// client closed the connection.
func (s *Conn) onControl(conn net.Conn, op ws.OpCode, payload []byte) bool {
	switch op {
	case ws.OpClose:
		_ = s.writeControl(conn, closeFrameBytes, time.Second)
		return false
	case ws.OpPing:
		// Through writeControl: never into the middle of a frame the writer
		// pool has partly sent.
		_ = s.writeControl(conn, ws.MustCompileFrame(ws.NewPongFrame(payload)), s.srv.opts.WriteTimeout)
	}
	return true
}

// probe handles one message of the upgrade handshake; it reports false when
// the probing socket must be dropped.
func (s *Conn) probe(conn net.Conn, msg []byte, op ws.OpCode) bool {
	if op != ws.OpText {
		return true
	}
	switch string(msg) {
	case "2probe":
		s.mu.Lock()
		if s.state != statePolling {
			s.mu.Unlock()
			return false
		}
		s.state = stateUpgrading
		s.probeConn = conn
		select {
		case s.wake <- struct{}{}:
		default:
		}
		s.mu.Unlock()
		if err := s.writeControl(conn, frameProbe.wsBytes(s.proto), s.srv.opts.WriteTimeout); err != nil {
			return false
		}
	case "5":
		s.mu.Lock()
		if s.state != stateUpgrading {
			s.mu.Unlock()
			return false
		}
		s.state = stateWebsocket
		s.conn = conn
		s.probeConn = nil
		select {
		case s.wake <- struct{}{}:
		default:
		}
		if len(s.queue) > 0 {
			s.kickLocked()
		}
		s.mu.Unlock()
	}
	return true
}

// readMessage reads one complete data message into buf, answering control
// frames on the way.
func (s *Conn) readMessage(conn net.Conn, rd io.Reader, buf []byte) ([]byte, ws.OpCode, error) {
	var op ws.OpCode
	started := false
	for {
		h, err := ws.ReadHeader(rd)
		if err != nil {
			return nil, 0, err
		}
		if !h.Masked || h.Rsv != 0 {
			return nil, 0, ws.ErrProtocolMaskRequired
		}
		if h.OpCode.IsControl() {
			if h.Length > 125 || !h.Fin {
				return nil, 0, ws.ErrProtocolControlPayloadOverflow
			}
			payload := make([]byte, h.Length)
			if _, err := io.ReadFull(rd, payload); err != nil {
				return nil, 0, err
			}
			ws.Cipher(payload, h.Mask, 0)
			if !s.onControl(conn, h.OpCode, payload) {
				return nil, 0, io.EOF
			}
			continue
		}
		if h.OpCode == ws.OpContinuation {
			if !started {
				return nil, 0, ws.ErrProtocolContinuationUnexpected
			}
		} else {
			if started {
				return nil, 0, ws.ErrProtocolContinuationExpected
			}
			started, op = true, h.OpCode
		}
		if int64(len(buf))+h.Length > s.MaxPayload() {
			return nil, 0, errTooLarge
		}
		// The buffer grows as the payload arrives, never from the announced
		// length: a client that announces a large frame and sends nothing
		// costs no memory.
		start := len(buf)
		for left := int(h.Length); left > 0; {
			chunk := min(left, readChunk)
			buf = slices.Grow(buf, chunk)
			at := len(buf)
			buf = buf[:at+chunk]
			if _, err := io.ReadFull(rd, buf[at:]); err != nil {
				return nil, 0, err
			}
			left -= chunk
		}
		ws.Cipher(buf[start:], h.Mask, 0)
		if h.Fin {
			return buf, op, nil
		}
	}
}
