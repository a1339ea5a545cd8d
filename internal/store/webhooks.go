package store

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"
)

// Webhooks (docs/webhooks.md). An app's endpoints are rows of
// webhook_endpoints; every event an endpoint subscribes to becomes one row
// of the outbox (a delivery) written in the same transaction as the change
// it reports, so that a crash between the commit and the delivery loses
// nothing. Delivery workers on any node claim due rows with a lease, so a
// dead node's claims are taken over once their lease expires (on SQLite,
// one process per database, the claims and leases are kept in memory and
// only results are written).

// ErrEndpointDeleted is returned when a delivery's endpoint no longer exists.
var ErrEndpointDeleted = errors.New("its webhook endpoint was deleted")

// Delivery statuses.
const (
	DeliveryPending   = 0
	DeliveryDelivered = 1
	DeliveryFailed    = 2
)

// Endpoint statuses.
const (
	EndpointActive = 0
	EndpointPaused = 1
)

// Endpoint is one of an app's webhook endpoints.
type Endpoint struct {
	ID        string
	AppID     string
	URL       string
	Secret    string
	Events    []string
	TimeoutMS int  // the before-send hook's reply deadline (0: the default)
	FailOpen  bool // the before-send hook: allow sends when the endpoint is down
	Status    int  // EndpointActive or EndpointPaused
	Failures  int  // consecutive failed attempts
	Reason    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Subscribes reports whether the endpoint wants events of that type.
func (e Endpoint) Subscribes(typ string) bool {
	for _, t := range e.Events {
		if t == typ {
			return true
		}
	}
	return false
}

// OutboxEvent is an event to deliver to the endpoints Endpoints.
type OutboxEvent struct {
	ID        string // the event id (Chatd-Event-Id); a new id when empty
	AppID     string
	Type      string
	OrderKey  string // deliveries with the same key and endpoint go in order (a conversation id); "" none
	Data      json.RawMessage
	CreatedAt time.Time // time.Now when zero
	Endpoints []string
}

// Delivery is one event on its way to one endpoint: a row of the outbox.
type Delivery struct {
	Seq        int64 // the outbox's order; cursors page on it
	ID         string
	EventID    string
	AppID      string
	EndpointID string
	URL        string // filled by Claim (the endpoint's) and Deliveries
	Secret     string // filled by Claim only
	Type       string
	OrderKey   string
	Data       json.RawMessage
	CreatedAt  time.Time
	Status     int
	Attempts   int
	NextAt     time.Time
	LastError  string
	LastStatus int // HTTP status of the last attempt, 0 if none
	DoneAt     time.Time
}

// DeliveryResult is what a worker records after an attempt.
type DeliveryResult struct {
	Status     int // DeliveryDelivered, DeliveryFailed, or DeliveryPending to retry at NextAt
	NextAt     time.Time
	Error      string
	HTTPStatus int
	// Data replaces the stored payload when set (the first attempt
	// freezes what it computed, such as offlineUserIds).
	Data json.RawMessage
	// PauseAfter pauses the endpoint when its consecutive failures reach
	// it (0: never).
	PauseAfter int
	// Release gives the claim back untried (its attempt is not counted):
	// the rest of a claimed run after one of it failed.
	Release bool
}

// FinishedDelivery is one result of FinishDeliveries.
type FinishedDelivery struct {
	ID     string
	Result DeliveryResult
}

// DeliveryQuery selects an app's deliveries, newest first.
type DeliveryQuery struct {
	Status int   // -1: any
	Before int64 // Seq cursor; 0: from the newest
	Limit  int
}

// WebhookStore is the webhook part of Store.
type WebhookStore interface {
	// SetWebhook creates the app's endpoint for e.URL, or updates it
	// (events, options; the secret only when e.Secret is set), making it
	// active again. It returns the stored endpoint.
	SetWebhook(ctx context.Context, e Endpoint) (Endpoint, error)
	// Webhooks lists the app's endpoints, oldest first.
	Webhooks(ctx context.Context, appID string) ([]Endpoint, error)
	// DeleteWebhook deletes the endpoint (ErrNotFound if the app has no
	// such id) and fails its pending deliveries.
	DeleteWebhook(ctx context.Context, appID, id string) error
	// AddEvents writes events on their own (those that report no other
	// change of the store, such as presence).
	AddEvents(ctx context.Context, evs ...*OutboxEvent) error
	// ClaimDeliveries leases to owner until now+lease up to limit due
	// pending deliveries of active endpoints whose lease (if any) has
	// expired, in Seq order, never one that has an earlier pending
	// delivery with the same endpoint and order key that is not due or
	// claimed: what it claims of one key is a run from the key's first
	// pending delivery, to deliver in order. Each claimed row's attempts
	// is one more.
	ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// FinishDelivery records an attempt of a delivery claimed by owner
	// (nothing when the claim was lost) and updates its endpoint's
	// consecutive failures.
	FinishDelivery(ctx context.Context, id, owner string, r DeliveryResult) error
	// FinishDeliveries is FinishDelivery for several, in one transaction.
	FinishDeliveries(ctx context.Context, owner string, rs []FinishedDelivery) error
	// FinishAndClaim is FinishDeliveries then ClaimDeliveries (none when
	// limit is 0) in one transaction: what a busy worker does.
	FinishAndClaim(ctx context.Context, owner string, rs []FinishedDelivery, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// Deliveries lists the app's deliveries, newest first.
	Deliveries(ctx context.Context, appID string, q DeliveryQuery) ([]Delivery, error)
	// Redeliver makes the app's delivery pending and due now;
	// ErrNotFound if none, ErrEndpointDeleted (nothing changed) if its
	// endpoint was deleted: it could never be sent.
	Redeliver(ctx context.Context, appID, id string) error
}

// eventsKey carries events to write in the transaction of the store call
// made with the context.
type eventsKey struct{}

// Events is a set of outbox events bound to one store call.
type Events struct {
	List []*OutboxEvent
	// After, if set, is called once they are written (say, to wake the
	// delivery worker).
	After func()
	done  atomic.Bool
}

// WithEvents returns a context with which the next write transaction of a
// store call writes evs to the outbox with its change (the events are
// read when that transaction commits, so the caller may fill them in a
// callback of the call, as UpdateMessage's fn). They are written once.
func WithEvents(ctx context.Context, evs ...*OutboxEvent) context.Context {
	if len(evs) == 0 {
		return ctx
	}
	return context.WithValue(ctx, eventsKey{}, &Events{List: evs})
}

// PendingEvents returns the context's events not yet written, or nil.
func PendingEvents(ctx context.Context) *Events {
	e, _ := ctx.Value(eventsKey{}).(*Events)
	if e == nil || e.done.Load() {
		return nil
	}
	return e
}

// Written marks the events written (after their transaction committed).
func (e *Events) Written() {
	if e != nil && !e.done.Swap(true) && e.After != nil {
		e.After()
	}
}

// OutboxRow is one row of the outbox as a backend inserts it.
type OutboxRow struct {
	ID, EventID, AppID, EndpointID, Type, OrderKey string
	Data                                           string
	CreatedAt                                      int64 // Unix ms
}

// OutboxRows expands events into one row per endpoint.
func OutboxRows(evs []*OutboxEvent) []OutboxRow {
	var out []OutboxRow
	for _, ev := range evs {
		if ev == nil || len(ev.Endpoints) == 0 {
			continue
		}
		if ev.ID == "" {
			ev.ID = NewID()
		}
		if ev.CreatedAt.IsZero() {
			ev.CreatedAt = time.Now()
		}
		data := string(ev.Data)
		if data == "" {
			data = "{}"
		}
		for _, ep := range ev.Endpoints {
			out = append(out, OutboxRow{ID: NewID(), EventID: ev.ID, AppID: ev.AppID, EndpointID: ep, Type: ev.Type,
				OrderKey: ev.OrderKey, Data: data, CreatedAt: UnixMS(ev.CreatedAt)})
		}
	}
	return out
}
