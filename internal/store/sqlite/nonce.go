package sqlite

import (
	"context"
	"fmt"
	"time"
)

// nonceSweepInterval is the least time between two deletions of expired
// nonces: the table holds at most the nonces of one window plus this.
const nonceSweepInterval = time.Second

// UseNonce records a signed request's nonce for the app until expires, and
// reports false when it is already recorded and unexpired: the request is a
// replay. The table outlives restarts, so a request replayed after one is
// refused too.
func (s *Store) UseNonce(ctx context.Context, appID, nonce string, expires time.Time) (bool, error) {
	now := time.Now().UnixMilli()
	// A new nonce inserts; an expired one is taken over; a live one changes
	// no row.
	res, err := s.w.ExecContext(ctx, `INSERT INTO nonces (app_id, nonce, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (app_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
		WHERE nonces.expires_at <= ?`, appID, nonce, expires.UnixMilli(), now)
	if err != nil {
		return false, fmt.Errorf("sqlite: use nonce: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: use nonce: %w", err)
	}
	if n == 0 {
		return false, nil
	}
	// Expired nonces are only garbage: clear them now and then. The nonce
	// is recorded either way, so a failed sweep is left for the next turn.
	if last := s.nonceSwept.Load(); now-last >= nonceSweepInterval.Milliseconds() && s.nonceSwept.CompareAndSwap(last, now) {
		_, _ = s.w.ExecContext(ctx, `DELETE FROM nonces WHERE expires_at <= ?`, now)
	}
	return true, nil
}
