package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
)

// Webhook endpoints and the outbox (store.WebhookStore, docs/webhooks.md).

// inTx runs fn in a transaction that also writes the webhook events the
// caller bound to the call (store.WithEvents): they commit with its change.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	evs := store.PendingEvents(ctx)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if evs != nil {
			return insertOutbox(ctx, tx, evs.List)
		}
		return nil
	})
	if err == nil {
		evs.Written()
	}
	return err
}

const qInsertOutbox = `INSERT INTO webhook_outbox (id, event_id, app_id, endpoint_id, type, order_key, data, created_at, next_at)
	SELECT id, ev, app, ep, t, k, d, at, at FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])
	AS v(id, ev, app, ep, t, k, d, at)`

func outboxArgs(evs []*store.OutboxEvent) []any {
	rows := store.OutboxRows(evs)
	if len(rows) == 0 {
		return nil
	}
	var id, ev, app, ep, typ, key, data []string
	var at []int64
	for _, r := range rows {
		id, ev, app, ep = append(id, r.ID), append(ev, r.EventID), append(app, r.AppID), append(ep, r.EndpointID)
		typ, key, data, at = append(typ, r.Type), append(key, r.OrderKey), append(data, r.Data), append(at, r.CreatedAt)
	}
	return []any{id, ev, app, ep, typ, key, data, at}
}

func insertOutbox(ctx context.Context, tx pgx.Tx, evs []*store.OutboxEvent) error {
	args := outboxArgs(evs)
	if args == nil {
		return nil
	}
	if _, err := tx.Exec(ctx, qInsertOutbox, args...); err != nil {
		return fmt.Errorf("write webhook outbox: %w", err)
	}
	return nil
}

// queueOutbox queues the events' insert on a send batch's pipeline and
// reports whether it queued one.
func queueOutbox(b *pgx.Batch, evs []*store.OutboxEvent) bool {
	args := outboxArgs(evs)
	if args == nil {
		return false
	}
	b.Queue(qInsertOutbox, args...)
	return true
}

const endpointCols = `id, app_id, url, secret, events, timeout_ms, fail_open, status, failures, reason, created_at, updated_at`

func scanEndpoint(row pgx.Row) (store.Endpoint, error) {
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
	if err := validText(e.AppID, e.URL, e.Secret); err != nil {
		return store.Endpoint{}, err
	}
	events, err := json.Marshal(e.Events)
	if err != nil {
		return store.Endpoint{}, err
	}
	if e.Events == nil {
		events = []byte("[]")
	}
	now := store.UnixMS(time.Now())
	out, err := scanEndpoint(s.pool.QueryRow(ctx, `INSERT INTO webhook_endpoints (id, app_id, url, secret, events, timeout_ms, fail_open, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
		ON CONFLICT (app_id, url) DO UPDATE SET
			secret = CASE WHEN excluded.secret <> '' THEN excluded.secret ELSE webhook_endpoints.secret END,
			events = excluded.events, timeout_ms = excluded.timeout_ms, fail_open = excluded.fail_open,
			status = 0, failures = 0, reason = '', updated_at = excluded.updated_at
		RETURNING `+endpointCols,
		store.NewID(), e.AppID, e.URL, e.Secret, string(events), e.TimeoutMS, e.FailOpen, now))
	return out, wrap("set webhook", err, nil)
}

func (s *Store) Webhooks(ctx context.Context, appID string) ([]store.Endpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE app_id = $1 ORDER BY created_at, id`, appID)
	if err != nil {
		return nil, wrap("webhooks", err, nil)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Endpoint, error) { return scanEndpoint(r) })
	return out, wrap("webhooks", err, nil)
}

func (s *Store) DeleteWebhook(ctx context.Context, appID, id string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE app_id = $1 AND id = $2`, appID, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		_, err = tx.Exec(ctx, `UPDATE webhook_outbox SET status = 2, last_error = 'endpoint deleted', done_at = $1, claimed_by = ''
			WHERE endpoint_id = $2 AND status = 0`, store.UnixMS(time.Now()), id)
		return err
	})
	return wrap("delete webhook", err, nil)
}

func (s *Store) AddEvents(ctx context.Context, evs ...*store.OutboxEvent) error {
	args := outboxArgs(evs)
	if args == nil {
		return nil
	}
	_, err := s.pool.Exec(ctx, qInsertOutbox, args...)
	return wrap("add events", err, nil)
}

const deliveryCols = `o.seq, o.id, o.event_id, o.app_id, o.endpoint_id, o.type, o.order_key, o.data, o.created_at, o.status,
	o.attempts, o.next_at, o.last_error, o.last_status, o.done_at`

func scanDelivery(row pgx.Row, extra ...any) (store.Delivery, error) {
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

// ClaimDeliveries claims, in seq order, due and unclaimed deliveries with
// no earlier pending delivery of the same endpoint and order key that is
// not due or claimed, so that what a claim takes of one key is a run from
// its first pending row. Claims are taken one node at a time (a
// transaction-scoped advisory lock; a node that finds it taken claims at its
// next poll), since a concurrent claim would see the other's rows as
// unclaimed until it commits; FOR UPDATE SKIP LOCKED leaves alone the rows
// a finishing transaction holds. The lease (claim_until) hands a dead node's
// claims to the others once it expires.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	var out []store.Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = claimTx(ctx, tx, owner, now, lease, limit)
		return err
	})
	return out, wrap("claim deliveries", err, nil)
}

// FinishAndClaim records rs and claims in one transaction (one round of
// commits instead of two: the worker's steady state).
func (s *Store) FinishAndClaim(ctx context.Context, owner string, rs []store.FinishedDelivery, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	var out []store.Delivery
	done := store.UnixMS(time.Now())
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := finishAll(ctx, tx, owner, rs, done); err != nil {
			return err
		}
		if limit <= 0 {
			return nil
		}
		var err error
		out, err = claimTx(ctx, tx, owner, now, lease, limit)
		return err
	})
	return out, wrap("finish and claim", err, nil)
}

func claimTx(ctx context.Context, tx pgx.Tx, owner string, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	ms := store.UnixMS(now)
	var mine bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('chatd webhook claim ' || current_schema()))`).Scan(&mine); err != nil || !mine {
		return nil, err
	}
	rows, err := tx.Query(ctx, `WITH due AS (
			SELECT d.seq FROM webhook_outbox d
			WHERE d.status = 0 AND d.next_at <= $3 AND d.claim_until <= $3
			  AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND e.status = 0)
			  AND (d.order_key = '' OR NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.endpoint_id = d.endpoint_id
				AND p.order_key = d.order_key AND p.status = 0 AND (p.claim_until <> 0 OR p.next_at <> p.created_at)
				AND p.seq < d.seq AND (p.next_at > $3 OR p.claim_until > $3)))
			ORDER BY d.seq LIMIT $4
			FOR UPDATE SKIP LOCKED)
		UPDATE webhook_outbox o SET claimed_by = $1, claim_until = $2, attempts = o.attempts + 1
		FROM due, webhook_endpoints e WHERE o.seq = due.seq AND e.id = o.endpoint_id
		RETURNING `+deliveryCols+`, e.url, e.secret`,
		owner, ms+lease.Milliseconds(), ms, limit)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Delivery, error) {
		var url, secret string
		d, err := scanDelivery(r, &url, &secret)
		d.URL, d.Secret = url, secret
		return d, err
	})
	slices.SortFunc(out, func(a, b store.Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, err
}

func (s *Store) FinishDelivery(ctx context.Context, id, owner string, r store.DeliveryResult) error {
	return s.FinishDeliveries(ctx, owner, []store.FinishedDelivery{{ID: id, Result: r}})
}

func (s *Store) FinishDeliveries(ctx context.Context, owner string, rs []store.FinishedDelivery) error {
	now := store.UnixMS(time.Now())
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return finishAll(ctx, tx, owner, rs, now) })
	return wrap("finish deliveries", err, nil)
}

// finishAll records rs in two round trips rather than two per result: the
// deliveries' updates in one pipelined batch, then each endpoint's
// consecutive failures, counted in order (a success starts them over).
func finishAll(ctx context.Context, tx pgx.Tx, owner string, rs []store.FinishedDelivery, now int64) error {
	if len(rs) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, f := range rs {
		r := f.Result
		if r.Release {
			b.Queue(`UPDATE webhook_outbox SET claimed_by = '', claim_until = 0, attempts = greatest(attempts - 1, 0)
				WHERE id = $1 AND claimed_by = $2 AND status = 0 RETURNING ''`, f.ID, owner)
			continue
		}
		var done int64
		if r.Status != store.DeliveryPending {
			done = now
		}
		var data *string
		if len(r.Data) > 0 {
			d := string(r.Data)
			data = &d
		}
		b.Queue(`UPDATE webhook_outbox SET status = $1, next_at = $2, last_error = $3, last_status = $4,
			done_at = $5, claimed_by = '', claim_until = 0, data = COALESCE($6, data)
			WHERE id = $7 AND claimed_by = $8 AND status = 0 RETURNING endpoint_id`,
			r.Status, store.UnixMS(r.NextAt), r.Error, r.HTTPStatus, done, data, f.ID, owner)
	}
	type tally struct {
		reset   bool
		fails   int
		pause   int
		lastErr string
	}
	var order []string
	by := map[string]*tally{}
	br := tx.SendBatch(ctx, &b)
	for _, f := range rs {
		var endpoint string
		err := br.QueryRow().Scan(&endpoint)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && f.Result.Release) {
			continue // released, or the claim was lost: another node has it
		} else if err != nil {
			br.Close()
			return err
		}
		t := by[endpoint]
		if t == nil {
			t = &tally{}
			by[endpoint] = t
			order = append(order, endpoint)
		}
		if r := f.Result; r.Status == store.DeliveryDelivered {
			t.reset, t.fails = true, 0
		} else {
			t.fails++
			t.lastErr = r.Error
			if r.PauseAfter > 0 {
				t.pause = r.PauseAfter
			}
		}
	}
	if err := br.Close(); err != nil {
		return err
	}
	var eb pgx.Batch
	for _, id := range order {
		t := by[id]
		pause := t.pause
		if pause <= 0 {
			pause = 1 << 30
		}
		eb.Queue(`UPDATE webhook_endpoints SET failures = n.f,
			status = CASE WHEN n.f >= $3 THEN 1 ELSE status END,
			reason = CASE WHEN n.f >= $3 THEN $4 ELSE reason END
			FROM (SELECT CASE WHEN $1 THEN $2 ELSE failures + $2 END AS f FROM webhook_endpoints WHERE id = $5) n
			WHERE id = $5 AND (failures <> n.f OR (n.f >= $3 AND status <> 1))`,
			t.reset, t.fails, pause, fmt.Sprintf("paused after %d consecutive failed deliveries (last: %s); set the endpoint again to resume", pause, t.lastErr), id)
	}
	if len(order) == 0 {
		return nil
	}
	return tx.SendBatch(ctx, &eb).Close()
}

func (s *Store) Deliveries(ctx context.Context, appID string, q store.DeliveryQuery) ([]store.Delivery, error) {
	where := []string{"o.app_id = $1"}
	args := []any{appID}
	if q.Status >= 0 {
		args = append(args, q.Status)
		where = append(where, fmt.Sprintf("o.status = $%d", len(args)))
	}
	if q.Before > 0 {
		args = append(args, q.Before)
		where = append(where, fmt.Sprintf("o.seq < $%d", len(args)))
	}
	args = append(args, q.Limit)
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryCols+`, COALESCE(e.url, '') FROM webhook_outbox o
		LEFT JOIN webhook_endpoints e ON e.id = o.endpoint_id
		WHERE `+strings.Join(where, " AND ")+fmt.Sprintf(` ORDER BY o.seq DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, wrap("deliveries", err, nil)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Delivery, error) {
		var url string
		d, err := scanDelivery(r, &url)
		d.URL = url
		return d, err
	})
	return out, wrap("deliveries", err, nil)
}

func (s *Store) Redeliver(ctx context.Context, appID, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_outbox SET status = 0, next_at = $1, claimed_by = '', claim_until = 0, done_at = 0
		WHERE app_id = $2 AND id = $3 AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = endpoint_id)`,
		store.UnixMS(time.Now()), appID, id)
	if err != nil {
		return wrap("redeliver", err, nil)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	// Nothing changed: no such delivery, or one of a deleted endpoint.
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_outbox WHERE app_id = $1 AND id = $2)`, appID, id).Scan(&exists); err != nil {
		return wrap("redeliver", err, nil)
	}
	if !exists {
		return fmt.Errorf("postgres: redeliver %s: %w", id, store.ErrNotFound)
	}
	return fmt.Errorf("postgres: redeliver %s: %w", id, store.ErrEndpointDeleted)
}
