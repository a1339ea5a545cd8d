package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// fakeWalk is a WalkStore over messages in memory: conversation id → its
// messages by seq (index seq-1).
type fakeWalk struct {
	convs map[string][]Message
	match func(Message) bool
}

func (f fakeWalk) Newest(_ context.Context, ranges []SeqRange) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for _, r := range ranges {
		if r.To > r.From {
			out[r.ConversationID] = f.convs[r.ConversationID][r.To-1].CreatedAt
		}
	}
	return out, nil
}

func (f fakeWalk) Candidates(_ context.Context, ranges []SeqRange) ([]Message, error) {
	var out []Message
	for _, r := range ranges {
		for _, m := range f.convs[r.ConversationID][r.From:r.To] {
			if f.match(m) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// TestWalk: pages of a walk over conversations of very different sizes and
// time spans are the newest hits in search order, as a sort of the whole
// history gives them, however small the windows; and a walk past its
// bound answers a partial page whose cursor goes on where it stopped.
func TestWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	base := time.UnixMilli(1_700_000_000_000)
	f := fakeWalk{convs: map[string][]Message{}, match: func(m Message) bool { return m.Seq%7 == 0 || m.Seq%11 == 3 }}
	var convs []WalkConv
	var want []Message
	for i := range 30 {
		id := fmt.Sprintf("c%02d", i)
		n := 1 + rng.IntN(200)
		at := base.Add(time.Duration(rng.IntN(100_000)) * time.Second)
		first := at.Add(-time.Duration(rng.IntN(3600)) * time.Second) // created before its first message
		for seq := 1; seq <= n; seq++ {
			at = at.Add(time.Duration(rng.IntN(3000)) * time.Second) // ties too
			m := Message{ConversationID: id, Seq: int64(seq), CreatedAt: at}
			f.convs[id] = append(f.convs[id], m)
		}
		floor := int64(rng.IntN(n/2 + 1)) // joined later
		convs = append(convs, WalkConv{ID: id, Floor: floor, Last: int64(n), FirstAt: first, LastAt: at.Add(time.Duration(rng.IntN(2)) * time.Hour)})
		for _, m := range f.convs[id][floor:] {
			if f.match(m) {
				want = append(want, m)
			}
		}
	}
	slices.SortFunc(want, func(a, b Message) int { return -compareCursor(Cursor(a), Cursor(b)) })
	key := func(ms []Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%s/%d", m.ConversationID, m.Seq))
		}
		return out
	}
	for _, window := range []int64{1, 7, 100, 100_000} {
		for _, limit := range []int{3, 30} {
			var got []Message
			var before *SearchCursor
			for pages := 0; ; pages++ {
				w := NewWalk(f, convs)
				w.window = window
				page, err := FilterSearch(context.Background(), SearchQuery{Terms: []string{"x"}, Limit: limit, Before: before},
					func(ctx context.Context, before *SearchCursor, n int) ([]Message, error) {
						msgs, err := w.Fetch(ctx, before, n)
						for i := range msgs { // FilterSearch matches the text: make every candidate a hit
							msgs[i].Type, msgs[i].Content = 1, []byte(`{"content":"x"}`)
						}
						return msgs, err
					})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, page.Messages...)
				if page.Next == nil || pages > len(want) {
					break
				}
				before = page.Next
			}
			if !slices.Equal(key(got), key(want)) {
				t.Fatalf("window %d, limit %d: %d hits, want %d\n got %v\nwant %v", window, limit, len(got), len(want), key(got), key(want))
			}
		}
	}
	// Bounded: a walk that stops early answers a partial page; going on
	// from its cursor gives the rest, nothing twice, nothing missed.
	var got []Message
	var before *SearchCursor
	partial := 0
	for pages := 0; pages < 10_000; pages++ {
		w := NewWalk(f, convs)
		w.window, w.bound = 16, 200
		page, err := FilterSearch(context.Background(), SearchQuery{Terms: []string{"x"}, Limit: 20, Before: before},
			func(ctx context.Context, before *SearchCursor, n int) ([]Message, error) {
				msgs, err := w.Fetch(ctx, before, n)
				for i := range msgs {
					msgs[i].Type, msgs[i].Content = 1, []byte(`{"content":"x"}`)
				}
				return msgs, err
			})
		if err != nil {
			t.Fatal(err)
		}
		if page.Partial {
			partial++
		}
		got = append(got, page.Messages...)
		if page.Next == nil {
			break
		}
		before = page.Next
	}
	if partial == 0 {
		t.Fatal("no page stopped at the bound")
	}
	if !slices.Equal(key(got), key(want)) {
		t.Fatalf("bounded: %d hits, want %d", len(got), len(want))
	}
}
