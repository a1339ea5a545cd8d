package sqlite

import (
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// checkpointLogEvery bounds how often a failing checkpoint is logged.
const checkpointLogEvery = time.Minute

// ckptLog reports checkpoint failures: a WAL that cannot be copied back
// grows without bound and slows every read, so an operator must hear of
// it, once a minute at most while it lasts, and again when it recovers.
type ckptLog struct {
	mu      sync.Mutex
	log     *slog.Logger
	failing bool
	logged  time.Time
	missed  int // failures since the last line
}

// SetLogger sets where the store reports problems it handles itself, such
// as failed WAL checkpoints. By default they are discarded.
func (s *Store) SetLogger(l *slog.Logger) {
	s.ckpt.mu.Lock()
	s.ckpt.log = l
	s.ckpt.mu.Unlock()
}

// checkpoint copies committed WAL frames into the database through db;
// PASSIVE never waits for readers or the writer.
func (s *Store) checkpoint(db *sql.DB, by string) {
	_, err := db.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	s.ckpt.report(err, by, time.Now())
}

func (c *ckptLog) report(err error, by string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log == nil {
		return
	}
	switch {
	case err == nil && c.failing:
		c.failing = false
		c.log.Info("sqlite: WAL checkpoints work again", "by", by)
	case err != nil:
		c.missed++
		if !c.failing || now.Sub(c.logged) >= checkpointLogEvery {
			c.log.Error("sqlite: WAL checkpoint failed; the WAL grows until it succeeds", "by", by, "failures", c.missed, "err", err)
			c.logged, c.missed = now, 0
		}
		c.failing = true
	}
}
