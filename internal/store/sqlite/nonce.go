package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// nonceSweepInterval is the least time between two deletions of expired
// nonces: the table holds at most the nonces of one window plus this.
const nonceSweepInterval = time.Second

// nonceReq is one UseNonce waiting for its batch.
type nonceReq struct {
	app, nonce string
	expires    int64
	res        chan nonceRes // buffered
}

type nonceRes struct {
	fresh bool
	err   error
}

// nonceBatcher commits the nonces of concurrent signed requests together:
// a commit costs far more than an insert (150 µs on the reference box), and
// it holds the one writer connection that sends need too. The first caller
// to find no batch running commits everything queued meanwhile, round after
// round, while the others wait for their answer.
type nonceBatcher struct {
	mu      sync.Mutex
	pending []*nonceReq
	running bool
}

// UseNonce records a signed request's nonce for the app until expires, and
// reports false when it is already recorded and unexpired: the request is a
// replay. The table outlives restarts, so a request replayed after one is
// refused too. The answer always reflects what was committed, even when ctx
// ends meanwhile (a batch is short), so a nonce is never recorded behind an
// error.
func (s *Store) UseNonce(ctx context.Context, appID, nonce string, expires time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("sqlite: use nonce: %w", err)
	}
	r := &nonceReq{app: appID, nonce: nonce, expires: expires.UnixMilli(), res: make(chan nonceRes, 1)}
	b := &s.nonces
	b.mu.Lock()
	b.pending = append(b.pending, r)
	if !b.running {
		b.running = true
		for len(b.pending) > 0 {
			batch := b.pending
			b.pending = nil
			b.mu.Unlock()
			s.commitNonces(batch)
			b.mu.Lock()
		}
		b.running = false
	}
	b.mu.Unlock()
	res := <-r.res
	return res.fresh, res.err
}

// commitNonces records a batch in one transaction and answers every request.
func (s *Store) commitNonces(batch []*nonceReq) {
	ctx := context.Background() // one caller giving up must not fail the others
	now := time.Now().UnixMilli()
	fresh := make([]bool, len(batch))
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		// A new nonce inserts; an expired one is taken over; a live one
		// changes no row.
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO nonces (app_id, nonce, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (app_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
			WHERE nonces.expires_at <= ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, r := range batch {
			res, err := stmt.ExecContext(ctx, r.app, r.nonce, r.expires, now)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			fresh[i] = n > 0
		}
		// Expired nonces are only garbage: clear them now and then.
		if last := s.nonceSwept.Load(); now-last >= nonceSweepInterval.Milliseconds() {
			s.nonceSwept.Store(now)
			if _, err := tx.ExecContext(ctx, `DELETE FROM nonces WHERE expires_at <= ?`, now); err != nil {
				return err
			}
		}
		return nil
	})
	for i, r := range batch {
		if err != nil {
			r.res <- nonceRes{err: fmt.Errorf("sqlite: use nonce: %w", err)}
		} else {
			r.res <- nonceRes{fresh: fresh[i]}
		}
	}
}
