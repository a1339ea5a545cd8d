package engineio

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatd/chatd/internal/shard"
)

// Options configures a Server. Zero values take the Engine.IO defaults.
type Options struct {
	PingInterval   time.Duration // default 25s
	PingTimeout    time.Duration // default 20s
	MaxPayload     int64         // default 1,000,000 bytes
	AllowedOrigins []string      // empty: any origin
	SendQueue      int           // frames queued per session before it is dropped; default 1024
	MaxBufferBytes int64         // pending output per session in bytes; over it the session is closed; default 4 MiB
	WriteTimeout   time.Duration // per websocket write; default 10s
	// HandshakeTimeout bounds a websocket upgrade of a polling session: a
	// connection that has not completed it (2probe, 3probe, 5) by then is
	// closed. Default 10s.
	HandshakeTimeout time.Duration
	Logger           *slog.Logger

	// OnConn is called for every new session before any of its packets
	// are read; it must call Conn.SetHandler.
	OnConn func(s *Conn)
}

// Server is an Engine.IO server; it implements http.Handler.
type Server struct {
	opts     Options
	sessions *shard.Map[*Conn]
	count    atomic.Int64
	slow     atomic.Uint64 // sessions closed as slow consumers
	closed   atomic.Bool
	upgrader ws.HTTPUpgrader
	log      *slog.Logger
	tr       transport // the websockets' writer and poller goroutines
}

// NewServer returns a Server with opts, defaults filled in.
func NewServer(opts Options) *Server {
	if opts.PingInterval <= 0 {
		opts.PingInterval = 25 * time.Second
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 20 * time.Second
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 1_000_000
	}
	if opts.SendQueue <= 0 {
		opts.SendQueue = 1024
	}
	if opts.MaxBufferBytes <= 0 {
		opts.MaxBufferBytes = 4 << 20
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Server{opts: opts, sessions: shard.New[*Conn](64), log: opts.Logger}
}

// Options returns the effective options.
func (srv *Server) Options() Options { return srv.opts }

// Count returns the number of open sessions.
func (srv *Server) Count() int { return int(srv.count.Load()) }

// SlowConsumers returns how many sessions were closed because their pending
// output went over MaxBufferBytes (or SendQueue frames).
func (srv *Server) SlowConsumers() uint64 { return srv.slow.Load() }

// Close closes every session, refuses new ones and stops the server's
// goroutines (transport.go). What was queued before is still flushed, by
// each session's own goroutine; those end with their connections.
func (srv *Server) Close() {
	srv.closed.Store(true)
	var all []*Conn
	srv.sessions.Range(func(m map[string]*Conn) {
		for _, s := range m {
			all = append(all, s)
		}
	})
	for _, s := range all {
		s.closeWith("server shutting down", closeGraceful)
	}
	srv.tr.stop()
}

func (srv *Server) lookup(id string) *Conn {
	s, _ := srv.sessions.Load(id)
	return s
}

// add registers s; it reports false when Close has begun, which then may
// not have seen s.
func (srv *Server) add(s *Conn) bool {
	var open bool
	srv.sessions.With(s.id, func(_ int, m map[string]*Conn) {
		m[s.id] = s
		// Read under the lock Close takes to list the shard: a session it
		// did not list sees the flag.
		open = !srv.closed.Load()
	})
	srv.count.Add(1)
	return open
}

func (srv *Server) remove(s *Conn) {
	srv.sessions.With(s.id, func(_ int, m map[string]*Conn) {
		if m[s.id] == s {
			delete(m, s.id)
		}
	})
}

// Engine.IO HTTP error codes.
const (
	errTransportUnknown = 0
	errUnknownSID       = 1
	errBadHandshake     = 2
	errBadRequest       = 3
	errForbidden        = 4
	errUnsupported      = 5
)

var errMessages = [...]string{
	"Transport unknown",
	"Session ID unknown",
	"Bad handshake method",
	"Bad request",
	"Forbidden",
	"Unsupported protocol version",
}

func httpError(w http.ResponseWriter, status, code int) {
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, errMessages[code]})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (srv *Server) originAllowed(origin string) bool {
	return origin == "" || len(srv.opts.AllowedOrigins) == 0 || slices.Contains(srv.opts.AllowedOrigins, origin)
}

// ServeHTTP serves the Engine.IO endpoint.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if !srv.originAllowed(origin) {
		httpError(w, http.StatusForbidden, errForbidden)
		return
	}
	// Unless an outer handler already answered for CORS (chatd's does, for every route).
	if origin != "" && w.Header().Get("Access-Control-Allow-Origin") == "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	q := r.URL.Query()
	var proto int
	switch q.Get("EIO") {
	case "4":
		proto = 4
	case "3":
		proto = 3
	default:
		httpError(w, http.StatusBadRequest, errUnsupported)
		return
	}
	transport := q.Get("transport")
	if transport != "polling" && transport != "websocket" {
		httpError(w, http.StatusBadRequest, errTransportUnknown)
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		if srv.closed.Load() {
			httpError(w, http.StatusServiceUnavailable, errBadRequest)
			return
		}
		if transport == "websocket" {
			srv.handshakeWS(w, r, proto)
			return
		}
		if r.Method != http.MethodGet {
			httpError(w, http.StatusBadRequest, errBadHandshake)
			return
		}
		srv.handshakePolling(w, r, proto)
		return
	}
	s := srv.lookup(sid)
	if s == nil || s.proto != proto {
		httpError(w, http.StatusBadRequest, errUnknownSID)
		return
	}
	switch {
	case transport == "websocket":
		s.upgradeWS(w, r)
	case r.Method == http.MethodGet:
		s.handleGet(w, r)
	case r.Method == http.MethodPost:
		s.handlePost(w, r)
	default:
		httpError(w, http.StatusBadRequest, errBadRequest)
	}
}

func newSID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (srv *Server) newSession(r *http.Request, proto int, upgrades bool) *Conn {
	s := &Conn{
		srv:        srv,
		id:         newSID(),
		proto:      proto,
		b64:        proto == 3 && r.URL.Query().Get("b64") != "",
		rawQuery:   r.URL.RawQuery,
		header:     flattenHeader(r.Header),
		remoteAddr: r.RemoteAddr,
	}
	if upgrades {
		// Only long-polling waits on wake; a nil channel is never ready.
		s.wake = make(chan struct{}, 1)
	}
	// The open packet is the first frame of every session.
	var b strings.Builder
	b.WriteString(`{"sid":"`)
	b.WriteString(s.id)
	if upgrades {
		b.WriteString(`","upgrades":["websocket"],"pingInterval":`)
	} else {
		b.WriteString(`","upgrades":[],"pingInterval":`)
	}
	b.WriteString(strconv.FormatInt(srv.opts.PingInterval.Milliseconds(), 10))
	b.WriteString(`,"pingTimeout":`)
	b.WriteString(strconv.FormatInt(srv.opts.PingTimeout.Milliseconds(), 10))
	if proto == 4 {
		b.WriteString(`,"maxPayload":`)
		b.WriteString(strconv.FormatInt(srv.opts.MaxPayload, 10))
	}
	b.WriteString("}")
	s.queue = append(s.queue, NewFrame(Open, []byte(b.String())))
	s.pending = framesSize(s.queue)
	return s
}

// start registers s, lets the application attach to it and arms its heartbeat.
func (srv *Server) start(s *Conn) {
	open := srv.add(s)
	if srv.opts.OnConn != nil {
		func() {
			defer s.recoverPanic("session start")
			srv.opts.OnConn(s)
		}()
	}
	if !open {
		// Handshaken while Close ran: it ends as Close's sessions do.
		s.closeWith("server shutting down", closeGraceful)
		return
	}
	s.mu.Lock()
	if s.state != stateClosed {
		if s.proto == 4 {
			s.pingDue = time.Now().Add(srv.opts.PingInterval)
			s.timer = time.AfterFunc(srv.opts.PingInterval, s.onTimer)
		} else {
			s.timer = time.AfterFunc(srv.opts.PingInterval+srv.opts.PingTimeout, s.onTimer)
		}
	}
	s.mu.Unlock()
}

func (srv *Server) handshakePolling(w http.ResponseWriter, r *http.Request, proto int) {
	s := srv.newSession(r, proto, true)
	s.state = statePolling
	srv.start(s)
	s.handleGet(w, r)
}

// flattenHeader packs h into one string, "key\x00value\x00" per value, so
// that a session keeps one allocation instead of a map of slices.
func flattenHeader(h http.Header) string {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 2
		}
	}
	var b strings.Builder
	b.Grow(n)
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteByte(0)
			b.WriteString(v)
			b.WriteByte(0)
		}
	}
	return b.String()
}

// unflattenHeader rebuilds the header packed by flattenHeader.
func unflattenHeader(s string) http.Header {
	h := make(http.Header)
	for s != "" {
		k, rest, _ := strings.Cut(s, "\x00")
		v, rest, _ := strings.Cut(rest, "\x00")
		h[k] = append(h[k], v)
		s = rest
	}
	return h
}
