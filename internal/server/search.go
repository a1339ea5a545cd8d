package server

import (
	"context"

	"github.com/chatd/chatd/internal/store"
)

// backfillSearch indexes, in the background, the messages of a database
// upgraded to search (docs/architecture.md, "Search"); Close stops it
// before the store closes.
func (s *Server) backfillSearch(st store.Store) {
	b, ok := st.(store.SearchBackfiller)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.BackfillSearch(ctx, s.log); err != nil && ctx.Err() == nil {
			s.log.Error("search index backfill stopped; it resumes at the next start", "err", err)
		}
	}()
	s.closers = append(s.closers, func() error { cancel(); <-done; return nil })
}
