package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
// chunk size (chunkSizes); others (nil) prepare theirs.
func insertOutbox(ctx context.Context, tx *sql.Tx, evs []*store.OutboxEvent, prepared map[int]*sql.Stmt) error {
	rows := store.OutboxRows(evs)
	if len(rows) == 0 {
		return nil
	}
	args := make([]any, 0, len(rows)*9)
	for _, r := range rows {
		args = append(args, r.ID, r.EventID, r.AppID, r.EndpointID, r.Type, r.OrderKey, r.Data, r.CreatedAt, r.CreatedAt)
	}
	err := chunked(args, 9, func(n int, args []any) error {
		var err error
		if st := prepared[n]; st != nil {
			_, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, qOutboxRows(n), args...)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("write webhook outbox: %w", err)
	}
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
	return s.withTx(ctx, func(tx *sql.Tx) error { return insertOutbox(ctx, tx, evs, nil) })
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

// claimable selects due, unclaimed pending deliveries of active endpoints
// with no earlier pending delivery of the same endpoint and order key that
// is not due or is claimed. Every earlier pending row of a selected one is
// then selectable too and comes first in seq order, so what a LIMIT keeps
// of one key is a run from its first pending row. Only rows that were
// claimed or retried can hold a key back (webhook_outbox_held indexes them),
// so the check does not walk a key's backlog; and the scan follows
// webhook_outbox_due in seq order, stopping at the limit.
const claimable = `SELECT d.seq FROM webhook_outbox d INDEXED BY webhook_outbox_due
	WHERE d.status = 0 AND d.next_at <= ?1 AND d.claim_until <= ?1
	  AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND e.status = 0)
	  AND (d.order_key = '' OR NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.endpoint_id = d.endpoint_id
		AND p.order_key = d.order_key AND p.status = 0 AND (p.claim_until <> 0 OR p.next_at <> p.created_at)
		AND p.seq < d.seq AND (p.next_at > ?1 OR p.claim_until > ?1)))
	ORDER BY d.seq LIMIT ?2`

var qHookClaim = `UPDATE webhook_outbox SET claimed_by = ?3, claim_until = ?4, attempts = attempts + 1
	WHERE seq IN (` + claimable + `)
	RETURNING ` + strings.ReplaceAll(deliveryCols, "o.", "") + `, (SELECT url FROM webhook_endpoints e WHERE e.id = endpoint_id),
		(SELECT secret FROM webhook_endpoints e WHERE e.id = endpoint_id)`

func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	out, err := s.FinishAndClaim(ctx, owner, nil, now, lease, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
	}
	return out, nil
}

// FinishAndClaim records rs and claims in one transaction: the worker's
// steady state costs the single writer one commit instead of two, and the
// pages the results dirty are mostly those the claim dirties.
func (s *Store) FinishAndClaim(ctx context.Context, owner string, rs []store.FinishedDelivery, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	// Prepared before the transaction: the writer has one connection.
	var st [4]*sql.Stmt
	for i, q := range []string{qHookRelease, qHookFinish, qHookTally, qHookClaim} {
		p, err := s.wstmt(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("sqlite: finish and claim: prepare: %w", err)
		}
		st[i] = p
	}
	var out []store.Delivery
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		if len(rs) > 0 {
			if err := finishTx(ctx, tx, st[:3], owner, rs); err != nil {
				return err
			}
		}
		if limit <= 0 {
			return nil
		}
		var err error
		out, err = claimTx(ctx, tx, st[3], owner, now, lease, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: finish and claim: %w", err)
	}
	return out, nil
}

func claimTx(ctx context.Context, tx *sql.Tx, claim *sql.Stmt, owner string, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	ms := store.UnixMS(now)
	rows, err := tx.StmtContext(ctx, claim).QueryContext(ctx, ms, limit, owner, ms+lease.Milliseconds())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var url, secret string
		d, err := scanDelivery(rows, &url, &secret)
		if err != nil {
			return nil, err
		}
		d.URL, d.Secret = url, secret
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b store.Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

func (s *Store) FinishDelivery(ctx context.Context, id, owner string, r store.DeliveryResult) error {
	return s.FinishDeliveries(ctx, owner, []store.FinishedDelivery{{ID: id, Result: r}})
}

const (
	qHookRelease = `UPDATE webhook_outbox SET claimed_by = '', claim_until = 0, attempts = max(attempts - 1, 0)
		WHERE id = ? AND claimed_by = ? AND status = 0`
	qHookFinish = `UPDATE webhook_outbox SET status = ?, next_at = ?, last_error = ?, last_status = ?,
		done_at = ?, claimed_by = '', claim_until = 0, data = COALESCE(?, data)
		WHERE id = ? AND claimed_by = ? AND status = 0 RETURNING endpoint_id`
	qHookTally = `UPDATE webhook_endpoints SET failures = ?1,
		status = CASE WHEN ?1 >= ?2 THEN 1 ELSE status END,
		reason = CASE WHEN ?1 >= ?2 THEN ?3 ELSE reason END
		WHERE id = ?4 AND (failures <> ?1 OR (?1 >= ?2 AND status <> 1))` // no write when nothing changes
)

// FinishDeliveries records the results with prepared statements, one per
// delivery and one per endpoint: its consecutive failures, and a pause at
// the PauseAfter of a failure.
func (s *Store) FinishDeliveries(ctx context.Context, owner string, rs []store.FinishedDelivery) error {
	if _, err := s.FinishAndClaim(ctx, owner, rs, time.Time{}, 0, 0); err != nil {
		return fmt.Errorf("sqlite: finish deliveries: %w", err)
	}
	return nil
}

// finishTx records rs in tx with the statements qHookRelease, qHookFinish
// and qHookTally.
func finishTx(ctx context.Context, tx *sql.Tx, st []*sql.Stmt, owner string, rs []store.FinishedDelivery) error {
	now := store.UnixMS(time.Now())
	type tally struct {
		reset   bool // a success: failures start over from the ones after it
		fails   int
		pause   int
		lastErr string
	}
	release, finish, endpointTally := tx.StmtContext(ctx, st[0]), tx.StmtContext(ctx, st[1]), tx.StmtContext(ctx, st[2])
	var order []string
	by := map[string]*tally{}
	for _, f := range rs {
		r := f.Result
		if r.Release {
			if _, err := release.ExecContext(ctx, f.ID, owner); err != nil {
				return err
			}
			continue
		}
		var done int64
		if r.Status != store.DeliveryPending {
			done = now
		}
		var data any
		if len(r.Data) > 0 {
			data = string(r.Data)
		}
		var endpoint string
		err := finish.QueryRowContext(ctx, r.Status, store.UnixMS(r.NextAt), r.Error, r.HTTPStatus, done, data, f.ID, owner).Scan(&endpoint)
		if errors.Is(err, sql.ErrNoRows) {
			continue // the claim was lost: another node has it
		} else if err != nil {
			return err
		}
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
	for _, id := range order {
		t := by[id]
		failures := t.fails
		if !t.reset {
			var before int
			if err := tx.QueryRowContext(ctx, `SELECT failures FROM webhook_endpoints WHERE id = ?`, id).Scan(&before); errors.Is(err, sql.ErrNoRows) {
				continue
			} else if err != nil {
				return err
			}
			failures += before
		}
		pause := t.pause
		if pause <= 0 {
			pause = 1 << 30
		}
		if _, err := endpointTally.ExecContext(ctx, failures, pause, pausedReason(pause, t.lastErr), id); err != nil {
			return err
		}
	}
	return nil
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
	res, err := s.w.ExecContext(ctx, `UPDATE webhook_outbox SET status = 0, next_at = ?, claimed_by = '', claim_until = 0, done_at = 0
		WHERE app_id = ? AND id = ? AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = endpoint_id)`,
		store.UnixMS(time.Now()), appID, id)
	if err != nil {
		return fmt.Errorf("sqlite: redeliver: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
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
