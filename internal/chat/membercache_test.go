package chat

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/sqlite"
)

// recipientIDs lists the user ids of the last delivery the recorder got.
func recipientIDs(t *testing.T, r *recorder) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sent) == 0 {
		t.Fatal("nothing was delivered")
	}
	var ids []string
	for _, rc := range r.sent[len(r.sent)-1].Recipients {
		ids = append(ids, rc.UserID)
	}
	slices.Sort(ids)
	return ids
}

// TestGroupSendAfterMembershipChanges: on one node, a removed member is no
// recipient of the next send, a member added or re-added is, and a send
// with no change in between reads no member list.
func TestGroupSendAfterMembershipChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs := &countingStore{Store: st}
	rec := &recorder{}
	svc := New(cs, Options{Notifier: rec})
	app, err := svc.CreateApp(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.CreateGroup(ctx, app.ID, "g", "G", "", []string{"ann", "bob", "cat"}); err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		name   string
		change func() error
		want   []string
		reads  int // member lists read by the send
	}{
		{"first send", nil, []string{"ann", "bob", "cat"}, 1},
		{"no change", nil, []string{"ann", "bob", "cat"}, 0},
		{"cat removed", func() error { return svc.RemoveFromGroup(ctx, app.ID, "g", []string{"cat"}) },
			[]string{"ann", "bob"}, 1},
		{"no change after the removal", nil, []string{"ann", "bob"}, 0},
		{"dan joins, cat is back", func() error { return svc.JoinGroup(ctx, app.ID, "g", []string{"dan", "cat"}) },
			[]string{"ann", "bob", "cat", "dan"}, 1},
		{"the group upserted with a newcomer", func() error {
			return svc.CreateGroup(ctx, app.ID, "g", "G", "", []string{"eve"})
		}, []string{"ann", "bob", "cat", "dan", "eve"}, 1},
		{"a removal of nobody", func() error { return svc.RemoveFromGroup(ctx, app.ID, "g", []string{"zed"}) },
			[]string{"ann", "bob", "cat", "dan", "eve"}, 0},
	} {
		if step.change != nil {
			if err := step.change(); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		}
		cs.mu.Lock()
		before := cs.members
		cs.mu.Unlock()
		if _, err := svc.SendGroup(ctx, SendInput{AppID: app.ID, SenderID: "ann", TargetID: "g", Type: TypeText, Content: text(fmt.Sprint(i))}); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := recipientIDs(t, rec); !slices.Equal(got, step.want) {
			t.Fatalf("%s: recipients %v, want %v", step.name, got, step.want)
		}
		cs.mu.Lock()
		reads := cs.members - before
		cs.mu.Unlock()
		if reads != step.reads {
			t.Fatalf("%s: the send read %d member lists, want %d", step.name, reads, step.reads)
		}
	}
}

// TestMemberCacheAcrossNodes: two services on one store stand for two
// nodes, with nothing relayed between them. Node B has the group's members
// in memory; a member removed through node A is no recipient of B's very
// next send, and a member added through A is, because the store reports the
// members version inside each send. (Without the version check B would
// push to the removed member from its cache.)
func TestMemberCacheAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recB := &recorder{}
	a := New(st, Options{})
	countB := &countingStore{Store: st}
	b := New(countB, Options{Notifier: recB})
	app, err := a.CreateApp(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateGroup(ctx, app.ID, "g", "G", "", []string{"ann", "bob", "cat"}); err != nil {
		t.Fatal(err)
	}
	sendOnB := func(want ...string) {
		t.Helper()
		if _, err := b.SendGroup(ctx, SendInput{AppID: app.ID, SenderID: "ann", TargetID: "g", Type: TypeText, Content: text("hi")}); err != nil {
			t.Fatal(err)
		}
		if got := recipientIDs(t, recB); !slices.Equal(got, want) {
			t.Fatalf("node B's recipients %v, want %v", got, want)
		}
	}
	sendOnB("ann", "bob", "cat")
	sendOnB("ann", "bob", "cat")
	countB.mu.Lock()
	if countB.members != 1 {
		t.Fatalf("node B read %d member lists for two sends; want 1 (the second from memory)", countB.members)
	}
	countB.mu.Unlock()

	if err := a.RemoveFromGroup(ctx, app.ID, "g", []string{"cat"}); err != nil {
		t.Fatal(err)
	}
	sendOnB("ann", "bob")
	if err := a.JoinGroup(ctx, app.ID, "g", []string{"dan"}); err != nil {
		t.Fatal(err)
	}
	sendOnB("ann", "bob", "dan")
	// A removal and a re-addition leave the same user ids, with a new sid.
	sid := func() string {
		recB.mu.Lock()
		defer recB.mu.Unlock()
		for _, r := range recB.sent[len(recB.sent)-1].Recipients {
			if r.UserID == "bob" {
				return r.Session.SID
			}
		}
		return ""
	}
	old := sid()
	if err := a.RemoveFromGroup(ctx, app.ID, "g", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	if err := a.JoinGroup(ctx, app.ID, "g", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	sendOnB("ann", "bob", "dan")
	if now := sid(); now == old || !store.ValidID(now) {
		t.Fatalf("bob's session after leaving and rejoining: %q, was %q; want his new sid", now, old)
	}
}

func members(ids ...string) []store.Member {
	out := make([]store.Member, len(ids))
	for i, id := range ids {
		out[i] = store.Member{UserID: id}
	}
	return out
}

// TestMemberCache: an entry answers only for its exact version, a later
// version replaces it and an earlier one does not, and the least recently
// used entries go when the rows held pass the bound.
func TestMemberCache(t *testing.T) {
	t.Parallel()
	type op struct {
		put     bool // else get
		conv    string
		version int64
		rows    int  // put: list length
		hit     bool // get: expected
		want    int  // get: expected list length on a hit
	}
	for _, tc := range []struct {
		name string
		max  int
		ops  []op
	}{
		{"exact version only", 10, []op{
			{put: true, conv: "a", version: 2, rows: 3},
			{conv: "a", version: 2, hit: true, want: 3},
			{conv: "a", version: 1},
			{conv: "a", version: 3},
			{conv: "b", version: 2},
		}},
		{"later replaces, earlier does not", 10, []op{
			{put: true, conv: "a", version: 2, rows: 3},
			{put: true, conv: "a", version: 4, rows: 5},
			{put: true, conv: "a", version: 3, rows: 1},
			{conv: "a", version: 2},
			{conv: "a", version: 3},
			{conv: "a", version: 4, hit: true, want: 5},
		}},
		{"least recently used evicted", 10, []op{
			{put: true, conv: "a", version: 1, rows: 4},
			{put: true, conv: "b", version: 1, rows: 4},
			{conv: "a", version: 1, hit: true, want: 4}, // b is now the oldest
			{put: true, conv: "c", version: 1, rows: 4},
			{conv: "b", version: 1},
			{conv: "a", version: 1, hit: true, want: 4},
			{conv: "c", version: 1, hit: true, want: 4},
		}},
		{"a growing entry evicts others", 10, []op{
			{put: true, conv: "a", version: 1, rows: 4},
			{put: true, conv: "b", version: 1, rows: 4},
			{put: true, conv: "b", version: 2, rows: 8},
			{conv: "a", version: 1},
			{conv: "b", version: 2, hit: true, want: 8},
		}},
		{"a list over the bound is not kept", 10, []op{
			{put: true, conv: "a", version: 1, rows: 4},
			{put: true, conv: "big", version: 1, rows: 11},
			{conv: "big", version: 1},
			{conv: "a", version: 1, hit: true, want: 4},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newMemberCache(tc.max)
			for i, o := range tc.ops {
				if o.put {
					ids := make([]string, o.rows)
					for j := range ids {
						ids[j] = fmt.Sprint("u", j)
					}
					c.put(o.conv, o.version, members(ids...))
					continue
				}
				ms, hit := c.get(o.conv, o.version)
				if hit != o.hit || hit && len(ms) != o.want {
					t.Fatalf("op %d: get(%s, %d) = %d members, hit %v; want hit %v with %d", i, o.conv, o.version, len(ms), hit, o.hit, o.want)
				}
			}
			rows := 0
			for el := c.lru.Front(); el != nil; el = el.Next() {
				rows += len(el.Value.(*memberEntry).members)
			}
			if rows != c.rows || c.rows > tc.max || len(c.byConv) != c.lru.Len() {
				t.Fatalf("rows counted %d, held %d (bound %d); %d entries in the map, %d in the list", c.rows, rows, tc.max, len(c.byConv), c.lru.Len())
			}
		})
	}
}

// staleReads answers Members as if the read saw a state older than the
// send: a broken store, which the send path must not trust.
type staleReads struct{ store.Store }

func (s staleReads) Members(ctx context.Context, id string) ([]store.Member, int64, error) {
	ms, v, err := s.Store.Members(ctx, id)
	return ms, v - 1, err
}

// TestGroupSendRefusesAnOlderList: a member list read at a version older
// than the send's could hold someone removed before it; nothing is pushed.
func TestGroupSendRefusesAnOlderList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &recorder{}
	svc := New(staleReads{st}, Options{Notifier: rec})
	app, err := svc.CreateApp(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.CreateGroup(ctx, app.ID, "g", "G", "", []string{"ann", "bob"}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.SendGroup(ctx, SendInput{AppID: app.ID, SenderID: "ann", TargetID: "g", Type: TypeText, Content: text("x")})
	if err == nil || len(rec.sent) != 0 {
		t.Fatalf("send with an older member list: %v, %d deliveries; want an error and none", err, len(rec.sent))
	}
}
