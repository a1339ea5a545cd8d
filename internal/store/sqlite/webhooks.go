package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// Webhook endpoints and the outbox (store.WebhookStore, docs/webhooks.md).

func qOutboxRows(n int) string {
	return `INSERT INTO webhook_outbox (id, event_id, app_id, endpoint_id, type, order_key, data, created_at, next_at) VALUES ` + placeholders(n, 9)
}

// insertOutbox writes evs to the outbox in tx: the transaction of the
// change they report. The send path passes its statements, prepared by
// chunk size (chunkSizes); others (nil) prepare theirs. The rows join otx,
// to be queued for delivery when tx commits.
func insertOutbox(ctx context.Context, tx *sql.Tx, evs []*store.OutboxEvent, prepared map[int]*sql.Stmt, otx *outboxTx) error {
	rows := store.OutboxRows(evs)
	if len(rows) == 0 {
		return nil
	}
	args := make([]any, 0, len(rows)*9)
	for _, r := range rows {
		args = append(args, r.ID, r.EventID, r.AppID, r.EndpointID, r.Type, r.OrderKey, r.Data, r.CreatedAt, r.CreatedAt)
	}
	mem := make([]*memRow, 0, len(rows))
	err := chunked(args, 9, func(n int, args []any) error {
		var res sql.Result
		var err error
		if st := prepared[n]; st != nil {
			res, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		} else {
			res, err = tx.ExecContext(ctx, qOutboxRows(n), args...)
		}
		if err != nil {
			return err
		}
		// One multi-row INSERT gives its rows consecutive rowids (seq is
		// the rowid), the last one reported.
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for i, r := range rows[len(mem) : len(mem)+n] {
			mem = append(mem, &memRow{seq: last - int64(n-1-i), id: r.ID, eventID: r.EventID, appID: r.AppID, endpointID: r.EndpointID,
				typ: r.Type, orderKey: r.OrderKey, data: r.Data, createdAt: r.CreatedAt, nextAt: r.CreatedAt})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write webhook outbox: %w", err)
	}
	otx.add(mem)
	return nil
}

const endpointCols = `id, app_id, url, secret, events, timeout_ms, fail_open, status, failures, reason, created_at, updated_at`

func scanEndpoint(row interface{ Scan(...any) error }) (store.Endpoint, error) {
	var e store.Endpoint
	var events string
	var created, updated int64
	if err := row.Scan(&e.ID, &e.AppID, &e.URL, &e.Secret, &events, &e.TimeoutMS, &e.FailOpen, &e.Status, &e.Failures, &e.Reason, &created, &updated); err != nil {
		return store.Endpoint{}, err
	}
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return store.Endpoint{}, fmt.Errorf("endpoint %s events: %w", e.ID, err)
	}
	e.CreatedAt, e.UpdatedAt = store.FromUnixMS(created), store.FromUnixMS(updated)
	return e, nil
}

func (s *Store) SetWebhook(ctx context.Context, e store.Endpoint) (store.Endpoint, error) {
	events, err := json.Marshal(e.Events)
	if err != nil {
		return store.Endpoint{}, err
	}
	if e.Events == nil {
		events = []byte("[]")
	}
	now := store.UnixMS(time.Now())
	var out store.Endpoint
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, app_id, url, secret, events, timeout_ms, fail_open, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (app_id, url) DO UPDATE SET
				secret = CASE WHEN excluded.secret <> '' THEN excluded.secret ELSE webhook_endpoints.secret END,
				events = excluded.events, timeout_ms = excluded.timeout_ms, fail_open = excluded.fail_open,
				status = 0, failures = 0, reason = '', updated_at = excluded.updated_at`,
			store.NewID(), e.AppID, e.URL, e.Secret, string(events), e.TimeoutMS, e.FailOpen, now, now)
		if err != nil {
			return err
		}
		out, err = scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE app_id = ? AND url = ?`, e.AppID, e.URL))
		if err == nil {
			// Before the commit, so a result recorded after it sees the
			// endpoint resumed (outboxmem.go).
			s.outbox.setEndpoint(out.ID, memEndpoint{url: out.URL, secret: out.Secret})
		}
		return err
	})
	if err != nil {
		return store.Endpoint{}, fmt.Errorf("sqlite: set webhook: %w", err)
	}
	return out, nil
}

func (s *Store) Webhooks(ctx context.Context, appID string) ([]store.Endpoint, error) {
	rows, err := s.query(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE app_id = ? ORDER BY created_at, id`, appID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhooks: %w", err)
	}
	defer rows.Close()
	var out []store.Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: webhooks: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *Store) DeleteWebhook(ctx context.Context, appID, id string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE app_id = ? AND id = ?`, appID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhook_outbox SET status = 2, last_error = 'endpoint deleted', done_at = ?, claimed_by = ''
			WHERE endpoint_id = ? AND status = 0`, store.UnixMS(time.Now()), id)
		if err == nil {
			s.outbox.setEndpoint(id, memEndpoint{deleted: true})
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete webhook: %w", err)
	}
	return nil
}

func (s *Store) AddEvents(ctx context.Context, evs ...*store.OutboxEvent) error {
	if len(store.OutboxRows(evs)) == 0 {
		return nil
	}
	// withTx writes the events bound to its context.
	return s.withTx(store.WithEvents(ctx, evs...), func(*sql.Tx) error { return nil })
}

const deliveryCols = `o.seq, o.id, o.event_id, o.app_id, o.endpoint_id, o.type, o.order_key, o.data, o.created_at, o.status,
	o.attempts, o.next_at, o.last_error, o.last_status, o.done_at`

func scanDelivery(row interface{ Scan(...any) error }, extra ...any) (store.Delivery, error) {
	var d store.Delivery
	var data string
	var created, next, done int64
	dst := append([]any{&d.Seq, &d.ID, &d.EventID, &d.AppID, &d.EndpointID, &d.Type, &d.OrderKey, &data, &created, &d.Status,
		&d.Attempts, &next, &d.LastError, &d.LastStatus, &done}, extra...)
	if err := row.Scan(dst...); err != nil {
		return store.Delivery{}, err
	}
	d.Data = json.RawMessage(data)
	d.CreatedAt, d.NextAt = store.FromUnixMS(created), store.FromUnixMS(next)
	if done != 0 {
		d.DoneAt = store.FromUnixMS(done)
	}
	return d, nil
}

// ClaimDeliveries claims from the queue in memory (outboxmem.go): an
// SQLite database has one process, so a claim writes nothing.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	out, err := s.FinishAndClaim(ctx, owner, nil, now, lease, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
	}
	return out, nil
}

func (s *Store) FinishDelivery(ctx context.Context, id, owner string, r store.DeliveryResult) error {
	return s.FinishDeliveries(ctx, owner, []store.FinishedDelivery{{ID: id, Result: r}})
}

// FinishDeliveries records the results: one statement per chunk of
// results, and one per endpoint whose consecutive failures changed.
func (s *Store) FinishDeliveries(ctx context.Context, owner string, rs []store.FinishedDelivery) error {
	if _, err := s.FinishAndClaim(ctx, owner, rs, time.Time{}, 0, 0); err != nil {
		return fmt.Errorf("sqlite: finish deliveries: %w", err)
	}
	return nil
}

// FinishAndClaim records rs (a write transaction only when some are
// attempts' outcomes: releases are memory operations) and claims from
// memory.
func (s *Store) FinishAndClaim(ctx context.Context, owner string, rs []store.FinishedDelivery, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	if len(rs) > 0 {
		if err := s.finish(ctx, owner, rs); err != nil {
			return nil, fmt.Errorf("sqlite: finish and claim: %w", err)
		}
	}
	if limit <= 0 {
		return nil, nil
	}
	if err := s.loadOutbox(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: finish and claim: %w", err)
	}
	return s.outbox.claim(owner, now, lease, limit), nil
}

// finished is a result to record: its row and what it was when checked.
type finished struct {
	r        *memRow
	res      store.DeliveryResult
	attempts int
}

// qHookFinishRows records a chunk of results: seq, status, next_at,
// last_error, last_status, done_at, data (NULL: unchanged), attempts.
func qHookFinishRows(n int) string {
	return `UPDATE webhook_outbox SET status = v.column2, next_at = v.column3, last_error = v.column4, last_status = v.column5,
		done_at = v.column6, data = COALESCE(v.column7, data), attempts = v.column8
	FROM (VALUES ` + placeholders(n, 8) + `) AS v WHERE webhook_outbox.seq = v.column1`
}

const qHookTally = `UPDATE webhook_endpoints SET failures = ?1,
		status = CASE WHEN ?1 >= ?2 THEN 1 ELSE status END,
		reason = CASE WHEN ?1 >= ?2 THEN ?3 ELSE reason END
		WHERE id = ?4 AND (failures <> ?1 OR (?1 >= ?2 AND status <> 1))` // no write when nothing changes

// finish records rs of deliveries claimed by owner (others' claims were
// lost: redelivered, expired, or of a deleted endpoint) and then updates
// the queue. Should the write fail, the claims are given back: the
// deliveries are attempted again (at least once).
func (s *Store) finish(ctx context.Context, owner string, rs []store.FinishedDelivery) error {
	m := s.outbox
	var todo []finished
	m.mu.Lock()
	for _, f := range rs {
		r := m.byID[f.ID]
		if r == nil || r.claimedBy != owner {
			continue
		}
		if f.Result.Release {
			r.attempts--
			m.unclaim(r)
			if r.q.claimed == 0 {
				m.place(r.q)
			}
			continue
		}
		todo = append(todo, finished{r: r, res: f.Result, attempts: r.attempts})
	}
	m.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	// Prepared before the transaction: the writer has one connection.
	st := map[int]*sql.Stmt{}
	var err error
	for _, n := range append(chunkSizes, 0) {
		q := qHookTally
		if n > 0 {
			q = qHookFinishRows(n)
		}
		if st[n], err = s.wstmt(ctx, q); err != nil {
			break
		}
	}
	var paused []string
	if err == nil {
		// The writer loop writes them with the next batch of sends, if
		// any, else alone.
		rr := &resultsReq{st: st, todo: todo, done: make(chan struct{})}
		select {
		case s.results <- rr:
			select {
			case <-rr.done:
				paused, err = rr.paused, rr.err
			case <-s.exited: // closed: the loop took it (and answered) or never will
				select {
				case <-rr.done:
					paused, err = rr.paused, rr.err
				default:
					err = errClosed
				}
			}
		case <-s.exited:
			err = errClosed
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range paused {
		m.pause(id)
	}
	for _, f := range todo {
		r := f.r
		if r.q == nil || r.claimedBy != owner {
			continue // lost meanwhile
		}
		q := r.q
		switch {
		case err != nil:
			m.unclaim(r)
		case f.res.Status == store.DeliveryPending:
			m.unclaim(r)
			r.nextAt = store.UnixMS(f.res.NextAt)
			if len(f.res.Data) > 0 {
				r.data = string(f.res.Data)
			}
		default:
			m.remove(r)
		}
		if q.claimed == 0 {
			m.place(q)
		}
	}
	return err
}

// resultsReq is a batch of results for the writer loop: its statements
// (prepared before: the writer has one connection) and rows; the loop
// sets paused and err and closes done.
type resultsReq struct {
	st     map[int]*sql.Stmt
	todo   []finished
	paused []string
	err    error
	done   chan struct{}
}

// queuedResults takes the results queued for the writer loop.
func (s *Store) queuedResults() []*resultsReq {
	var out []*resultsReq
	for {
		select {
		case rr := <-s.results:
			out = append(out, rr)
		default:
			return out
		}
	}
}

// rideResults writes rrs in tx, the transaction of a batch of sends, behind
// a savepoint: on an error it is rolled back and false returned, the sends
// unharmed. The pages the results dirty are mostly those the batch's own
// outbox rows dirty, and the commit is shared.
func (st *sendStmts) rideResults(ctx context.Context, tx *sql.Tx, rrs []*resultsReq) bool {
	if len(rrs) == 0 {
		return false
	}
	if _, err := tx.StmtContext(ctx, st.save).ExecContext(ctx); err != nil {
		return false
	}
	for _, rr := range rrs {
		var err error
		if rr.paused, err = finishTx(ctx, tx, rr.st, rr.todo); err != nil {
			if _, err := tx.StmtContext(ctx, st.rollback).ExecContext(ctx); err != nil {
				return false // the caller's commit fails: the sends report it
			}
			tx.StmtContext(ctx, st.release).ExecContext(ctx)
			for _, rr := range rrs {
				rr.paused = nil
			}
			return false
		}
	}
	_, err := tx.StmtContext(ctx, st.release).ExecContext(ctx)
	return err == nil
}

// writeResults writes rrs in a transaction of their own and answers them.
func (s *Store) writeResults(rrs []*resultsReq) {
	ctx := context.Background()
	for _, rr := range rrs {
		s.alone.Add(1)
		rr.err = s.withTx(ctx, func(tx *sql.Tx) error {
			var err error
			rr.paused, err = finishTx(ctx, tx, rr.st, rr.todo)
			return err
		})
		close(rr.done)
	}
}

// finishTx writes the results and the endpoints' consecutive failures; it
// returns the endpoints it paused.
// st holds the statements by chunk size, and qHookTally at 0.
func finishTx(ctx context.Context, tx *sql.Tx, st map[int]*sql.Stmt, todo []finished) ([]string, error) {
	now := store.UnixMS(time.Now())
	type tally struct {
		reset   bool // a success: failures start over from the ones after it
		fails   int
		pause   int
		lastErr string
	}
	var order []string
	by := map[string]*tally{}
	args := make([]any, 0, 8*len(todo))
	for _, f := range todo {
		r := f.res
		var done int64
		if r.Status != store.DeliveryPending {
			done = now
		}
		var data any
		if len(r.Data) > 0 {
			data = string(r.Data)
		}
		args = append(args, f.r.seq, r.Status, store.UnixMS(r.NextAt), r.Error, r.HTTPStatus, done, data, f.attempts)
		endpoint := f.r.endpointID
		t := by[endpoint]
		if t == nil {
			t = &tally{}
			by[endpoint] = t
			order = append(order, endpoint)
		}
		if r.Status == store.DeliveryDelivered {
			t.reset, t.fails = true, 0
		} else {
			t.fails++
			t.lastErr = r.Error
			if r.PauseAfter > 0 {
				t.pause = r.PauseAfter
			}
		}
	}
	err := chunked(args, 8, func(n int, args []any) error {
		_, err := tx.StmtContext(ctx, st[n]).ExecContext(ctx, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record results: %w", err)
	}
	var paused []string
	for _, id := range order {
		t := by[id]
		failures := t.fails
		if !t.reset {
			var before int
			if err := tx.QueryRowContext(ctx, `SELECT failures FROM webhook_endpoints WHERE id = ?`, id).Scan(&before); errors.Is(err, sql.ErrNoRows) {
				continue
			} else if err != nil {
				return nil, err
			}
			failures += before
		}
		pause := t.pause
		if pause <= 0 {
			pause = 1 << 30
		}
		if _, err := tx.StmtContext(ctx, st[0]).ExecContext(ctx, failures, pause, pausedReason(pause, t.lastErr), id); err != nil {
			return nil, err
		}
		if failures >= pause {
			paused = append(paused, id)
		}
	}
	return paused, nil
}

func pausedReason(n int, last string) string {
	return fmt.Sprintf("paused after %d consecutive failed deliveries (last: %s); set the endpoint again to resume", n, last)
}

func (s *Store) Deliveries(ctx context.Context, appID string, q store.DeliveryQuery) ([]store.Delivery, error) {
	where := []string{"o.app_id = ?"}
	args := []any{appID}
	if q.Status >= 0 {
		where, args = append(where, "o.status = ?"), append(args, q.Status)
	}
	if q.Before > 0 {
		where, args = append(where, "o.seq < ?"), append(args, q.Before)
	}
	args = append(args, q.Limit)
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryCols+`, COALESCE(e.url, '') FROM webhook_outbox o
		LEFT JOIN webhook_endpoints e ON e.id = o.endpoint_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY o.seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: deliveries: %w", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var url string
		d, err := scanDelivery(rows, &url)
		if err != nil {
			return nil, fmt.Errorf("sqlite: deliveries: %w", err)
		}
		d.URL = url
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *Store) Redeliver(ctx context.Context, appID, id string) error {
	now := store.UnixMS(time.Now())
	var found bool
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		r := &memRow{}
		err := tx.QueryRowContext(ctx, `UPDATE webhook_outbox SET status = 0, next_at = ?, claimed_by = '', claim_until = 0, done_at = 0
			WHERE app_id = ? AND id = ? AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = endpoint_id)
			RETURNING seq, id, event_id, app_id, endpoint_id, type, order_key, data, created_at, attempts, next_at`,
			now, appID, id).Scan(&r.seq, &r.id, &r.eventID, &r.appID, &r.endpointID, &r.typ, &r.orderKey, &r.data, &r.createdAt, &r.attempts, &r.nextAt)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		found = true
		// In the transaction, so that a result recorded after it finds
		// the claim it had lost (outboxmem.go).
		s.outbox.redeliver(r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: redeliver: %w", err)
	}
	if found {
		return nil
	}
	// Nothing changed: no such delivery, or one of a deleted endpoint.
	var one int
	err = s.w.QueryRowContext(ctx, `SELECT 1 FROM webhook_outbox WHERE app_id = ? AND id = ?`, appID, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: redeliver %s: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlite: redeliver: %w", err)
	}
	return fmt.Errorf("sqlite: redeliver %s: %w", id, store.ErrEndpointDeleted)
}
