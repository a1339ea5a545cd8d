package groupcommit

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// fakeDB answers a plan's lookups from maps and counts them.
type fakeDB struct {
	members   map[[2]string]bool
	originals map[[3]string]store.Message
	asked     map[string]int
}

func (db *fakeDB) lookup(deferLone bool) Lookup {
	db.asked = map[string]int{}
	return Lookup{
		DeferLone: deferLone,
		Member: func(conv, sender string) (bool, error) {
			db.asked["member "+conv+"/"+sender]++
			return db.members[[2]string{conv, sender}], nil
		},
		Original: func(conv, sender, clientID string) (store.Message, bool, error) {
			db.asked["original "+conv+"/"+sender+"/"+clientID]++
			m, ok := db.originals[[3]string{conv, sender, clientID}]
			return m, ok, nil
		},
	}
}

var t0 = time.UnixMilli(1_700_000_000_000)

func msg(conv, sender, clientID string, atMS int64) store.NewMessage {
	return store.NewMessage{ConversationID: conv, SenderID: sender, Type: 1, Content: []byte(`{}`),
		ClientMsgID: clientID, At: t0.Add(time.Duration(atMS) * time.Millisecond)}
}

func newDB() *fakeDB {
	return &fakeDB{
		members: map[[2]string]bool{
			{"c1", "alice"}: true, {"c1", "bob"}: true,
			{"c2", "alice"}: true, {"c2", "carol"}: true,
		},
		originals: map[[3]string]store.Message{
			{"c1", "alice", "old"}: {ID: "orig", ConversationID: "c1", SenderID: "alice", Seq: 3, ClientMsgID: "old"},
		},
	}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		batch      []store.NewMessage
		deferLone  bool
		skip       map[int]bool
		kinds      []Kind
		offsets    []int64 // per message; 0 when not new
		allocs     []Alloc
		reads      []ReadMark // with lastSeq 10 everywhere
		wantLookup map[string]int
	}{
		{
			name:    "seqs follow arrival order per conversation",
			batch:   []store.NewMessage{msg("c1", "alice", "", 5), msg("c2", "carol", "", 1), msg("c1", "bob", "", 3), msg("c1", "alice", "", 4)},
			kinds:   []Kind{New, New, New, New},
			offsets: []int64{1, 1, 2, 3},
			allocs:  []Alloc{{Conv: "c1", N: 3, At: t0.UnixMilli() + 5}, {Conv: "c2", N: 1, At: t0.UnixMilli() + 1}},
			reads:   []ReadMark{{"c1", "alice", 13}, {"c2", "carol", 11}, {"c1", "bob", 12}},
			wantLookup: map[string]int{
				"member c1/alice": 1, "member c1/bob": 1, "member c2/carol": 1,
			},
		},
		{
			name:       "a non-member is refused and takes no seq",
			batch:      []store.NewMessage{msg("c1", "carol", "", 0), msg("c1", "alice", "", 0), msg("c1", "carol", "x", 0)},
			kinds:      []Kind{Refused, New, Refused},
			offsets:    []int64{0, 1, 0},
			allocs:     []Alloc{{Conv: "c1", N: 1, At: t0.UnixMilli()}},
			reads:      []ReadMark{{"c1", "alice", 11}},
			wantLookup: map[string]int{"member c1/carol": 1, "member c1/alice": 1},
		},
		{
			name:    "an unknown conversation refuses everyone",
			batch:   []store.NewMessage{msg("nope", "alice", "", 0)},
			kinds:   []Kind{Refused},
			offsets: []int64{0},
		},
		{
			name:    "a stored client id answers with the original, every time",
			batch:   []store.NewMessage{msg("c1", "alice", "old", 0), msg("c1", "alice", "old", 0), msg("c1", "alice", "new", 0)},
			kinds:   []Kind{Duplicate, Repeat, New},
			offsets: []int64{0, 0, 1},
			allocs:  []Alloc{{Conv: "c1", N: 1, At: t0.UnixMilli()}},
			reads:   []ReadMark{{"c1", "alice", 11}},
			wantLookup: map[string]int{
				"member c1/alice": 1, "original c1/alice/old": 1, "original c1/alice/new": 1,
			},
		},
		{
			name:    "a client id repeated in the batch is stored once",
			batch:   []store.NewMessage{msg("c1", "alice", "k", 0), msg("c1", "bob", "k", 0), msg("c1", "alice", "k", 0)},
			kinds:   []Kind{New, New, Repeat},
			offsets: []int64{1, 2, 0},
			allocs:  []Alloc{{Conv: "c1", N: 2, At: t0.UnixMilli()}},
			reads:   []ReadMark{{"c1", "alice", 11}, {"c1", "bob", 12}},
		},
		{
			name:       "a lone sender's membership is left to the allocation",
			batch:      []store.NewMessage{msg("c1", "carol", "", 0), msg("c1", "carol", "", 2), msg("c2", "alice", "k", 0)},
			deferLone:  true,
			kinds:      []Kind{New, New, New},
			offsets:    []int64{1, 2, 1},
			allocs:     []Alloc{{Conv: "c1", N: 2, At: t0.UnixMilli() + 2, Lone: "carol"}, {Conv: "c2", N: 1, At: t0.UnixMilli()}},
			reads:      []ReadMark{{"c1", "carol", 12}, {"c2", "alice", 11}},
			wantLookup: map[string]int{"member c2/alice": 1, "original c2/alice/k": 1},
		},
		{
			name:       "several senders are checked even when deferring",
			batch:      []store.NewMessage{msg("c1", "alice", "", 0), msg("c1", "bob", "", 0)},
			deferLone:  true,
			kinds:      []Kind{New, New},
			offsets:    []int64{1, 2},
			allocs:     []Alloc{{Conv: "c1", N: 2, At: t0.UnixMilli()}},
			reads:      []ReadMark{{"c1", "alice", 11}, {"c1", "bob", 12}},
			wantLookup: map[string]int{"member c1/alice": 1, "member c1/bob": 1},
		},
		{
			name:       "answered messages are skipped",
			batch:      []store.NewMessage{msg("c1", "alice", "", 0), msg("c1", "bob", "", 0)},
			skip:       map[int]bool{0: true},
			kinds:      []Kind{Skipped, New},
			offsets:    []int64{0, 1},
			allocs:     []Alloc{{Conv: "c1", N: 1, At: t0.UnixMilli()}},
			reads:      []ReadMark{{"c1", "bob", 11}},
			wantLookup: map[string]int{"member c1/bob": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := newDB()
			p, err := Make(tc.batch, func(i int) bool { return tc.skip[i] }, db.lookup(tc.deferLone))
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range p.Outcomes {
				if o.Kind != tc.kinds[i] || o.Offset != tc.offsets[i] {
					t.Errorf("message %d: kind %d offset %d, want kind %d offset %d", i, o.Kind, o.Offset, tc.kinds[i], tc.offsets[i])
				}
			}
			if !reflect.DeepEqual(p.Allocs, tc.allocs) {
				t.Errorf("allocs = %+v, want %+v", p.Allocs, tc.allocs)
			}
			if tc.wantLookup != nil && !reflect.DeepEqual(db.asked, tc.wantLookup) {
				t.Errorf("lookups = %v, want %v", db.asked, tc.wantLookup)
			}
			for _, a := range p.Allocs {
				p.Assign(a.Conv, 10, 7)
			}
			if got := p.ReadMarks(); !reflect.DeepEqual(got, tc.reads) {
				t.Errorf("read marks = %+v, want %+v", got, tc.reads)
			}
			res := p.Results()
			ins := p.Inserts()
			n := 0
			for i, r := range res {
				switch tc.kinds[i] {
				case New:
					m := ins[n]
					n++
					if r.Dup || r.Msg.ID != m.ID || r.Msg.Seq != 10+tc.offsets[i] || r.Msg.MembersVersion != 7 ||
						r.Msg.SenderID != tc.batch[i].SenderID || !r.Msg.CreatedAt.Equal(tc.batch[i].At) || !store.ValidID(r.Msg.ID) {
						t.Errorf("message %d: result %+v, insert %+v", i, r, m)
					}
				case Duplicate:
					if !r.Dup || r.Msg.ID != "orig" {
						t.Errorf("message %d: %+v, want the stored original", i, r)
					}
				case Repeat:
					if first := res[p.Outcomes[i].Of]; !r.Dup || r.Msg.ID != first.Msg.ID || r.Msg.Seq != first.Msg.Seq {
						t.Errorf("message %d: %+v, want a duplicate of %+v", i, r, first)
					}
				case Refused:
					if !r.Refused {
						t.Errorf("message %d: %+v, want refused", i, r)
					}
				case Skipped:
					if !reflect.DeepEqual(r, Result{}) {
						t.Errorf("message %d: %+v, want nothing", i, r)
					}
				}
			}
			if n != len(ins) {
				t.Errorf("%d inserts, want %d", len(ins), n)
			}
		})
	}
}

func TestRefuseDropsTheAllocation(t *testing.T) {
	t.Parallel()
	db := newDB()
	p, err := Make([]store.NewMessage{msg("c1", "mallory", "", 0), msg("c2", "alice", "", 0), msg("c1", "mallory", "", 0)}, nil, db.lookup(true))
	if err != nil {
		t.Fatal(err)
	}
	p.Refuse("c1")
	if want := []Alloc{{Conv: "c2", N: 1, At: t0.UnixMilli(), Lone: "alice"}}; !reflect.DeepEqual(p.Allocs, want) {
		t.Fatalf("allocs = %+v, want %+v", p.Allocs, want)
	}
	p.Assign("c2", 0, 1)
	res := p.Results()
	if !res[0].Refused || !res[2].Refused || res[1].Refused || res[1].Msg.Seq != 1 {
		t.Fatalf("results = %+v", res)
	}
	if ins := p.Inserts(); len(ins) != 1 || ins[0].ConversationID != "c2" {
		t.Fatalf("inserts = %+v", ins)
	}
}

func TestLookupErrorsStopThePlan(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	lk := Lookup{
		Member:   func(string, string) (bool, error) { return false, boom },
		Original: func(string, string, string) (store.Message, bool, error) { return store.Message{}, false, boom },
	}
	if _, err := Make([]store.NewMessage{msg("c1", "alice", "", 0)}, nil, lk); !errors.Is(err, boom) {
		t.Fatalf("member error: %v", err)
	}
	lk.Member = func(string, string) (bool, error) { return true, nil }
	if _, err := Make([]store.NewMessage{msg("c1", "alice", "k", 0)}, nil, lk); !errors.Is(err, boom) {
		t.Fatalf("original error: %v", err)
	}
}

func TestResultsRefuseAnUnassignedAllocation(t *testing.T) {
	t.Parallel()
	p, err := Make([]store.NewMessage{msg("c1", "alice", "", 0)}, nil, newDB().lookup(false))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Results with an unassigned allocation did not panic")
		}
	}()
	p.Results()
}

func TestConvsAreSortedAndDistinct(t *testing.T) {
	t.Parallel()
	batch := []store.NewMessage{msg("c3", "a", "", 0), msg("c1", "a", "", 0), msg("c3", "b", "", 0), msg("c2", "a", "", 0)}
	if got, want := Convs(batch, func(i int) bool { return i == 3 }), []string{"c1", "c3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Convs = %v, want %v", got, want)
	}
}

func TestRedo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n     int
		fault bool
		want  bool
	}{{1, true, false}, {2, true, true}, {5, false, false}} {
		if got := Redo(tc.n, tc.fault); got != tc.want {
			t.Errorf("Redo(%d, %v) = %v, want %v", tc.n, tc.fault, got, tc.want)
		}
	}
}
