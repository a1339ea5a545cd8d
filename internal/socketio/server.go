// Package socketio is chatd's in-house Socket.IO server: Socket.IO protocol
// v5 over Engine.IO v4 and protocol v4 over Engine.IO v3, on websocket and
// HTTP long-polling. It is transport only and knows nothing about chat.
package socketio

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatd/chatd/internal/socketio/engineio"
)

// Options configures a Server. Zero values take Socket.IO's defaults.
type Options struct {
	PingInterval time.Duration // default 25s
	PingTimeout  time.Duration // default 20s
	MaxPayload   int64         // default 1,000,000 bytes
	// ConnectTimeout (default 45s): a connection must have a namespace
	// connected (authenticated) by then, and again by then whenever it has
	// none left, or it is closed; it also bounds a websocket upgrade and the
	// wait for a binary packet's attachments. Both protocol versions.
	ConnectTimeout time.Duration
	AllowedOrigins []string // empty: allow any origin
	SendQueue      int      // frames queued per connection; full => the connection is closed
	MaxBufferBytes int64    // pending output per connection in bytes; over it the connection is closed (default 4 MiB)
	Logger         *slog.Logger
}

// Server is a Socket.IO server; it implements http.Handler.
type Server struct {
	eio  *engineio.Server
	opts Options
	log  *slog.Logger

	mu   sync.RWMutex
	nsps map[string]*Namespace
}

// NewServer returns a Server with the default namespace "/".
func NewServer(opts Options) *Server {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 45 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	srv := &Server{opts: opts, log: opts.Logger, nsps: make(map[string]*Namespace)}
	srv.eio = engineio.NewServer(engineio.Options{
		PingInterval:     opts.PingInterval,
		PingTimeout:      opts.PingTimeout,
		MaxPayload:       opts.MaxPayload,
		AllowedOrigins:   opts.AllowedOrigins,
		SendQueue:        opts.SendQueue,
		MaxBufferBytes:   opts.MaxBufferBytes,
		HandshakeTimeout: opts.ConnectTimeout,
		Logger:           opts.Logger,
		OnConn:           srv.onSession,
	})
	srv.Of("/")
	return srv
}

// ServeHTTP serves the Engine.IO endpoint; mount it at /socket.io/.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { srv.eio.ServeHTTP(w, r) }

// Close closes every connection.
func (srv *Server) Close() { srv.eio.Close() }

// Count returns the number of open Engine.IO sessions.
func (srv *Server) Count() int { return srv.eio.Count() }

// SlowConsumers returns how many connections were closed because their
// pending output went over the limit.
func (srv *Server) SlowConsumers() uint64 { return srv.eio.SlowConsumers() }

// Of returns the namespace called name, creating it if needed.
func (srv *Server) Of(name string) *Namespace {
	if name == "" || name[0] != '/' {
		name = "/" + name
	}
	srv.mu.RLock()
	ns := srv.nsps[name]
	srv.mu.RUnlock()
	if ns != nil {
		return ns
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if ns = srv.nsps[name]; ns == nil {
		ns = newNamespace(srv, name)
		srv.nsps[name] = ns
	}
	return ns
}

func (srv *Server) lookup(name string) *Namespace {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	return srv.nsps[name]
}

// Handshake describes how a client connected to a namespace.
type Handshake struct {
	Query      url.Values
	Header     http.Header
	RemoteAddr string
	Auth       json.RawMessage // the v4 CONNECT payload; nil if none
	Protocol   int             // Engine.IO revision: 3 or 4
	Time       time.Time
}

// ErrorData may be implemented by a middleware error to send data along
// with the message of a v4 CONNECT_ERROR.
type ErrorData interface {
	error
	Data() any
}

func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// client is the Socket.IO side of one Engine.IO session.
type client struct {
	srv  *Server
	sess *engineio.Conn

	mu      sync.Mutex
	sockets []*Socket   // one per namespace; usually one
	timer   *time.Timer // connect timeout, while no namespace is connected
	closed  bool

	// A binary packet waiting for its attachments; only the reader touches
	// them, except binGen, which the expiry timer reads.
	pending  *Packet
	bins     [][]byte
	binBytes int64
	binGen   atomic.Uint64
}

func (srv *Server) onSession(sess *engineio.Conn) {
	c := &client{srv: srv, sess: sess}
	sess.SetHandler(c)
	// On both protocol versions a connection without an authenticated
	// namespace is closed after the connect timeout: an EIO3 client refused
	// on "/" gets the error packet, then the close.
	c.mu.Lock()
	c.armLocked()
	c.mu.Unlock()
	if sess.Protocol() == 3 {
		// EIO3 clients are connected to "/" implicitly.
		c.connect(&Packet{Type: Connect, Nsp: "/", ID: -1})
	}
}

// preAuthLimit is the largest message a connection without a connected
// namespace may send: a CONNECT packet and its auth payload fit easily.
const preAuthLimit = 16 << 10

// armLocked starts the connect timeout unless it runs, the connection is
// closed or a namespace is connected. Called with c.mu held.
func (c *client) armLocked() {
	if c.timer != nil || c.closed || len(c.sockets) > 0 {
		return
	}
	// Until a namespace is connected, only small packets (CONNECT) make sense.
	c.sess.SetMessageLimit(preAuthLimit)
	c.timer = time.AfterFunc(c.srv.opts.ConnectTimeout, func() {
		c.mu.Lock()
		idle := len(c.sockets) == 0
		c.mu.Unlock()
		if idle {
			c.srv.log.Debug("socketio: closing connection", "sid", c.sess.ID(), "reason", "no namespace connected within the connect timeout")
			c.sess.Close()
		}
	})
}

func (c *client) sendText(b []byte) {
	_ = c.sess.Send(engineio.MessageFrame(b))
}

// HandleMessage implements engineio.Handler.
func (c *client) HandleMessage(sess *engineio.Conn, data []byte, binary bool) {
	if binary {
		if c.pending == nil {
			c.fail("unexpected binary attachment")
			return
		}
		// All attachments of one packet together stay within maxPayload.
		c.binBytes += int64(len(data))
		if c.binBytes > sess.MaxPayload() {
			c.fail("attachments exceed maxPayload")
			return
		}
		c.bins = append(c.bins, data)
		if len(c.bins) == c.pending.Attachments {
			p, bins := c.pending, c.bins
			c.pending, c.bins, c.binBytes = nil, nil, 0
			c.binGen.Add(1)
			c.dispatch(p, bins)
		}
		return
	}
	if c.pending != nil {
		c.fail("text packet while reconstructing a binary one")
		return
	}
	p, err := DecodePacket(data)
	if err != nil {
		c.fail(err.Error())
		return
	}
	if p.Attachments > 0 {
		// Only a connected namespace may send binary packets, and their
		// attachments must follow promptly: nobody parks memory here.
		if (p.Type != BinaryEvent && p.Type != BinaryAck) || c.socket(p.Nsp) == nil {
			c.fail("binary packet for a namespace not connected")
			return
		}
		c.pending = &p
		gen := c.binGen.Add(1)
		time.AfterFunc(c.srv.opts.ConnectTimeout, func() {
			if c.binGen.Load() == gen {
				c.fail("binary attachments not received in time")
			}
		})
		return
	}
	c.dispatch(&p, nil)
}

func (c *client) fail(reason string) {
	c.srv.log.Debug("socketio: closing connection", "sid", c.sess.ID(), "reason", reason)
	c.sess.Close()
}

func (c *client) socket(nsp string) *Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sockets {
		if s.ns.name == nsp {
			return s
		}
	}
	return nil
}

func (c *client) removeSocket(s *Socket) {
	c.mu.Lock()
	if i := slices.Index(c.sockets, s); i >= 0 {
		c.sockets = slices.Delete(c.sockets, i, i+1)
	}
	// A connection that left its last namespace must connect again in time.
	c.armLocked()
	c.mu.Unlock()
}

// handshake rebuilds a namespace connection's handshake.
func (c *client) handshake(auth json.RawMessage, at time.Time) *Handshake {
	return &Handshake{
		Query:      c.sess.Query(),
		Header:     c.sess.Header(),
		RemoteAddr: c.sess.RemoteAddr(),
		Auth:       auth,
		Protocol:   c.sess.Protocol(),
		Time:       at,
	}
}

func (c *client) dispatch(p *Packet, bins [][]byte) {
	switch p.Type {
	case Connect:
		c.connect(p)
	case Disconnect:
		if s := c.socket(p.Nsp); s != nil {
			s.onClose("client namespace disconnect")
		}
	case Event, BinaryEvent:
		if s := c.socket(p.Nsp); s != nil {
			s.onEvent(p, bins)
		}
	case Ack, BinaryAck:
		if s := c.socket(p.Nsp); s != nil {
			s.onAck(p, bins)
		}
	default:
		c.fail("unexpected packet type")
	}
}

func (c *client) connect(p *Packet) {
	ns := c.srv.lookup(p.Nsp)
	if ns == nil {
		c.refuse(p.Nsp, "Invalid namespace", nil)
		return
	}
	if c.socket(p.Nsp) != nil {
		return // already connected to this namespace
	}
	hs := c.handshake(p.Data, time.Now())
	data, err := ns.authorize(hs)
	if err != nil {
		var extra any
		if ed, ok := err.(ErrorData); ok {
			extra = ed.Data()
		}
		c.refuse(p.Nsp, err.Error(), extra)
		return
	}
	s := &Socket{id: newID(), ns: ns, client: c, auth: hs.Auth, at: hs.Time, data: data}
	c.mu.Lock()
	c.sockets = append(c.sockets, s)
	c.sess.SetMessageLimit(0)
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil // an idle connection should not keep it
	}
	c.mu.Unlock()
	ns.add(s)
	ns.connected(s)

	// The ack goes out after OnConnection so that handlers are in place, and
	// before anything OnConnection emitted.
	var ack []byte
	if c.sess.Protocol() == 3 {
		ack = appendHeader(nil, Connect, 0, p.Nsp, -1)
	} else {
		ack = appendHeader(nil, Connect, 0, p.Nsp, -1)
		ack = append(ack, `{"sid":"`...)
		ack = append(ack, s.id...)
		ack = append(ack, `"}`...)
	}
	s.ready(engineio.MessageFrame(ack))
}

func (c *client) refuse(nsp, msg string, data any) {
	var body []byte
	if c.sess.Protocol() == 3 {
		body, _ = json.Marshal(msg)
	} else {
		body, _ = json.Marshal(struct {
			Message string `json:"message"`
			Data    any    `json:"data,omitempty"`
		}{msg, data})
	}
	out := appendHeader(nil, ConnectError, 0, nsp, -1)
	c.sendText(append(out, body...))
}

// HandleClose implements engineio.Handler.
func (c *client) HandleClose(sess *engineio.Conn, reason string) {
	c.mu.Lock()
	c.closed = true
	c.binGen.Add(1)
	if c.timer != nil {
		c.timer.Stop()
	}
	socks := slices.Clone(c.sockets)
	c.mu.Unlock()
	for _, s := range socks {
		s.onClose(reason)
	}
}

func (srv *Server) recover(sid, where string) {
	if r := recover(); r != nil {
		srv.log.Error("socketio: panic recovered", "sid", sid, "where", where, "panic", r, "stack", string(debug.Stack()))
	}
}
