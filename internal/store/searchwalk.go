package store

import (
	"context"
	"slices"
	"strings"
	"time"
)

// The newest-first walk of a heavy user's history (docs/architecture.md,
// "Search"): a user who may see more than a store's scan limit is not
// searched by sorting their whole history, but by windows of the newest
// messages of each of their conversations, widened round after round until
// a page of hits is known to be the newest: the cost follows how far back
// the hits are, not the history's size.
//
// Seqs grow with time within a conversation, so every message below a
// conversation's window is at most as new as the oldest message in it (its
// edge), up to WalkSlack for sends whose clocks raced. A candidate newer
// than every unfinished conversation's edge (plus the slack) can be given
// out: nothing older in the walk can come before it.
const (
	// WalkFirst is about how many messages the first window holds in all;
	// each next round doubles it.
	WalkFirst = 2000
	// MaxWalk bounds the messages one search walks below its cursor:
	// past it the page is answered as it stands (SearchPage.Partial).
	MaxWalk = 60_000
	// WalkSlack is how far a message's time may be behind an earlier
	// message's of the same conversation.
	WalkSlack = 5 * time.Second
)

// ScanBound is the error of a SearchCandidates that stopped at its bound
// (MaxWalk), returned with the candidates it has: FilterSearch then
// answers a partial page that goes on from Next.
type ScanBound struct{ Next SearchCursor }

func (e *ScanBound) Error() string { return "search scan bound" }

// WalkConv is one conversation of a walk: the messages the searcher may see
// there are seqs (Floor, Last].
type WalkConv struct {
	ID          string
	Floor, Last int64
}

// SeqRange is the seqs (From, To] of a conversation.
type SeqRange struct {
	ConversationID string
	From, To       int64
}

// WalkStore is what a walk asks of a store backend.
type WalkStore interface {
	// Edges returns, for each range, the time of the first message after
	// From (any seq above it); a range with none is left out.
	Edges(ctx context.Context, ranges []SeqRange) (map[string]time.Time, error)
	// Candidates returns the messages of the ranges whose text contains
	// every term (the store's substring match), in any order.
	Candidates(ctx context.Context, ranges []SeqRange) ([]Message, error)
}

// Walk is the state of one search's newest-first walk; its Fetch is the
// SearchCandidates of FilterSearch.
type Walk struct {
	st      WalkStore
	convs   []walkConv
	total   int64 // messages the user may see in all
	window  int64 // messages of the next round, in all
	walked  int64 // below the cursor
	bound   int64 // MaxWalk
	pending []Message
	edge    time.Time // the newest edge of the unfinished conversations
}

type walkConv struct {
	WalkConv
	lo int64 // (lo, Last] has been walked
}

// NewWalk starts a walk over convs.
func NewWalk(st WalkStore, convs []WalkConv) *Walk {
	w := &Walk{st: st, window: WalkFirst, bound: MaxWalk}
	for _, c := range convs {
		if c.Last > c.Floor {
			w.convs = append(w.convs, walkConv{c, c.Last})
			w.total += c.Last - c.Floor
		}
	}
	return w
}

// Fetch returns up to n candidates before before, newest first: those the
// walk so far proves to be the newest, walking further back as needed.
// It returns a *ScanBound with what it has once it walked MaxWalk messages
// below before.
func (w *Walk) Fetch(ctx context.Context, before *SearchCursor, n int) ([]Message, error) {
	w.pending = slices.DeleteFunc(w.pending, func(m Message) bool { return before != nil && !cursorLess(Cursor(m), *before) })
	for {
		ready := len(w.pending)
		if w.unfinished() {
			ready, _ = slices.BinarySearchFunc(w.pending, w.edge.Add(WalkSlack), func(m Message, t time.Time) int {
				if m.CreatedAt.After(t) {
					return -1
				}
				return 1
			})
		}
		if ready >= n || !w.unfinished() {
			k := min(n, ready)
			out := slices.Clone(w.pending[:k])
			w.pending = w.pending[k:]
			return out, nil
		}
		// Everything newer than the edge (and the slack) was walked: a
		// partial page goes on from there, once that is below the cursor
		// (the walk may go past its bound until then).
		next := SearchCursor{At: w.edge.Add(WalkSlack + time.Millisecond)}
		if w.walked >= w.bound && (before == nil || cursorLess(next, *before)) {
			out := slices.Clone(w.pending[:ready])
			w.pending = w.pending[ready:]
			return out, &ScanBound{next}
		}
		if err := w.round(ctx, before); err != nil {
			return nil, err
		}
	}
}

func (w *Walk) unfinished() bool {
	return slices.ContainsFunc(w.convs, func(c walkConv) bool { return c.lo > c.Floor })
}

// round widens every unfinished conversation's window by its share of
// w.window (its size over the total), reads the new edges, and fetches the
// candidates of the new ranges that hold anything before the cursor.
func (w *Walk) round(ctx context.Context, before *SearchCursor) error {
	var ranges []SeqRange
	var of []int // ranges[i] is of w.convs[of[i]]
	for i, c := range w.convs {
		if c.lo > c.Floor {
			step := max(1, (w.window*(c.Last-c.Floor)+w.total-1)/w.total)
			ranges = append(ranges, SeqRange{c.ID, max(c.Floor, c.lo-step), c.lo})
			of = append(of, i)
		}
	}
	w.window *= 2
	edges, err := w.st.Edges(ctx, ranges)
	if err != nil {
		return err
	}
	var fetch []SeqRange
	w.edge = time.Time{}
	for i, r := range ranges {
		e, ok := edges[r.ConversationID]
		// A range whose oldest message is newer than the cursor holds
		// nothing to fetch.
		if !ok || before == nil || e.Before(before.At.Add(WalkSlack)) {
			fetch = append(fetch, r)
			w.walked += r.To - r.From
		}
		c := &w.convs[of[i]]
		c.lo = r.From
		if c.lo > c.Floor {
			if !ok {
				e = time.Unix(1<<40, 0) // nothing known of what is below: no message is ready
			}
			if e.After(w.edge) {
				w.edge = e
			}
		}
	}
	if len(fetch) == 0 {
		return nil
	}
	msgs, err := w.st.Candidates(ctx, fetch)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if before == nil || cursorLess(Cursor(m), *before) {
			w.pending = append(w.pending, m)
		}
	}
	slices.SortFunc(w.pending, func(a, b Message) int { return -compareCursor(Cursor(a), Cursor(b)) })
	return nil
}

func compareCursor(a, b SearchCursor) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	if c := strings.Compare(a.ConversationID, b.ConversationID); c != 0 {
		return c
	}
	return cmpInt(a.Seq, b.Seq)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cursorLess(a, b SearchCursor) bool { return compareCursor(a, b) < 0 }
