package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// nonceSweepInterval is the least time between two deletions of expired
// nonces by one node.
const nonceSweepInterval = time.Second

// UseNonce records a signed request's nonce for the app until expires, and
// reports false when it is already recorded and unexpired: the request is a
// replay, possibly sent to another node. Every node shares the table, so a
// replay is caught wherever it lands.
func (s *Store) UseNonce(ctx context.Context, appID, nonce string, expires time.Time) (bool, error) {
	now := time.Now().UnixMilli()
	// A new nonce inserts; an expired one is taken over; a live one returns no row.
	var one int
	err := s.pool.QueryRow(ctx, `
INSERT INTO nonces (app_id, nonce, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (app_id, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at
WHERE nonces.expires_at <= $4
RETURNING 1`, appID, nonce, expires.UnixMilli(), now).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: use nonce: %w", err)
	}
	// Expired nonces are only garbage; clear them at most once per
	// nonceSweepInterval rather than on every request, so the table holds
	// about one window of nonces. The nonce is recorded either way, so a
	// failed sweep is left for the next turn.
	if last := s.nonceSwept.Load(); now-last >= nonceSweepInterval.Milliseconds() && s.nonceSwept.CompareAndSwap(last, now) {
		_, _ = s.pool.Exec(ctx, `DELETE FROM nonces WHERE expires_at <= $1`, now)
	}
	return true, nil
}
