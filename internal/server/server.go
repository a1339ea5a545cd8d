// Package server assembles a chatd node from its configuration: the store,
// the broker, blob storage, the chat service, the HTTP API and the realtime
// gateway, behind one http.Handler. cmd/chatd and the end-to-end tests both
// start chatd through it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/api"
	"github.com/chatd/chatd/internal/blob"
	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/broker/brokers"
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/gateway"
	"github.com/chatd/chatd/internal/httpguard"
	"github.com/chatd/chatd/internal/ratelimit"
	"github.com/chatd/chatd/internal/signature"
	"github.com/chatd/chatd/internal/socketio"
	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/postgres"
	"github.com/chatd/chatd/internal/store/sqlite"
	"github.com/chatd/chatd/internal/web"
	"github.com/chatd/chatd/internal/webhook"
)

// Server is one chatd node.
type Server struct {
	Config  config.Config
	Store   store.Store
	Broker  broker.Broker
	Chat    *chat.Service
	Gateway *gateway.Gateway
	Sockets *socketio.Server
	API     *api.Server
	Blobs   blob.Store
	Webhook *webhook.Worker // delivers the webhook outbox (docs/webhooks.md)
	Handler http.Handler
	log     *slog.Logger
	conns   *httpguard.Listener // set by Listen
	closers []func() error

	blobHealth blobHealth
}

// OpenStore opens the store named by a CHATD_STORE value. An unknown value
// is not echoed: it may hold a password.
func OpenStore(ctx context.Context, dsn string) (store.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn)
	}
	return nil, errors.New("unknown store: want postgres://... or sqlite:PATH")
}

// New builds a node. Close releases what it opened.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{Config: cfg, log: log}
	st, err := OpenStore(ctx, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.Store = st
	s.closers = append(s.closers, st.Close)
	// A store that handles some failures itself (SQLite's WAL checkpoints)
	// reports them in the node's log.
	if l, ok := st.(interface{ SetLogger(*slog.Logger) }); ok {
		l.SetLogger(log)
	}
	s.backfillSearch(st) // search.go

	blobs, err := OpenBlobs(cfg.Blobs, os.Getenv)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open blobs: %w", err)
	}
	s.Blobs = blobs
	s.blobHealth.store = blobs
	checkBlobs(ctx, blobs, cfg.Blobs, log)

	br, err := brokers.Open(ctx, cfg.Broker, log)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open broker: %w", err)
	}
	s.Broker = br
	s.closers = append(s.closers, br.Close)

	// The webhook worker needs the chat service and the gateway, which are
	// built next; it starts once they are.
	s.Webhook = webhook.New(webhook.Options{
		Store: st,
		Recipients: func(ctx context.Context, convID, senderID string) ([]string, error) {
			return s.Chat.WebhookRecipients(ctx, convID, senderID)
		},
		Online:       func(appID string, userIDs []string) map[string]bool { return onlineSet(s.Gateway, appID, userIDs) },
		AllowPrivate: cfg.WebhookAllowPrivate,
		RetryBase:    cfg.WebhookRetryBase,
		RetryFor:     cfg.WebhookRetryFor,
		Timeout:      cfg.WebhookTimeout,
		Concurrency:  cfg.WebhookConcurrency,
		Poll:         cfg.WebhookPoll,
		Logger:       log,
	})
	s.Chat = chat.New(st, chat.Options{
		Webhooks: chat.WebhookOptions{BeforeSend: s.Webhook.BeforeSend, CheckURL: webhook.CheckURL(cfg.WebhookAllowPrivate),
			Written: s.Webhook.Wake},
		Limits: chat.Limits{
			MaxContentBytes: cfg.MaxContentBytes,
			HistoryMax:      cfg.HistoryLimit,
			MaxGroupSize:    cfg.MaxGroupSize,
		},
		TokenTTL:      cfg.TokenTTL,
		UserSendRate:  cfg.UserSendRate,
		UserSendBurst: cfg.UserSendBurst,
		AppSendRate:   cfg.AppSendRate,
		AppSendBurst:  cfg.AppSendBurst,
		Notifier:      gateway.NewNotifier(br, log),
		Lifecycle:     lifecycleOptions(cfg),

		ReceiptsMaxGroup: cfg.ReceiptsMaxGroup,
	})

	s.Sockets = socketio.NewServer(socketio.Options{
		AllowedOrigins: cfg.AllowedOrigins(),
		ConnectTimeout: cfg.SocketConnectTimeout,
		MaxBufferBytes: cfg.MaxSocketBufferBytes,
		Logger:         log,
	})
	s.closers = append(s.closers, func() error { s.Sockets.Close(); return nil })
	presence := webhook.NewPresence(s.Chat.PresenceChanged)
	s.closers = append(s.closers, presence.Close)
	s.Gateway, err = gateway.New(s.Chat, s.Sockets, br, gateway.Options{Logger: log, MaxUserSocket: cfg.MaxUserSockets,
		EventRate: cfg.UserEventRate, EventBurst: cfg.UserEventBurst,
		AnswerRate: cfg.UserAnswerRate, AnswerBurst: cfg.UserAnswerBurst,
		Groups:         gateway.GroupOptions{Manage: manageApps(cfg), Rate: cfg.GroupEventRate, Burst: cfg.GroupEventBurst},
		TypingMaxGroup: cfg.TypingMaxGroup, PresenceGrace: cfg.PresenceGrace, PresenceMaxSubscriptions: cfg.PresenceMaxSubs,
		OnPresence: presence.Push,
		OnNodeGone: func(node string, gone []chat.LastSeen) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.Chat.NodeGone(ctx, node, gone); err != nil {
				log.Warn("user.offline of a dead node's users", "node", node, "users", len(gone), "err", err)
			}
		}})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.closers = append(s.closers, func() error { s.Gateway.Close(); return nil })
	s.Webhook.Start()
	s.closers = append(s.closers, s.Webhook.Close)

	verifier := signature.NewVerifier(cfg.SignatureWindow)
	// The store keeps the nonces of signed requests for the window: a
	// replay is refused after a restart, and on whichever node of a shared
	// store it reaches.
	verifier.Shared = st
	a := api.New(s.Chat, verifier, blobs, api.Options{
		AdminKey:       cfg.AdminKey,
		PublicURL:      cfg.PublicURL,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		MaxUploadBytes: cfg.MaxUploadBytes,
		AuthFailRate:   cfg.AuthFailRateIP,
		AuthFailBurst:  cfg.AuthFailBurstIP,
		Online:         s.Gateway.OnlineUsers,
		Logger:         log,
		Ready:          s.ready,
		Uploads:        uploadLimits(cfg),
		BlobsRedirect:  cfg.BlobsRedirect,
	})
	s.API = a
	mux := http.NewServeMux()
	a.Register(mux)
	mux.Handle("/socket.io/", limitHandshakes(s.Sockets, ratelimit.New(cfg.HandshakeRateIP, cfg.HandshakeBurstIP)))
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("/", api.NotFound)
	site, err := web.New(ctx, s.Chat, web.Options{Demo: cfg.Demo, Logger: log})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("web: %w", err)
	}
	site.Register(mux)
	// CORS stays outermost: every answer, a timed-out one included, carries it.
	s.Handler = api.CORS(cfg.AllowedOrigins(), httpguard.Deadlines(mux, httpguard.Timeouts{
		Read:    cfg.HTTPReadTimeout,
		Write:   cfg.HTTPWriteTimeout,
		MinRate: cfg.UploadMinRate,
	}, classify))
	return s, nil
}

func (s *Server) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := s.Broker.Ping(ctx); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := s.blobHealth.check(ctx); err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	return nil
}

// Close releases the node's resources, last opened first.
func (s *Server) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// classify tells the deadlines of a request: uploads and downloads are bounded
// by their progress, Engine.IO sets its own (long-polls wait for a ping
// interval, websockets outlive the request), everything else by the HTTP
// read and write timeouts.
func classify(r *http.Request) httpguard.Class {
	switch p := r.URL.Path; {
	case p == "/file/upload" || strings.HasPrefix(p, "/files/"):
		return httpguard.Streamed
	case strings.HasPrefix(p, "/socket.io/"):
		return httpguard.Own
	}
	return httpguard.Ordinary
}

// Listen wraps ln with the per-address connection limit (CHATD_MAX_CONNS_PER_IP).
func (s *Server) Listen(ln net.Listener) net.Listener {
	s.conns = httpguard.LimitListener(ln, s.Config.MaxConnsPerIP)
	return s.conns
}

// HTTPServer returns the http.Server that Serve runs, with the node's
// timeouts. Request bodies and answers get theirs per route (classify).
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       s.Config.HTTPIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Serve answers HTTP on ln until ctx is done, then shuts down gracefully:
// new connections are refused and in-flight requests get ShutdownTimeout to
// finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ln = s.Listen(ln)
	hs := s.HTTPServer()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.Config.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.Config.ShutdownTimeout)
	defer cancel()
	// Shutdown closes the listener at once (new connections are refused) and
	// waits for requests in flight. Sockets are not among them once upgraded,
	// and long-polls would hold it up: drain socket events (their acks get
	// queued), then close every session, flushing what is queued; clients
	// reconnect to another node, or to this one after restart.
	shut := make(chan error, 1)
	go func() { shut <- hs.Shutdown(sctx) }()
	if err := s.Gateway.Drain(sctx); err != nil {
		s.log.Warn("socket events still running at shutdown", "err", err)
	}
	s.Sockets.Close()
	err := <-shut
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// limitHandshakes refuses new socket sessions (requests without a sid) and
// websocket upgrades from an address (httpguard.ClientKey: an IPv4 address or
// an IPv6 /64) that opens them too fast, with HTTP 429; the other requests of
// existing sessions (polling) pass.
func limitHandshakes(h http.Handler, l *ratelimit.Limiter) http.Handler {
	if l == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("sid") == "" || q.Get("transport") == "websocket" {
			if !l.Allow(httpguard.ClientKey(r.RemoteAddr)) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				w.Write([]byte(`{"code":429,"message":"too many connections from this address: retry later"}`))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// lifecycleOptions maps the settings, where 0 means "never", onto the chat
// service's options, where 0 means the default.
func lifecycleOptions(cfg config.Config) chat.LifecycleOptions {
	o := chat.LifecycleOptions{RecallWindow: cfg.RecallWindow, EditWindow: cfg.EditWindow, MaxReactions: cfg.MaxReactions}
	if o.RecallWindow == 0 {
		o.RecallWindow = -1
	}
	if o.EditWindow == 0 {
		o.EditWindow = -1
	}
	return o
}

// manageApps is CHATD_GROUP_SOCKET_MANAGE, plus the demo app in demo mode:
// the demo's group panel manages its groups over the socket.
func manageApps(cfg config.Config) func(string) bool {
	m := gateway.ManageApps(cfg.GroupSocketManage)
	if !cfg.Demo {
		return m
	}
	return func(appID string) bool { return appID == web.DemoAppID || m != nil && m(appID) }
}

// onlineSet is which of userIDs have a socket on any node (presence).
func onlineSet(g *gateway.Gateway, appID string, userIDs []string) map[string]bool {
	out := make(map[string]bool, len(userIDs))
	if g == nil {
		return out
	}
	for _, st := range g.Online(appID, userIDs) {
		if st.Online {
			out[st.UserID] = true
		}
	}
	return out
}
