package store

import (
	"context"
	"errors"
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
	WalkFirst = 800
	// MaxWalk bounds the messages one search walks below its cursor:
	// past it the page is answered as it stands (SearchPage.Partial).
	MaxWalk = 60_000
	// WalkSlack is how far a message's time may be behind an earlier
	// message's of the same conversation.
	WalkSlack = 5 * time.Second
)

// WalkWant is the default of Walk.Want.
const WalkWant = 20

// ErrMoreCandidates is returned by a SearchCandidates that returns fewer
// than asked, not at the end: FilterSearch asks again.
var ErrMoreCandidates = errors.New("more search candidates")

// ScanBound is the error of a SearchCandidates that stopped at its bound
// (MaxWalk), returned with the candidates it has: FilterSearch then
// answers a partial page that goes on from Next.
type ScanBound struct{ Next SearchCursor }

func (e *ScanBound) Error() string { return "search scan bound" }

// WalkConv is one conversation of a walk: the messages the searcher may see
// there are seqs (Floor, Last]. LastAt is at least the time of its newest
// message (conversations.last_msg_at, which every message written raises:
// the walk relies on it as a bound), FirstAt about when its first was sent
// (the conversation's creation); with Last they estimate its rate.
type WalkConv struct {
	ID              string
	Floor, Last     int64
	FirstAt, LastAt time.Time
}

// rate is about how many messages per nanosecond the conversation had.
func (c WalkConv) rate() float64 {
	return float64(c.Last) / float64(max(c.LastAt.Sub(c.FirstAt), time.Minute))
}

// SeqRange is the seqs (From, To] of a conversation.
type SeqRange struct {
	ConversationID string
	From, To       int64
}

// WalkStore is what a walk asks of a store backend.
type WalkStore interface {
	// Newest returns, for each range, the time of its newest message; a
	// range with none is left out.
	Newest(ctx context.Context, ranges []SeqRange) (map[string]time.Time, error)
	// Candidates returns the messages of the ranges whose text contains
	// every term (the store's substring match), in any order.
	Candidates(ctx context.Context, ranges []SeqRange) ([]Message, error)
}

// Walk is the state of one search's newest-first walk; its Fetch is the
// SearchCandidates of FilterSearch.
type Walk struct {
	// Want is how many candidates a Fetch walks for, at most n: the
	// page's limit, as most candidates are hits (default WalkWant).
	Want int

	st      WalkStore
	convs   []walkConv
	total   int64 // messages the user may see in all
	window  int64 // messages of the first round, in all
	walked  int64 // below the cursor
	bound   int64 // MaxWalk
	rounds  int
	pending []Message // newest first
	top     time.Time // the newest LastAt
	target  time.Time // of the last round
}

type walkConv struct {
	WalkConv
	lo   int64     // (lo, Last] has been walked
	rest time.Time // the time of the newest message at or below lo
}

func (c *walkConv) done() bool { return c.lo <= c.Floor }

// NewWalk starts a walk over convs.
func NewWalk(st WalkStore, convs []WalkConv) *Walk {
	w := &Walk{Want: WalkWant, st: st, window: WalkFirst, bound: MaxWalk}
	for _, c := range convs {
		if c.Last > c.Floor {
			w.convs = append(w.convs, walkConv{WalkConv: c, lo: c.Last})
			w.total += c.Last - c.Floor
			if c.LastAt.After(w.top) {
				w.top = c.LastAt
			}
		}
	}
	return w
}

// edge is the newest time below the walk (zero when it is done).
func (w *Walk) edge() time.Time {
	var e time.Time
	for _, c := range w.convs {
		if !c.done() && c.rest.After(e) {
			e = c.rest
		}
	}
	return e
}

// Fetch returns up to n candidates before before, newest first: those the
// walk so far proves to be the newest, walking further back as needed.
// It returns a *ScanBound with what it has once it walked MaxWalk messages
// below before.
func (w *Walk) Fetch(ctx context.Context, before *SearchCursor, n int) ([]Message, error) {
	w.pending = slices.DeleteFunc(w.pending, func(m Message) bool { return before != nil && !cursorLess(Cursor(m), *before) })
	for {
		ready, edge := len(w.pending), w.edge()
		if w.rounds > 0 && !edge.IsZero() {
			ready, _ = slices.BinarySearchFunc(w.pending, edge.Add(WalkSlack), func(m Message, t time.Time) int {
				if m.CreatedAt.After(t) {
					return -1
				}
				return 1
			})
		}
		if w.rounds > 0 && (ready >= min(n, w.Want) || edge.IsZero()) {
			k := min(n, ready)
			out := slices.Clone(w.pending[:k])
			w.pending = w.pending[k:]
			if k < n && !edge.IsZero() {
				return out, ErrMoreCandidates
			}
			return out, nil
		}
		// Everything newer than the edge (and the slack) was walked: a
		// partial page goes on from there, once that is below the cursor
		// (the walk may go past its bound until then).
		next := SearchCursor{At: edge.Add(WalkSlack + time.Millisecond)}
		if w.walked >= w.bound && (before == nil || cursorLess(next, *before)) {
			out := slices.Clone(w.pending[:ready])
			w.pending = w.pending[ready:]
			return out, &ScanBound{next}
		}
		if err := w.round(ctx, before, min(n, w.Want)); err != nil {
			return nil, err
		}
	}
}

// targetFor is the time from which the conversations should hold about n
// messages, by their rates.
func (w *Walk) targetFor(n int64) time.Time {
	lo, hi := w.top.Add(-10*365*24*time.Hour), w.top
	for range 40 {
		mid := lo.Add(hi.Sub(lo) / 2)
		var m float64
		for _, c := range w.convs {
			if d := c.LastAt.Sub(mid); d > 0 {
				m += min(float64(c.Last-c.Floor), c.rate()*float64(d))
			}
		}
		if m > float64(n) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// round walks further back. The first round aims at w.window messages, the next
// ones aim at a time: the n-th newest candidate when there are n (every
// conversation whose unwalked messages may be newer must go below it),
// else as far back as the candidates found so far say the rest should be
// (at least twice the depth walked); a conversation's step there follows
// its rate of messages seen so far, doubling its window when that is
// unknown.
func (w *Walk) round(ctx context.Context, before *SearchCursor, n int) error {
	var target time.Time
	if w.rounds == 0 {
		target = w.targetFor(w.window)
	} else {
		// The k candidates newer than the last target came from about
		// the messages walked so far: aim at as many more messages as
		// should find n (at least twice, at most 8 times as many); and
		// no further than the n-th newest candidate, if there is one
		// (those are hits already).
		k, _ := slices.BinarySearchFunc(w.pending, w.target, func(m Message, t time.Time) int {
			if m.CreatedAt.After(t) {
				return -1
			}
			return 1
		})
		var walked int64
		for _, c := range w.convs {
			walked += c.Last - c.lo
		}
		factor := min(8, max(2, 1.5*float64(n)/float64(max(1, k))))
		target = w.targetFor(int64(factor * float64(max(walked, w.window))))
		if before != nil && before.At.Before(target) {
			target = before.At
		}
		if len(w.pending) >= n && w.pending[n-1].CreatedAt.After(target) {
			target = w.pending[n-1].CreatedAt
		}
	}
	w.rounds++
	w.target = target
	var ranges, probes []SeqRange
	var of []int // ranges[i] is of w.convs[of[i]]
	for i := range w.convs {
		c := &w.convs[i]
		if c.done() {
			continue
		}
		var step int64
		switch {
		case w.rounds == 1:
			d := c.LastAt.Sub(target)
			if d+WalkSlack < 0 {
				// Nothing it holds is as new as the target: LastAt,
				// which every message raises, bounds it unread.
				c.rest = c.LastAt
				continue
			}
			step = 1 + int64(1.2*c.rate()*float64(max(0, d)))
		case c.rest.Add(WalkSlack).Before(target):
			continue // nothing below it is as new as the target
		default:
			// At least double what was walked if the rate was wrong.
			step = max(1+int64(1.5*c.rate()*float64(c.rest.Sub(target))), c.Last-c.lo)
		}
		from := max(c.Floor, c.lo-step) // step 0: only read where it stands
		ranges = append(ranges, SeqRange{c.ID, from, c.lo})
		probes = append(probes, SeqRange{c.ID, c.Floor, from})
		of = append(of, i)
	}
	rest, err := w.st.Newest(ctx, probes)
	if err != nil {
		return err
	}
	var fetch []SeqRange
	for i, r := range ranges {
		c := &w.convs[of[i]]
		c.lo = r.From
		e, ok := rest[r.ConversationID]
		if !ok {
			c.lo = c.Floor // nothing left below
		}
		c.rest = e
		// A range whose messages are all newer than the cursor (its
		// oldest at least as new as what is below it) holds nothing to
		// fetch.
		if r.To == r.From {
			continue
		}
		if !ok || before == nil || e.Before(before.At.Add(2*WalkSlack)) {
			fetch = append(fetch, r)
			w.walked += r.To - r.From
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
