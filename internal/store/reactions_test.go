package store

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// TestNextReactions checks the aggregate computed from the previous one
// against the aggregate of the rows, over random additions and removals
// (more users than a sample holds, so samples fill up), and that it answers
// for every addition.
func TestNextReactions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var rows [][2]string // in created_at order
	known, asked, additions := 0, 0, 0
	for step := range 20000 {
		row := [2]string{[]string{"👍", "❤️", "😂"}[r.IntN(3)], fmt.Sprintf("u%d", r.IntN(2*ReactionSample))}
		on := r.IntN(3) > 0 || len(rows) > 60
		at := slices.Index(rows, row)
		if on == (at >= 0) {
			continue // no change: the store reports ErrUnchanged and nothing is computed
		}
		before := AggregateReactions(rows)
		snapshot := fmt.Sprint(before)
		if on {
			rows = append(rows, row)
		} else {
			rows = slices.Delete(rows, at, at+1)
		}
		want := AggregateReactions(rows)
		got, ok := NextReactions(before, row[1], row[0], on)
		if fmt.Sprint(before) != snapshot {
			t.Fatalf("step %d: before was modified", step)
		}
		asked++
		if on {
			additions++
		}
		if !ok {
			if on {
				t.Fatalf("step %d: no answer for an addition to %v", step, before)
			}
			continue
		}
		known++
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: %v %v %v:\n got %v\nwant %v", step, on, row[0], row[1], got, want)
		}
	}
	t.Logf("answered %d of %d changes (%d additions)", known, asked, additions)
}
