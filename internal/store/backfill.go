package store

import (
	"context"
	"log/slog"
	"time"
)

// SearchBackfiller is a store whose search index may lag behind its
// messages (a database upgraded to the search migration): BackfillSearch
// indexes the older messages in short batches, logging its progress, and
// returns when they are all indexed or ctx ends. It may run while the
// store serves: new messages are indexed by the send path, and a batch
// holds the writer only briefly. Safe to run on several nodes at once. A
// store that indexes new messages in the background too (SQLite: sends
// queue their message, see its migration 10) goes on doing so until ctx
// ends.
type SearchBackfiller interface {
	BackfillSearch(ctx context.Context, log *slog.Logger) error
}

// BackfillStep indexes the next batch; n is how many messages it went
// over, done whether none are left.
type BackfillStep func(ctx context.Context) (n int, done bool, err error)

// RunBackfill runs step until done, resting between batches as long as the
// batch took, so that the backfill takes at most about half of the writer
// (docs/architecture.md, "Search"). Progress is logged every 10 s.
func RunBackfill(ctx context.Context, log *slog.Logger, store string, step BackfillStep) error {
	start, logged := time.Now(), time.Now()
	total, announced := 0, false
	for {
		t := time.Now()
		n, done, err := step(ctx)
		if err != nil {
			return err
		}
		total += n
		if done {
			if announced {
				log.Info(store+": search index backfill done", "messages", total, "took", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if !announced {
			log.Info(store + ": indexing existing messages for search, in the background")
			announced = true
		}
		if time.Since(logged) >= 10*time.Second {
			log.Info(store+": search index backfill", "messages", total, "elapsed", time.Since(start).Round(time.Second))
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Since(t)):
		}
	}
}

// QueueBatch is how many queued messages one indexing transaction takes,
// and QueueEvery how often the background indexer looks at a queue it
// found empty (docs/architecture.md, "Search").
const (
	QueueBatch = 2000
	QueueEvery = 500 * time.Millisecond
)

// IndexBatch indexes up to n queued messages in one transaction and says
// how many it took.
type IndexBatch func(ctx context.Context, n int) (int, error)

// DrainQueue indexes the whole queue, batch by batch: every search does it
// before reading, so that it finds every message sent before it.
func DrainQueue(ctx context.Context, index IndexBatch) error {
	for {
		n, err := index(ctx, QueueBatch)
		if err != nil || n < QueueBatch {
			return err
		}
	}
}

// IndexQueueLoop indexes the queue in the background until ctx ends: a
// batch whenever there is one, resting as long as the batch took (so it
// takes at most about half of the writer), and looking again every
// QueueEvery once the queue is empty.
func IndexQueueLoop(ctx context.Context, index IndexBatch) error {
	for {
		t := time.Now()
		n, err := index(ctx, QueueBatch)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		wait := time.Since(t)
		if n < QueueBatch {
			wait = QueueEvery
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
