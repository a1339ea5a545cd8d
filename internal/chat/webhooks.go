package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// Webhooks (docs/webhooks.md): an app's endpoints, the events written to
// the store's outbox with the changes they report, and the before-send
// hook. Delivery is internal/webhook's.

// Event types.
const (
	EventMessageSent         = "message.sent"
	EventMessageRecalled     = "message.recalled"
	EventMessageEdited       = "message.edited"
	EventGroupCreated        = "group.created"
	EventGroupUpdated        = "group.updated"
	EventGroupDismissed      = "group.dismissed"
	EventGroupMembersChanged = "group.members_changed"
	EventUserOnline          = "user.online"
	EventUserOffline         = "user.offline"
	EventSessionRead         = "session.read"
	// EventBeforeSend is the synchronous moderation hook, not an outbox event.
	EventBeforeSend = "message.before_send"
)

// EventTypes lists every type an endpoint may subscribe to.
var EventTypes = []string{EventMessageSent, EventMessageRecalled, EventMessageEdited, EventGroupCreated,
	EventGroupUpdated, EventGroupDismissed, EventGroupMembersChanged, EventUserOnline, EventUserOffline,
	EventSessionRead, EventBeforeSend}

const (
	// MaxWebhooks bounds an app's endpoints.
	MaxWebhooks = 5
	// DefaultHookTimeout is the before-send hook's reply deadline.
	DefaultHookTimeout = 1500 * time.Millisecond
	maxHookTimeout     = 10 * time.Second
	maxWebhookURLBytes = 2048
	webhookSecretBytes = 24
	// webhookCacheTTL is how long a node trusts its copy of an app's
	// endpoints. A change made on this node is seen at once; one made on
	// another node within this time.
	webhookCacheTTL = time.Second
	// maxCachedApps bounds the endpoint cache's entries (apps).
	maxCachedApps = 100_000
)

// HookReply is the before-send hook's answer.
type HookReply struct {
	Action  string          `json:"action"` // allow, reject, replace
	Reason  string          `json:"reason,omitempty"`
	Content json.RawMessage `json:"content,omitempty"`
}

// WebhookOptions wires the parts of webhooks that need the network.
type WebhookOptions struct {
	// BeforeSend calls the before-send endpoint with the event data and
	// returns its reply; an error means it did not answer properly.
	BeforeSend func(ctx context.Context, ep store.Endpoint, data any) (HookReply, error)
	// CheckURL refuses endpoint URLs (scheme, private addresses); nil
	// checks the scheme only.
	CheckURL func(string) error
	// Written is called after events were committed on this node, so the
	// delivery worker reads them at once; nil: nobody is told.
	Written func()
}

// Webhook is an endpoint as the API shows it. Secret is set only when
// chatd generated it.
type Webhook struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Secret    string   `json:"secret,omitempty"`
	TimeoutMS int      `json:"timeout_ms,omitempty"`
	FailMode  string   `json:"fail_mode,omitempty"`
	Status    string   `json:"status"` // active, paused
	Reason    string   `json:"reason,omitempty"`
	Failures  int      `json:"failures"`
	CreatedAt int64    `json:"createdAt"`
}

// WebhookInput is POST /app/webhooks/set.
type WebhookInput struct {
	URL       string
	Events    []string
	Secret    string
	TimeoutMS int
	FailMode  string // fail_open, fail_closed (default)
}

// endpoints returns the app's webhook endpoints from this node's cache
// (webhookCacheTTL), so that a send to an app without webhooks costs a map
// lookup. When the store fails, the last known endpoints serve: the send
// itself will report the failure.
func (s *Service) endpoints(ctx context.Context, appID string) []store.Endpoint {
	eps, _ := s.hooks.get(ctx, s.now(), appID, func(ctx context.Context) ([]store.Endpoint, error) {
		return s.store.Webhooks(ctx, appID)
	})
	return eps
}

func (s *Service) forgetEndpoints(appID string) { s.hooks.forget(appID) }

// subscribers returns the ids of the app's endpoints that want typ.
func (s *Service) subscribers(ctx context.Context, appID, typ string) []string {
	var out []string
	for _, e := range s.endpoints(ctx, appID) {
		if e.Subscribes(typ) {
			out = append(out, e.ID)
		}
	}
	return out
}

// event returns the outbox event of typ for the app's subscribers, or nil
// when nobody subscribes.
func (s *Service) event(ctx context.Context, appID, typ, orderKey string, data any) *store.OutboxEvent {
	eps := s.subscribers(ctx, appID, typ)
	if len(eps) == 0 {
		return nil
	}
	ev := &store.OutboxEvent{AppID: appID, Type: typ, OrderKey: orderKey, Endpoints: eps, CreatedAt: s.now()}
	if data != nil {
		ev.Data, _ = json.Marshal(data)
	}
	return ev
}

// withEvents binds the non-nil events to the store call made with the
// returned context.
func (s *Service) withEvents(ctx context.Context, evs ...*store.OutboxEvent) context.Context {
	evs = slices.DeleteFunc(evs, func(e *store.OutboxEvent) bool { return e == nil })
	ctx = store.WithEvents(ctx, evs...)
	if e := store.PendingEvents(ctx); e != nil {
		e.After = s.eventsWritten
	}
	return ctx
}

func (s *Service) eventsWritten() {
	if s.webhooks.Written != nil {
		s.webhooks.Written()
	}
}

// sentEvent is the message.sent event of a send, built by the store for
// the stored message; nil when nobody subscribes.
func (s *Service) sentEvent(ctx context.Context, appID string, conv store.Conversation, sender UserRef) func(store.Message) *store.OutboxEvent {
	eps := s.subscribers(ctx, appID, EventMessageSent)
	if len(eps) == 0 {
		return nil
	}
	return func(m store.Message) *store.OutboxEvent {
		m.SenderName, m.SenderAvatar = sender.Name, sender.AvatarURI
		// {"message": wire} without the map json.Marshal would sort and
		// reflect over: the send path's one encode of the message.
		wire, _ := json.Marshal(s.wireMessage(conv, m, m.CreatedAt))
		data := make([]byte, 0, len(wire)+len(`{"message":}`))
		data = append(append(append(data, `{"message":`...), wire...), '}')
		return &store.OutboxEvent{AppID: appID, Type: EventMessageSent, OrderKey: conv.ID, Endpoints: eps, Data: data, CreatedAt: m.CreatedAt}
	}
}

// messageEvent is a change's event (recall, edit), filled by fillMessageEvent
// inside the change's transaction; nil when nobody subscribes.
func (s *Service) messageEvent(ctx context.Context, appID, typ string) (context.Context, *store.OutboxEvent) {
	ev := s.event(ctx, appID, typ, "", nil)
	if ev == nil {
		return ctx, nil
	}
	return s.withEvents(ctx, ev), ev
}

func (s *Service) fillMessageEvent(ev *store.OutboxEvent, conv store.Conversation, m *store.Message, by string) {
	if ev == nil {
		return
	}
	ev.OrderKey = conv.ID
	ev.Data, _ = json.Marshal(map[string]any{"message": s.wireMessage(conv, *m, m.CreatedAt), "by": by})
}

// groupEvents returns ctx with the group events of a change bound to it.
func (s *Service) groupEvents(ctx context.Context, appID, groupID string, evs ...groupEvent) context.Context {
	var out []*store.OutboxEvent
	for _, e := range evs {
		data := map[string]any{"groupId": groupID}
		for k, v := range e.data {
			data[k] = v
		}
		out = append(out, s.event(ctx, appID, e.typ, "group:"+groupID, data))
	}
	return s.withEvents(ctx, out...)
}

type groupEvent struct {
	typ  string
	data map[string]any
}

// sessionRead writes session.read when subscribed. It reports a read mark
// on its own: a lost one is superseded by the next.
func (s *Service) sessionReadEvent(ctx context.Context, appID, userID, sid string, seq int64) {
	if ev := s.event(ctx, appID, EventSessionRead, "", map[string]any{"userId": userID, "sid": sid, "readSeq": seq}); ev != nil {
		if s.store.AddEvents(ctx, ev) == nil {
			s.eventsWritten()
		}
	}
}

// PresenceChanged writes user.online or user.offline when subscribed. The
// gateway calls it on the node that saw the change (docs/webhooks.md).
func (s *Service) PresenceChanged(ctx context.Context, appID, userID string, online bool, at time.Time) {
	typ := EventUserOffline
	if online {
		typ = EventUserOnline
	}
	if ev := s.event(ctx, appID, typ, "user:"+userID, map[string]any{"userId": userID, "at": at.UnixMilli()}); ev != nil {
		if s.store.AddEvents(ctx, ev) == nil {
			s.eventsWritten()
		}
	}
}

// nodeGoneClaim is how long a dead node's claim is kept: far longer than
// the survivors take to sweep it (docs/socket-protocol.md, Presence).
const nodeGoneClaim = 24 * time.Hour

// NodeGone writes user.offline for the users that went offline because
// their node was taken as dead (docs/webhooks.md). Every surviving node
// sees the node die and calls this, so one of them claims each app's
// share in the store first: UseNonce is the insert-if-absent every node
// shares, here under an app id no signed request can carry (app ids are
// hex), and the node that inserts it writes the events.
func (s *Service) NodeGone(ctx context.Context, node string, gone []LastSeen) error {
	var errs []error
	byApp := map[string][]LastSeen{}
	for _, g := range gone {
		byApp[g.AppID] = append(byApp[g.AppID], g)
	}
	for appID, users := range byApp {
		eps := s.subscribers(ctx, appID, EventUserOffline)
		if len(eps) == 0 {
			continue
		}
		won, err := s.store.UseNonce(ctx, "node-gone/"+appID, node, time.Now().Add(nodeGoneClaim))
		if err != nil {
			errs = append(errs, fmt.Errorf("claim app %s's users of node %s: %w", appID, node, err))
			continue
		}
		if !won {
			continue
		}
		evs := make([]*store.OutboxEvent, 0, len(users))
		for _, u := range users {
			data, _ := json.Marshal(map[string]any{"userId": u.UserID, "at": u.At.UnixMilli()})
			evs = append(evs, &store.OutboxEvent{AppID: appID, Type: EventUserOffline, OrderKey: "user:" + u.UserID,
				Endpoints: eps, Data: data, CreatedAt: s.now()})
		}
		if err := s.store.AddEvents(ctx, evs...); err != nil {
			errs = append(errs, fmt.Errorf("user.offline of %d users of node %s: %w", len(evs), node, err))
			continue
		}
		s.eventsWritten()
	}
	return errors.Join(errs...)
}

// WebhookRecipients returns the members of a conversation other than the
// sender: whom a message.sent reached (for offlineUserIds).
func (s *Service) WebhookRecipients(ctx context.Context, conversationID, senderID string) ([]string, error) {
	members, _, err := s.store.Members(ctx, conversationID)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(members))
	for _, m := range members {
		if m.UserID != senderID {
			out = append(out, m.UserID)
		}
	}
	return out, nil
}

// beforeSend runs the app's before-send hook, if any, on the message about
// to be stored: it may refuse it, or replace its content.
func (s *Service) beforeSend(ctx context.Context, in SendInput, conv store.Conversation, nm *store.NewMessage) error {
	if s.webhooks.BeforeSend == nil {
		return nil
	}
	var ep *store.Endpoint
	for _, e := range s.endpoints(ctx, in.AppID) {
		if e.Subscribes(EventBeforeSend) && e.Status == store.EndpointActive {
			ep = &e
			break
		}
	}
	if ep == nil {
		return nil
	}
	data := map[string]any{"message": map[string]any{
		"conversationType": conv.Type, "senderUserId": in.SenderID, "targetId": in.TargetID,
		"messageType": in.Type, "content": in.Content, "clientMsgId": in.ClientMsgID,
	}}
	r, err := s.webhooks.BeforeSend(ctx, *ep, data)
	if err != nil {
		if ep.FailOpen {
			return nil
		}
		return fmt.Errorf("%w: message not sent: the app's moderation hook did not answer", ErrUnavailable)
	}
	switch r.Action {
	case "allow", "":
		return nil
	case "reject":
		reason := r.Reason
		if reason == "" {
			reason = "no reason given"
		}
		return fmt.Errorf("%w: message rejected: %s", ErrForbidden, truncateTo(reason, 200))
	case "replace":
		if !isJSONObject(r.Content) || len(r.Content) > s.limits.MaxContentBytes {
			if ep.FailOpen {
				return nil
			}
			return fmt.Errorf("%w: message not sent: the app's moderation hook replaced it with invalid content", ErrUnavailable)
		}
		nm.Content = r.Content
		return nil
	}
	if ep.FailOpen {
		return nil
	}
	return fmt.Errorf("%w: message not sent: the app's moderation hook answered %q", ErrUnavailable, truncateTo(r.Action, 32))
}

func truncateTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// SetWebhook creates or updates (by URL) one of the app's endpoints.
func (s *Service) SetWebhook(ctx context.Context, appID string, in WebhookInput) (Webhook, error) {
	if len(in.URL) > maxWebhookURLBytes {
		return Webhook{}, fmt.Errorf("%w: url must be at most %d bytes", ErrInvalid, maxWebhookURLBytes)
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return Webhook{}, fmt.Errorf("%w: url must be an http or https URL without credentials", ErrInvalid)
	}
	if s.webhooks.CheckURL != nil {
		if err := s.webhooks.CheckURL(in.URL); err != nil {
			return Webhook{}, fmt.Errorf("%w: url: %v", ErrInvalid, err)
		}
	}
	if len(in.Events) == 0 {
		return Webhook{}, fmt.Errorf("%w: events must be a non-empty array of %s", ErrInvalid, strings.Join(EventTypes, ", "))
	}
	events := dedupe(in.Events)
	for _, e := range events {
		if !slices.Contains(EventTypes, e) {
			return Webhook{}, fmt.Errorf("%w: unknown event %q: want %s", ErrInvalid, truncate(e), strings.Join(EventTypes, ", "))
		}
	}
	if in.TimeoutMS < 0 || time.Duration(in.TimeoutMS)*time.Millisecond > maxHookTimeout {
		return Webhook{}, fmt.Errorf("%w: timeout_ms must be from 1 to %d", ErrInvalid, maxHookTimeout.Milliseconds())
	}
	var failOpen bool
	switch in.FailMode {
	case "", "fail_closed":
	case "fail_open":
		failOpen = true
	default:
		return Webhook{}, fmt.Errorf("%w: fail_mode must be fail_open or fail_closed", ErrInvalid)
	}
	if in.Secret != "" && (len(in.Secret) < 16 || len(in.Secret) > 256) {
		return Webhook{}, fmt.Errorf("%w: secret must be 16 to 256 characters", ErrInvalid)
	}
	existing, err := s.store.Webhooks(ctx, appID)
	if err != nil {
		return Webhook{}, fmt.Errorf("webhooks: %w", err)
	}
	var known bool
	for _, e := range existing {
		if e.URL == in.URL {
			known = true
		} else if slices.Contains(events, EventBeforeSend) && e.Subscribes(EventBeforeSend) {
			return Webhook{}, fmt.Errorf("%w: the app already has a %s endpoint (%s)", ErrInvalid, EventBeforeSend, e.URL)
		}
	}
	if !known && len(existing) >= MaxWebhooks {
		return Webhook{}, fmt.Errorf("%w: an app has at most %d webhook endpoints", ErrInvalid, MaxWebhooks)
	}
	secret := in.Secret
	generated := secret == "" && !known
	if generated {
		var b [webhookSecretBytes]byte
		rand.Read(b[:])
		secret = "whsec_" + hex.EncodeToString(b[:])
	}
	e, err := s.store.SetWebhook(ctx, store.Endpoint{AppID: appID, URL: in.URL, Secret: secret, Events: events,
		TimeoutMS: in.TimeoutMS, FailOpen: failOpen})
	if err != nil {
		return Webhook{}, fmt.Errorf("set webhook: %w", err)
	}
	s.forgetEndpoints(appID)
	w := wireWebhook(e)
	if generated {
		w.Secret = e.Secret
	}
	return w, nil
}

func wireWebhook(e store.Endpoint) Webhook {
	w := Webhook{ID: e.ID, URL: e.URL, Events: e.Events, Status: "active", Reason: e.Reason, Failures: e.Failures,
		CreatedAt: e.CreatedAt.UnixMilli()}
	if e.Status == store.EndpointPaused {
		w.Status = "paused"
	}
	if e.Subscribes(EventBeforeSend) {
		w.TimeoutMS = e.TimeoutMS
		if w.TimeoutMS == 0 {
			w.TimeoutMS = int(DefaultHookTimeout.Milliseconds())
		}
		w.FailMode = "fail_closed"
		if e.FailOpen {
			w.FailMode = "fail_open"
		}
	}
	return w
}

// Webhooks lists the app's endpoints (without their secrets).
func (s *Service) Webhooks(ctx context.Context, appID string) ([]Webhook, error) {
	eps, err := s.store.Webhooks(ctx, appID)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	out := make([]Webhook, 0, len(eps))
	for _, e := range eps {
		out = append(out, wireWebhook(e))
	}
	return out, nil
}

// DeleteWebhook deletes an endpoint by id or by URL.
func (s *Service) DeleteWebhook(ctx context.Context, appID, id, rawURL string) error {
	if id == "" {
		if rawURL == "" {
			return fmt.Errorf("%w: give the endpoint's id or url", ErrInvalid)
		}
		eps, err := s.store.Webhooks(ctx, appID)
		if err != nil {
			return fmt.Errorf("webhooks: %w", err)
		}
		for _, e := range eps {
			if e.URL == rawURL {
				id = e.ID
			}
		}
	}
	if !store.ValidID(id) {
		return fmt.Errorf("%w: no such webhook endpoint", ErrNotFound)
	}
	err := s.store.DeleteWebhook(ctx, appID, id)
	s.forgetEndpoints(appID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: no such webhook endpoint", ErrNotFound)
	}
	return err
}

// WebhookDelivery is a delivery as the API shows it.
type WebhookDelivery struct {
	ID         string          `json:"id"`
	EventID    string          `json:"eventId"`
	EndpointID string          `json:"endpointId"`
	URL        string          `json:"url"`
	Type       string          `json:"type"`
	Status     string          `json:"status"` // pending, delivered, failed
	Attempts   int             `json:"attempts"`
	NextAt     int64           `json:"nextAttemptAt,omitempty"`
	LastError  string          `json:"lastError,omitempty"`
	LastStatus int             `json:"lastStatus,omitempty"`
	CreatedAt  int64           `json:"createdAt"`
	DoneAt     int64           `json:"doneAt,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// DeliveriesPage is GET /app/webhooks/deliveries: newest first; Cursor
// fetches the next page ("" at the end).
type DeliveriesPage struct {
	Deliveries []WebhookDelivery `json:"deliveries"`
	Cursor     string            `json:"cursor"`
}

var deliveryStatuses = []string{"pending", "delivered", "failed"}

// Deliveries lists the app's deliveries.
func (s *Service) Deliveries(ctx context.Context, appID, status string, limit int, cursor string) (DeliveriesPage, error) {
	q := store.DeliveryQuery{Status: -1, Limit: limit}
	if status != "" {
		q.Status = slices.Index(deliveryStatuses, status)
		if q.Status < 0 {
			return DeliveriesPage{}, fmt.Errorf("%w: status must be pending, delivered or failed", ErrInvalid)
		}
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 0 || q.Limit > 200 {
		return DeliveriesPage{}, fmt.Errorf("%w: limit must be from 1 to 200", ErrInvalid)
	}
	if cursor != "" {
		if _, err := fmt.Sscan(cursor, &q.Before); err != nil || q.Before <= 0 {
			return DeliveriesPage{}, fmt.Errorf("%w: bad cursor", ErrInvalid)
		}
	}
	ds, err := s.store.Deliveries(ctx, appID, q)
	if err != nil {
		return DeliveriesPage{}, fmt.Errorf("deliveries: %w", err)
	}
	page := DeliveriesPage{Deliveries: make([]WebhookDelivery, 0, len(ds))}
	for _, d := range ds {
		w := WebhookDelivery{ID: d.ID, EventID: d.EventID, EndpointID: d.EndpointID, URL: d.URL, Type: d.Type,
			Status: deliveryStatuses[d.Status], Attempts: d.Attempts, LastError: d.LastError, LastStatus: d.LastStatus,
			CreatedAt: d.CreatedAt.UnixMilli(), Data: d.Data}
		if d.Status == store.DeliveryPending {
			w.NextAt = d.NextAt.UnixMilli()
		}
		if !d.DoneAt.IsZero() {
			w.DoneAt = d.DoneAt.UnixMilli()
		}
		page.Deliveries = append(page.Deliveries, w)
	}
	if len(ds) == q.Limit {
		page.Cursor = fmt.Sprint(ds[len(ds)-1].Seq)
	}
	return page, nil
}

// Redeliver queues a delivery again, whatever its status, unless its
// endpoint was deleted.
func (s *Service) Redeliver(ctx context.Context, appID, id string) error {
	if !store.ValidID(id) {
		return fmt.Errorf("%w: id must be a delivery id", ErrInvalid)
	}
	err := s.store.Redeliver(ctx, appID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: no such delivery", ErrNotFound)
	case errors.Is(err, store.ErrEndpointDeleted):
		// It would stay pending for ever: no endpoint to send it to.
		return fmt.Errorf("%w: cannot redeliver %s: %w", ErrInvalid, id, store.ErrEndpointDeleted)
	}
	return err
}

// byActor adds "by" (the member who made a change) unless the app did.
func byActor(a Actor, data map[string]any) map[string]any {
	if a.UserID != "" {
		data["by"] = a.UserID
	}
	return data
}

// groupUpdateData is what group.updated says of an update: the fields it set.
func groupUpdateData(a Actor, in GroupUpdateInput) map[string]any {
	data := map[string]any{}
	for k, v := range map[string]*string{"name": in.Name, "avatarUri": in.AvatarURI, "notice": in.Notice} {
		if v != nil {
			data[k] = *v
		}
	}
	if in.Extra != nil {
		data["extra"] = in.Extra
	}
	return byActor(a, data)
}
