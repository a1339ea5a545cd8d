package sqlite

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// The outbox's pending deliveries in memory (docs/webhooks.md, "Claims").
//
// An SQLite database has one chatd process, so claims need not be rows: the
// node that commits an outbox row hands it to this queue after the commit,
// with its payload, and the worker's claims and releases are memory
// operations. The store writes an attempt's outcome only (one statement for
// a batch of results). On start, and after the queue overflowed, pending
// rows are loaded from the table in seq order. The queue holds what the
// store's claim contract says: runs per endpoint and order key, in order,
// leases, paused endpoints.

// maxMemDeliveries bounds the deliveries held in memory: past it, new rows
// stay in the table until the queue has drained to half (a var for tests).
var maxMemDeliveries = 100_000

type memRow struct {
	seq                                                 int64
	id, eventID, appID, endpointID, typ, orderKey, data string
	createdAt, nextAt                                   int64 // Unix ms
	attempts                                            int
	claimedBy                                           string
	claimUntil                                          int64
	q                                                   *memQueue
}

// memQueue is an endpoint's pending deliveries of one order key, in seq
// order (a delivery without a key has a queue of its own).
type memQueue struct {
	key     [2]string
	rows    []*memRow
	claimed int // rows claimed (a prefix of rows)
	where   int // one of the in* constants
	idx     int // index in its heap
}

const (
	inNone    = iota
	inReady   // due: heap by head seq
	inWaiting // head not due: heap by head next_at
	inParked  // its endpoint is paused
	inBusy    // some of its rows are claimed
)

type memEndpoint struct {
	url, secret     string
	paused, deleted bool
}

type outboxMem struct {
	// commitMu is held from a transaction's first outbox row until those
	// rows are queued after its commit (or dropped after a rollback), so
	// rows are queued in commit order, and by load while it reads the
	// table: no outbox row commits meanwhile. Lock order: the writer, then
	// commitMu, then mu.
	commitMu sync.Mutex

	mu       sync.Mutex
	byID     map[string]*memRow
	queues   map[[2]string]*memQueue
	ready    queueHeap // by head seq
	waiting  queueHeap // by head next_at
	busy     map[*memQueue]struct{}
	parked   map[string][]*memQueue // by endpoint
	eps      map[string]*memEndpoint
	overflow bool  // rows with seq > loaded are in the table only
	loaded   int64 // see overflow
	maxSeq   int64
	// epsLoaded: eps holds every endpoint (loaded once, then kept by
	// SetWebhook, DeleteWebhook and the results that pause one).
	epsLoaded bool
}

func newOutboxMem() *outboxMem {
	m := &outboxMem{byID: map[string]*memRow{}, queues: map[[2]string]*memQueue{}, busy: map[*memQueue]struct{}{},
		parked: map[string][]*memQueue{}, eps: map[string]*memEndpoint{}, overflow: true}
	m.ready.less = func(a, b *memQueue) bool { return a.rows[0].seq < b.rows[0].seq }
	m.waiting.less = func(a, b *memQueue) bool { return a.rows[0].nextAt < b.rows[0].nextAt }
	return m
}

type queueHeap struct {
	qs   []*memQueue
	less func(a, b *memQueue) bool
}

func (h *queueHeap) Len() int           { return len(h.qs) }
func (h *queueHeap) Less(i, j int) bool { return h.less(h.qs[i], h.qs[j]) }
func (h *queueHeap) Swap(i, j int) {
	h.qs[i], h.qs[j] = h.qs[j], h.qs[i]
	h.qs[i].idx, h.qs[j].idx = i, j
}
func (h *queueHeap) Push(x any) { q := x.(*memQueue); q.idx = len(h.qs); h.qs = append(h.qs, q) }
func (h *queueHeap) Pop() any {
	q := h.qs[len(h.qs)-1]
	h.qs[len(h.qs)-1] = nil
	h.qs = h.qs[:len(h.qs)-1]
	return q
}

// outboxTx collects the outbox rows a write transaction inserted, to queue
// once it commits.
type outboxTx struct {
	m      *outboxMem
	rows   []*memRow
	locked bool
}

// outboxTx returns a collector for one write transaction's outbox rows.
func (s *Store) outboxTx() *outboxTx { return &outboxTx{m: s.outbox} }

func (t *outboxTx) add(rows []*memRow) {
	if t == nil || len(rows) == 0 {
		return
	}
	if !t.locked {
		t.m.commitMu.Lock()
		t.locked = true
	}
	t.rows = append(t.rows, rows...)
}

// done queues the rows if the transaction committed.
func (t *outboxTx) done(committed bool) {
	if t == nil || !t.locked {
		return
	}
	if committed {
		t.m.mu.Lock()
		for _, r := range t.rows {
			t.m.add(r)
		}
		t.m.mu.Unlock()
	}
	t.rows, t.locked = nil, false
	t.m.commitMu.Unlock()
}

// add queues r unless the queue overflowed (then it is loaded later) or
// holds it already. mu is held.
func (m *outboxMem) add(r *memRow) {
	if m.byID[r.id] != nil {
		return
	}
	if m.overflow && r.seq > m.loaded {
		return
	}
	if !m.overflow && len(m.byID) >= maxMemDeliveries {
		m.overflow, m.loaded = true, m.maxSeq
		return
	}
	if ep := m.eps[r.endpointID]; ep != nil && ep.deleted {
		return
	}
	m.maxSeq = max(m.maxSeq, r.seq)
	k := [2]string{r.endpointID, r.orderKey}
	if r.orderKey == "" {
		k[1] = "\x00" + r.id
	}
	q := m.queues[k]
	if q == nil {
		q = &memQueue{key: k}
		m.queues[k] = q
	}
	r.q = q
	m.byID[r.id] = r
	// Rows arrive in seq order but for a redelivery.
	i := len(q.rows)
	for i > q.claimed && q.rows[i-1].seq > r.seq {
		i--
	}
	head := i == 0
	q.rows = append(q.rows, nil)
	copy(q.rows[i+1:], q.rows[i:])
	q.rows[i] = r
	if q.where == inNone || head {
		m.place(q)
	}
}

// place puts q where its state says. mu is held.
func (m *outboxMem) place(q *memQueue) {
	m.unplace(q)
	switch {
	case len(q.rows) == 0:
		delete(m.queues, q.key)
	case q.claimed > 0:
		q.where = inBusy
		m.busy[q] = struct{}{}
	case m.eps[q.key[0]] != nil && m.eps[q.key[0]].paused:
		q.where = inParked
		m.parked[q.key[0]] = append(m.parked[q.key[0]], q)
	default:
		q.where = inWaiting
		heap.Push(&m.waiting, q)
	}
}

func (m *outboxMem) unplace(q *memQueue) {
	switch q.where {
	case inReady:
		heap.Remove(&m.ready, q.idx)
	case inWaiting:
		heap.Remove(&m.waiting, q.idx)
	case inBusy:
		delete(m.busy, q)
	case inParked:
		ps := m.parked[q.key[0]]
		for i, p := range ps {
			if p == q {
				ps = append(ps[:i], ps[i+1:]...)
				break
			}
		}
		if len(ps) == 0 {
			delete(m.parked, q.key[0])
		} else {
			m.parked[q.key[0]] = ps
		}
	}
	q.where = inNone
}

// remove drops r from its queue. mu is held; the caller places the queue.
func (m *outboxMem) remove(r *memRow) {
	q := r.q
	for i, x := range q.rows {
		if x == r {
			q.rows = append(q.rows[:i], q.rows[i+1:]...)
			if r.claimedBy != "" {
				q.claimed--
			}
			break
		}
	}
	delete(m.byID, r.id)
	r.q = nil
}

// unclaim gives r's claim back. mu is held; the caller places the queue.
func (m *outboxMem) unclaim(r *memRow) {
	if r.claimedBy == "" {
		return
	}
	r.claimedBy, r.claimUntil = "", 0
	r.q.claimed--
	// Claimed rows are a prefix: the unclaimed one goes after them.
	q := r.q
	i := 0
	for q.rows[i] != r {
		i++
	}
	copy(q.rows[i:], q.rows[i+1:])
	q.rows[len(q.rows)-1] = r
	// Keep the unclaimed part in seq order.
	for j := len(q.rows) - 1; j > q.claimed && q.rows[j-1].seq > q.rows[j].seq; j-- {
		q.rows[j-1], q.rows[j] = q.rows[j], q.rows[j-1]
	}
}

// claim claims up to limit due deliveries for owner.
func (m *outboxMem) claim(owner string, now time.Time, lease time.Duration, limit int) []store.Delivery {
	ms := store.UnixMS(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	// Expired leases: their rows are claimable again.
	for q := range m.busy {
		expired := false
		for _, r := range q.rows[:q.claimed] {
			if r.claimUntil <= ms {
				expired = true
			}
		}
		if expired {
			for _, r := range append([]*memRow(nil), q.rows[:q.claimed]...) {
				if r.claimUntil <= ms {
					m.unclaim(r)
				}
			}
			if q.claimed == 0 {
				m.place(q)
			}
		}
	}
	for m.waiting.Len() > 0 && m.waiting.qs[0].rows[0].nextAt <= ms {
		q := heap.Pop(&m.waiting).(*memQueue)
		q.where = inReady
		heap.Push(&m.ready, q)
	}
	var out []store.Delivery
	for len(out) < limit && m.ready.Len() > 0 {
		q := heap.Pop(&m.ready).(*memQueue)
		q.where = inNone
		ep := m.eps[q.key[0]]
		if ep == nil || ep.deleted {
			for _, r := range append([]*memRow(nil), q.rows...) {
				m.remove(r)
			}
			m.place(q)
			continue
		}
		if ep.paused {
			m.place(q)
			continue
		}
		for _, r := range q.rows {
			if len(out) == limit || r.nextAt > ms {
				break
			}
			r.attempts++
			r.claimedBy, r.claimUntil = owner, ms+lease.Milliseconds()
			q.claimed++
			out = append(out, store.Delivery{Seq: r.seq, ID: r.id, EventID: r.eventID, AppID: r.appID, EndpointID: r.endpointID,
				URL: ep.url, Secret: ep.secret, Type: r.typ, OrderKey: r.orderKey, Data: json.RawMessage(r.data),
				CreatedAt: store.FromUnixMS(r.createdAt), Attempts: r.attempts, NextAt: store.FromUnixMS(r.nextAt)})
		}
		m.place(q)
	}
	return out
}

// setEndpoint records an endpoint's state (set, paused, deleted); a
// resumed endpoint's parked queues are claimable again. A deleted one's
// rows are dropped.
func (m *outboxMem) setEndpoint(id string, e memEndpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.eps[id] = &e
	if e.deleted {
		for _, q := range m.queues {
			if q.key[0] == id {
				for _, r := range append([]*memRow(nil), q.rows...) {
					m.remove(r)
				}
				m.place(q)
			}
		}
		return
	}
	if !e.paused {
		for _, q := range append([]*memQueue(nil), m.parked[id]...) {
			m.place(q)
		}
	}
}

// redeliver makes r (as the table now has it: pending, due) claimable: the
// queued row loses its claim and is due now, or r is queued.
func (m *outboxMem) redeliver(r *memRow) {
	m.mu.Lock()
	defer m.mu.Unlock()
	have := m.byID[r.id]
	if have == nil {
		m.add(r)
		return
	}
	q := have.q
	m.unclaim(have)
	have.nextAt = r.nextAt
	if q.claimed == 0 || q.rows[0] == have {
		m.place(q)
	}
}

// pause pauses an endpoint. mu is held.
func (m *outboxMem) pause(id string) {
	if ep := m.eps[id]; ep != nil {
		ep.paused = true
	}
}

// load reads pending rows into the queue when it overflowed (at first,
// since start) and has room.
func (s *Store) loadOutbox(ctx context.Context) error {
	m := s.outbox
	m.mu.Lock()
	need := m.overflow && len(m.byID) <= maxMemDeliveries/2
	m.mu.Unlock()
	if !need {
		return nil
	}
	m.commitMu.Lock()
	defer m.commitMu.Unlock()
	// mu is held while reading too: a row recorded as delivered meanwhile
	// would be read as pending and queued again.
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.overflow || len(m.byID) > maxMemDeliveries/2 {
		return nil // another claim loaded them
	}
	after, room := m.loaded, maxMemDeliveries-len(m.byID)
	if !m.epsLoaded {
		rows, err := s.query(ctx, `SELECT id, url, secret, status FROM webhook_endpoints`)
		if err != nil {
			return fmt.Errorf("load webhook endpoints: %w", err)
		}
		for rows.Next() {
			var id string
			var e memEndpoint
			var status int
			if err := rows.Scan(&id, &e.url, &e.secret, &status); err != nil {
				rows.Close()
				return fmt.Errorf("load webhook endpoints: %w", err)
			}
			e.paused = status == store.EndpointPaused
			if m.eps[id] == nil { // one set since is newer
				m.eps[id] = &e
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load webhook endpoints: %w", err)
		}
		m.epsLoaded = true
	}
	rows, err := s.query(ctx, `SELECT seq, id, event_id, app_id, endpoint_id, type, order_key, data, created_at, attempts, next_at
		FROM webhook_outbox INDEXED BY webhook_outbox_due WHERE status = 0 AND seq > ? ORDER BY seq LIMIT ?`, after, room)
	if err != nil {
		return fmt.Errorf("load webhook outbox: %w", err)
	}
	defer rows.Close()
	var got []*memRow
	for rows.Next() {
		r := &memRow{}
		if err := rows.Scan(&r.seq, &r.id, &r.eventID, &r.appID, &r.endpointID, &r.typ, &r.orderKey, &r.data, &r.createdAt, &r.attempts, &r.nextAt); err != nil {
			return fmt.Errorf("load webhook outbox: %w", err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load webhook outbox: %w", err)
	}
	m.overflow = false // add takes them all
	for _, r := range got {
		m.add(r)
	}
	if len(got) == room {
		m.overflow = true
		m.loaded = got[len(got)-1].seq
	}
	m.maxSeq = max(m.maxSeq, m.loaded)
	return nil
}
