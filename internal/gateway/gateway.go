// Package gateway binds Socket.IO connections to chatd users: it
// authenticates sockets, serves node-chat's socket events with error-first
// acks, and pushes committed messages and read marks to every device of
// every recipient, on every node, through the broker.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/ratelimit"
	"github.com/chatd/chatd/internal/socketio"
)

// Broker topics. Every node subscribes to all of them and delivers to its own
// sockets, or forgets a changed user.
const (
	topicMessages = "messages"
	topicReads    = "reads"
	topicRevoked  = "revoked"
	topicUsers    = "users"
)

// Socket event names (node-chat's, plus chatd's sync and session-read).
const (
	evSessionList     = "session-list"
	evSessionMessages = "session-message-list"
	evSendPrivate     = "send-private-message"
	evSendGroup       = "send-group-message"
	evSetRead         = "set-session-read"
	evSync            = "sync"
	evMessage         = "message"      // push: a new message
	evSessionRead     = "session-read" // push: a session was read on another device
)

// Options configure a Gateway.
type Options struct {
	Logger        *slog.Logger
	OpTimeout     time.Duration // budget of one event's store work; default 10s
	MaxUserSocket int           // sockets one user may hold on this node; 0: unlimited
	// EventRate and EventBurst meter the client events of each user (all
	// of the user's sockets on this node together); a rate of 0 disables
	// it. A valid send is metered by the chat service's send rate instead
	// (it is counted once); an invalid one counts here, and a user out of
	// event budget cannot send either.
	EventRate  float64
	EventBurst int
	// AnswerRate and AnswerBurst meter the bytes of each user's answers
	// (answers.go); a rate of 0 disables it.
	AnswerRate  int64
	AnswerBurst int64
	Groups      GroupOptions // group and profile events (events_groups.go)
	// TypingMaxGroup: typing is not pushed in conversations of more members
	// (0: DefaultTypingMaxGroup).
	TypingMaxGroup int
	// Presence: the grace period before a user with no socket left is
	// announced offline, and the users one socket may watch (presence.go).
	PresenceGrace            time.Duration
	PresenceMaxSubscriptions int
	// OnPresence, if set, is told when a user goes online or offline
	// because of a socket of this node (webhooks); it is called with the
	// presence table locked and must not block.
	OnPresence func(appID, userID string, online bool)
	// OnNodeGone, if set, is told of the users that went offline because
	// another node was taken as dead (no socket left on any live node),
	// each with when that node was last heard of. Every surviving node
	// calls it for the same dead node, so it must make sure only one of
	// them reports it (chat.Service.NodeGone claims it in the store). It
	// is called on a goroutine of its own.
	OnNodeGone func(node string, gone []chat.LastSeen)
}

// Gateway serves chat over a socketio.Server.
type Gateway struct {
	chat    *chat.Service
	broker  broker.Broker
	reg     *registry
	events  *ratelimit.Limiter // per user, every event
	answers *ratelimit.Bytes   // per user, bytes of answers (answers.go)
	opts    Options
	log     *slog.Logger
	unsub   []func()
	groups  groupState

	typingLimit *ratelimit.Limiter // per socket, typing events (events_typing.go)
	settingsLim *ratelimit.Limiter // per user, settings changes (events_settings.go)
	greceipts   receiptBatcher     // group receipts waiting per socket (events_group_receipts.go)
	pres        *presence          // presence.go

	// In-flight events, so that a shutdown can let them finish and flush
	// their acks before the sockets close.
	mu       sync.Mutex
	draining bool
	inflight sync.WaitGroup

	overflowed atomic.Uint64 // sockets closed for a push the fan-out could not queue (overflow.go)

	answersRefused atomic.Uint64 // events refused for their user's answer bytes (answers.go)
}

// identity is what an authenticated socket carries. It is also the payload
// of the revoked and users topics, which need no capabilities.
type identity struct {
	AppID  string
	UserID string
	Caps   capSet `json:"-"`
}

// capSet is what a socket declared it understands in its handshake
// (docs/socket-protocol.md, Capabilities). node-chat's clients declare
// nothing and so get exactly what node-chat sends them.
type capSet uint16

const (
	// capOwnMessages: push the messages the socket's own user sent from
	// another socket or over the HTTP API, marked data.own.
	capOwnMessages capSet = 1 << iota
	// capMessageUpdated: push message-updated (events_lifecycle.go).
	capMessageUpdated
	// capGroupEvents: push group-event to a user who left a group
	// (removed, left, dismissed), who no longer gets its messages.
	capGroupEvents
)

var capNames = map[string]capSet{"own-messages": capOwnMessages, "group-events": capGroupEvents}

func (c capSet) has(x capSet) bool { return c&x != 0 }

// parseCaps reads the capabilities of a handshake: the query's comma lists
// (v3 and v4) and the v4 CONNECT auth's capabilities, an array of strings or
// a comma list. Unknown names and malformed values are ignored.
func parseCaps(query []string, auth json.RawMessage) capSet {
	var c capSet
	add := func(list string) {
		for name := range strings.SplitSeq(list, ",") {
			c |= capNames[strings.TrimSpace(name)]
		}
	}
	for _, q := range query {
		add(q)
	}
	if len(auth) == 0 {
		return c
	}
	var list []json.RawMessage
	var one string
	switch {
	case json.Unmarshal(auth, &list) == nil:
		for _, raw := range list {
			if json.Unmarshal(raw, &one) == nil {
				add(one)
			}
		}
	case json.Unmarshal(auth, &one) == nil:
		add(one)
	}
	return c
}

// New attaches the gateway to srv's default namespace and subscribes to the
// broker. svc's changes reach the broker through a Notifier given to
// chat.New (NewNotifier) on the same broker.
func New(svc *chat.Service, srv *socketio.Server, br broker.Broker, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 10 * time.Second
	}
	g := &Gateway{chat: svc, broker: br, reg: newRegistry(), opts: opts, log: opts.Logger,
		events: ratelimit.New(opts.EventRate, opts.EventBurst), typingLimit: ratelimit.New(typingRate, typingBurst),
		settingsLim: ratelimit.New(settingsRate, settingsBurst),
		answers:     ratelimit.NewBytes(float64(opts.AnswerRate), opts.AnswerBurst)}
	g.pres = newPresence(g)
	if or, ok := br.(broker.OverflowReporter); ok {
		or.OnOverflow(g.overflow)
	}
	g.groups = newGroupState(opts.Groups)
	for topic, h := range map[string]func(any){topicMessages: g.deliverMessage, topicReads: g.deliverRead, topicRevoked: g.disconnectRevoked, topicUsers: g.forgetUser, topicUpdates: g.deliverUpdate,
		topicGroups: g.deliverGroupEvent, topicTyping: g.deliverTyping, topicReceipts: g.deliverReceipt, topicPresence: g.deliverPresence,
		topicSettings: g.deliverSettings, topicGroupReceipts: g.deliverGroupReceipt} {
		var unsub func()
		var err error
		if vs, ok := br.(interface {
			SubscribeValue(string, func(any)) (func(), error)
		}); ok { // broker.Local, broker.EchoSkipper
			unsub, err = vs.SubscribeValue(topic, h)
		} else {
			unsub, err = br.Subscribe(topic, func(p []byte) { h(p) })
		}
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("subscribe %s: %w", topic, err)
		}
		g.unsub = append(g.unsub, unsub)
	}
	nsp := srv.Of("/")
	nsp.Use(g.authenticate)
	nsp.OnConnection(g.connected)
	// Registered once for the namespace, not per socket: an idle socket
	// holds no handlers.
	for name, h := range events {
		g.handle(nsp, name, h)
	}
	nsp.OnDisconnect(g.disconnected)
	g.pres.start()
	return g, nil
}

// Close stops receiving from the broker.
func (g *Gateway) Close() {
	for _, u := range g.unsub {
		u()
	}
	g.unsub = nil
	g.pres.close()
	g.greceipts.close()
}

// Sockets is the number of authenticated sockets on this node.
func (g *Gateway) Sockets() int { return g.reg.count() }

// authenticate accepts node-chat's handshake query (token, appId) or a v4
// CONNECT auth payload {token, appId}, either with optional capabilities.
func (g *Gateway) authenticate(h *socketio.Handshake) (any, error) {
	token, appID := h.Query.Get("token"), h.Query.Get("appId")
	var authCaps json.RawMessage
	if len(h.Auth) > 0 {
		var a struct {
			Token        string          `json:"token"`
			AppID        string          `json:"appId"`
			Capabilities json.RawMessage `json:"capabilities"`
		}
		if json.Unmarshal(h.Auth, &a) == nil {
			if a.Token != "" {
				token = a.Token
			}
			if a.AppID != "" {
				appID = a.AppID
			}
			authCaps = a.Capabilities
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.OpTimeout)
	defer cancel()
	u, err := g.chat.Authenticate(ctx, appID, token)
	if err != nil {
		_, _, msg := chat.Describe(err)
		return nil, errors.New("authentication failed: " + msg)
	}
	if max := g.opts.MaxUserSocket; max > 0 && g.reg.userCount(userKey(u.AppID, u.UserID)) >= max {
		return nil, fmt.Errorf("too many connections for this user (at most %d)", max)
	}
	return identity{AppID: u.AppID, UserID: u.UserID, Caps: parseCaps(h.Query["capabilities"], authCaps)}, nil
}

// connected registers the socket and its handlers. The socketio server calls
// it before acknowledging the connection, so no early event is dropped.
func (g *Gateway) connected(s *socketio.Socket) {
	id, ok := s.Data().(identity)
	if !ok {
		s.Disconnect()
		return
	}
	key := userKey(id.AppID, id.UserID)
	// authenticate refused users already at the limit; this catches the ones
	// that raced past it together.
	if n := g.reg.add(key, s); g.opts.MaxUserSocket > 0 && n > g.opts.MaxUserSocket {
		g.reg.remove(key, s)
		g.log.Warn("too many sockets for user", "app", id.AppID, "user", id.UserID)
		s.Disconnect()
		return
	}
	g.pres.up(s, id)
}

// disconnected unregisters a socket that leaves.
func (g *Gateway) disconnected(s *socketio.Socket, _ string) {
	if id, ok := s.Data().(identity); ok {
		g.reg.remove(userKey(id.AppID, id.UserID), s)
		g.pres.down(s, id)
		g.greceipts.forget(s)
	}
}

// caller is who sent an event: the token's user, on one socket.
type caller struct {
	identity
	origin string // socket id, so pushes skip the device that sent
}

// eventHandler serves one client event; its result goes back in the ack.
type eventHandler func(g *Gateway, ctx context.Context, c caller, arg json.RawMessage) (any, error)

// events are the client → server events. Every one acts as the caller:
// no payload field can name another user.
var events = map[string]eventHandler{
	evSessionList:     (*Gateway).sessionList,
	evSessionMessages: (*Gateway).sessionMessages,
	evSendPrivate:     (*Gateway).sendPrivate,
	evSendGroup:       (*Gateway).sendGroup,
	evSetRead:         (*Gateway).setRead,
	evSync:            (*Gateway).sync,
}

func (g *Gateway) sessionList(ctx context.Context, c caller, _ json.RawMessage) (any, error) {
	return g.chat.Sessions(ctx, c.AppID, c.UserID)
}

func (g *Gateway) sessionMessages(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	if hasAroundSeq(arg) {
		return g.historyAround(ctx, c, arg, false) // events_search.go
	}
	var in struct {
		SID       string  `json:"sid"`
		Limit     flexInt `json:"limit"`
		LastMsgID string  `json:"lastmsgId"`
	}
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	return g.chat.HistoryBySID(ctx, c.AppID, c.UserID, in.SID, chat.Page{Limit: in.Limit.int(), LastMsgID: in.LastMsgID})
}

func (g *Gateway) sendPrivate(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	return g.send(ctx, c, arg, g.chat.SendPrivate)
}

func (g *Gateway) sendGroup(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	return g.send(ctx, c, arg, g.chat.SendGroup)
}

func (g *Gateway) send(ctx context.Context, c caller, arg json.RawMessage, do func(context.Context, chat.SendInput) (chat.SendResult, error)) (any, error) {
	var in struct {
		TargetID    flexString      `json:"targetId"`
		MessageType flexInt         `json:"messageType"`
		Content     json.RawMessage `json:"content"`
		ClientMsgID string          `json:"clientMsgId"`
		ReplyTo     string          `json:"replyTo"`
		Mentions    []string        `json:"mentions"`
		MentionAll  bool            `json:"mentionAll"`
	}
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	content, err := contentArg(in.Content)
	if err != nil {
		return nil, err
	}
	// The sender is always the token's user, whatever senderUserId says.
	return do(ctx, chat.SendInput{
		AppID: c.AppID, SenderID: c.UserID, TargetID: string(in.TargetID),
		Type: in.MessageType.int(), Content: content, ClientMsgID: in.ClientMsgID, Origin: c.origin,
		ReplyTo: in.ReplyTo, Mentions: in.Mentions, MentionAll: in.MentionAll,
	})
}

func (g *Gateway) setRead(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	sid, err := sidArg(arg)
	if err != nil {
		return nil, err
	}
	if _, err := g.chat.MarkRead(ctx, c.AppID, c.UserID, sid, c.origin); err != nil {
		return nil, err
	}
	return []any{}, nil
}

func (g *Gateway) sync(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	if hasAroundSeq(arg) {
		return g.historyAround(ctx, c, arg, true) // events_search.go
	}
	var in struct {
		SID      string  `json:"sid"`
		AfterSeq flexInt `json:"afterSeq"`
		Limit    flexInt `json:"limit"`
	}
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	return g.chat.Sync(ctx, c.AppID, c.UserID, in.SID, int64(in.AfterSeq), in.Limit.int())
}

// errorAck is the error of an error-first ack.
type errorAck struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// handle registers an event whose result goes back through the ack, error
// first: [null, data] or [{status, message}].
func (g *Gateway) handle(nsp *socketio.Namespace, event string, h eventHandler) {
	metered := event != evSendPrivate && event != evSendGroup
	nsp.On(event, func(s *socketio.Socket, args []json.RawMessage, ack socketio.AckFunc) {
		id, ok := s.Data().(identity)
		if !ok {
			return // connected refused it; it is being disconnected
		}
		c := caller{identity: id, origin: s.ID()}
		ctx, cancel := context.WithTimeout(context.Background(), g.opts.OpTimeout)
		defer cancel()
		var arg json.RawMessage
		if len(args) > 0 {
			arg = args[0]
		}
		var data any
		err := errShuttingDown
		key := userKey(id.AppID, id.UserID)
		if metered && !g.events.Allow(key) || !metered && !g.events.Peek(key) {
			err = g.errTooManyEvents()
		} else if aerr := g.admitAnswer(key); metered && aerr != nil {
			err = aerr
		} else if g.enter() {
			data, err = h(g, ctx, c, arg)
			g.inflight.Done()
			if !metered && errors.Is(err, chat.ErrInvalid) {
				g.events.Allow(key) // a malformed send is an event like any other
			}
		}
		if err != nil {
			code, status, msg := chat.Describe(err)
			if status >= 500 {
				g.log.Error("socket event failed", "event", event, "sid", s.ID(), "err", err)
			}
			if ack != nil {
				ack(errorAck{Status: code, Message: msg})
			}
			return
		}
		if ack == nil {
			return
		}
		raw, err := encodeAnswer(data)
		if err != nil {
			g.log.Error("socket answer not encodable", "event", event, "sid", s.ID(), "err", err)
			code, _, msg := chat.Describe(fmt.Errorf("encode answer: %w", err))
			ack(errorAck{Status: code, Message: msg})
			return
		}
		g.answers.Charge(key, int64(len(raw)))
		ack(nil, raw)
	})
}

// errTooManyEvents answers an event past the user's event rate.
func (g *Gateway) errTooManyEvents() error {
	return fmt.Errorf("%w: too many socket events from this user (at most %g per second, bursts of %d); slow down and retry",
		chat.ErrRateLimited, g.opts.EventRate, g.opts.EventBurst)
}

var errShuttingDown = fmt.Errorf("%w: this server is shutting down; reconnect and retry", chat.ErrUnavailable)

// enter admits one event unless the gateway is draining.
func (g *Gateway) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining {
		return false
	}
	g.inflight.Add(1)
	return true
}

// Drain refuses new events (with an error ack asking the client to retry)
// and waits until the events in flight have finished and queued their acks,
// or ctx ends. Close the sockets after it: their queued frames are flushed.
func (g *Gateway) Drain(ctx context.Context) error {
	g.mu.Lock()
	g.draining = true
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { g.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forgetUser drops this node's cached copy of a user changed on some node.
func (g *Gateway) forgetUser(payload any) {
	id, err := decodePayload[identity](payload)
	if err != nil {
		g.log.Warn("bad user payload", "err", err)
		return
	}
	g.chat.ForgetUser(id.AppID, id.UserID)
}

// disconnectRevoked closes the sockets of a user whose tokens were revoked:
// each of them was authenticated with a token that is now void.
func (g *Gateway) disconnectRevoked(payload any) {
	id, err := decodePayload[identity](payload)
	if err != nil {
		g.log.Warn("bad revocation payload", "err", err)
		return
	}
	g.chat.ForgetUser(id.AppID, id.UserID)
	for _, s := range g.reg.sockets(nil, userKey(id.AppID, id.UserID)) {
		s.Disconnect()
	}
}

// pushEnvelope is node-chat's push: {"message":"","status":1,"data":…,"type":"user"}.
type pushEnvelope struct {
	Message string   `json:"message"`
	Status  int      `json:"status"`
	Data    pushData `json:"data"`
	Type    string   `json:"type"`
}

// pushData is the pushed SendResult; Own marks a push of the receiver's own
// message, which only sockets with the own-messages capability get.
type pushData struct {
	chat.SendResult
	Own   bool `json:"own,omitempty"`
	Muted bool `json:"muted,omitempty"` // the receiver muted the session (events_settings.go)
}

// deliverMessage pushes a delivery to the recipients connected to this node,
// each with their own session. The sender's sockets get it only when they
// declared own-messages, and the socket that sent it never (it has the ack):
// node-chat never pushed a user's own messages back to them.
func (g *Gateway) deliverMessage(payload any) {
	d, err := decodePayload[chat.Delivery](payload)
	if err != nil {
		g.log.Warn("bad delivery payload", "err", err)
		return
	}
	var socks []*socketio.Socket
	var enc pushEncoder
	for _, r := range d.Recipients {
		socks = g.reg.sockets(socks[:0], userKey(d.AppID, r.UserID))
		own := r.UserID == d.Message.SenderUserID
		var ps [2]*socketio.Prepared // unmarked, marked muted
		for _, s := range socks {
			if own && !wantsOwn(s, d.Origin) {
				continue
			}
			muted := r.Muted && wantsMuted(s)
			p := &ps[0]
			if muted {
				p = &ps[1]
			}
			if *p == nil {
				if *p, err = enc.prepare(d.Message, r.Session, own, muted); err != nil {
					g.log.Error("encode push", "err", err)
					return
				}
			}
			s.EmitRaw(*p)
		}
	}
}

// wantsOwn reports whether s gets pushes of its own user's messages: it did
// not send the message itself, and declared own-messages.
func wantsOwn(s *socketio.Socket, origin string) bool {
	id, _ := s.Data().(identity)
	return s.ID() != origin && id.Caps.has(capOwnMessages)
}

// wantsMuted reports whether s is told that a push is of a muted session:
// only sockets that declared session-settings (node-chat's never).
func wantsMuted(s *socketio.Socket) bool {
	id, _ := s.Data().(identity)
	return id.Caps.has(capSettings)
}

// pushEncoder builds the pushes of one message. Recipients differ only in
// their session (a group's members only in its sid), so the push is encoded
// once per title and avatar (and once more for the sender's own devices), as
// far as the websocket frame, and each recipient's sid is spliced into it:
// one allocation per recipient.
type pushEncoder struct {
	templates map[templateKey]*socketio.Template
}

type templateKey struct {
	title, avatar string
	own, muted    bool
}

// sidMarker precedes the receiver's sid. It is the last one in the push:
// sendSession follows the message (whose content might contain the same
// bytes as an object key) and only "own", "muted" and "type" come after it.
var sidMarker = []byte(`"sendSession":{"sid":"`)

func (e *pushEncoder) prepare(m chat.Message, ref chat.SessionRef, own, muted bool) (*socketio.Prepared, error) {
	key := templateKey{ref.Title, ref.Avatar, own, muted}
	t, ok := e.templates[key]
	if !ok {
		b, at, err := encodeTemplate(m, ref, own, muted)
		if err != nil {
			return nil, err
		}
		if t, err = socketio.PrepareTemplate("/", evMessage, b, at); err != nil {
			return nil, err
		}
		if e.templates == nil {
			e.templates = make(map[templateKey]*socketio.Template, 2)
		}
		e.templates[key] = t
	}
	// Session ids are hex: nothing to escape.
	return t.With(ref.SID), nil
}

// encodeTemplate returns the JSON of the push of m to the owner of a session
// like ref, with an empty sid at offset at.
// It writes what encoding/json writes for a pushEnvelope, without reflection
// (chat.AppendSendResult; docs/benchmarks.md, one-to-one CPU).
func encodeTemplate(m chat.Message, ref chat.SessionRef, own, muted bool) (b []byte, at int, err error) {
	b = make([]byte, 0, 640)
	b = append(b, `{"message":"","status":`...)
	b = strconv.AppendInt(b, int64(chat.CodeOK), 10)
	b = append(b, `,"data":`...)
	b = chat.AppendSendResult(b, &chat.SendResult{Message: m, SendSession: chat.SessionRef{Title: ref.Title, Avatar: ref.Avatar}})
	b = b[:len(b)-1] // the SendResult's closing brace: pushData's fields follow
	if own {
		b = append(b, `,"own":true`...)
	}
	if muted {
		b = append(b, `,"muted":true`...)
	}
	b = append(b, `},"type":"user"}`...)
	i := bytes.LastIndex(b, sidMarker)
	if i < 0 {
		return nil, 0, errors.New("push has no sendSession")
	}
	return b, i + len(sidMarker), nil
}

// deliverRead tells the user's other devices about a read mark.
func (g *Gateway) deliverRead(payload any) {
	r, err := decodePayload[chat.ReadMark](payload)
	if err != nil {
		g.log.Warn("bad read payload", "err", err)
		return
	}
	socks := g.reg.sockets(nil, userKey(r.AppID, r.UserID))
	if len(socks) == 0 {
		return
	}
	p, err := socketio.Prepare("/", evSessionRead, map[string]any{"sid": r.SID, "readSeq": r.ReadSeq, "unread": 0})
	if err != nil {
		g.log.Error("encode read push", "err", err)
		return
	}
	for _, s := range socks {
		if s.ID() != r.Origin {
			s.EmitRaw(p)
		}
	}
}

// decodePayload returns what a broker handler received: the published value
// itself from an in-process broker, or JSON to decode.
func decodePayload[T any](payload any) (T, error) {
	var v T
	switch p := payload.(type) {
	case T:
		return p, nil
	case []byte:
		err := json.Unmarshal(p, &v)
		return v, err
	}
	return v, fmt.Errorf("unexpected payload %T", payload)
}

func decodeArg(arg json.RawMessage, v any) error {
	if len(arg) == 0 || string(arg) == "null" {
		return fmt.Errorf("%w: missing event payload", chat.ErrInvalid)
	}
	if err := json.Unmarshal(arg, v); err != nil {
		return fmt.Errorf("%w: event payload: %v", chat.ErrInvalid, err)
	}
	return nil
}

// sidArg reads set-session-read's argument: a sid string, or {sid}.
func sidArg(arg json.RawMessage) (string, error) {
	var sid string
	if json.Unmarshal(arg, &sid) == nil {
		return sid, nil
	}
	var in struct {
		SID string `json:"sid"`
	}
	if err := decodeArg(arg, &in); err != nil {
		return "", err
	}
	return in.SID, nil
}

// contentArg accepts an object, or a string holding a JSON object.
func contentArg(raw json.RawMessage) (json.RawMessage, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.HasPrefix(strings.TrimSpace(s), "{") && json.Valid([]byte(s)) {
			return json.RawMessage(s), nil
		}
		return nil, fmt.Errorf("%w: content must be an object", chat.ErrInvalid)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: missing content", chat.ErrInvalid)
	}
	return raw, nil
}

// flexInt accepts 5 or "5", as node-chat's clients send either.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer, got %s", b)
	}
	*f = flexInt(n)
	return nil
}

func (f flexInt) int() int { return int(max(min(int64(f), 1<<30), -1)) }

// flexString accepts "u1" or 1: apps often use numeric user ids.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*f = flexString(s)
		return nil
	}
	if _, err := strconv.ParseFloat(string(b), 64); err == nil {
		*f = flexString(b)
		return nil
	}
	return fmt.Errorf("want a string, got %s", b)
}
