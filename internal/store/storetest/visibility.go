package storetest

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// visible is what user sees of conv through History (all, newest first)
// and After (all, oldest first); both must agree.
func visible(t *testing.T, s store.Store, conv, user string) []int64 {
	t.Helper()
	h, err := s.History(ctx, conv, user, 0, 1000)
	if err != nil {
		t.Fatalf("History(%s): %v", user, err)
	}
	a, err := s.After(ctx, conv, user, 0, 1000)
	if err != nil {
		t.Fatalf("After(%s): %v", user, err)
	}
	got := seqs(a)
	rev := slices.Clone(seqs(h))
	slices.Reverse(rev)
	if !slices.Equal(rev, got) && !(len(rev) == 0 && len(got) == 0) {
		t.Fatalf("%s: History sees %v, After sees %v", user, rev, got)
	}
	return got
}

func wantVisible(t *testing.T, s store.Store, conv, user string, want []int64) {
	t.Helper()
	if got := visible(t, s, conv, user); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s sees seqs %v, want %v", user, got, want)
	}
}

// testVisibility: a member sees a group's messages from when they last
// joined; removed and added again, they start over.
func testVisibility(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "owner", "early")
	send(t, s, g.ID, "owner", 1)
	send(t, s, g.ID, "owner", 2)
	if err := s.AddMembers(ctx, app, "g", []string{"late"}); err != nil {
		t.Fatal(err)
	}
	send(t, s, g.ID, "owner", 3)
	wantVisible(t, s, g.ID, "owner", seqRange(1, 3))
	wantVisible(t, s, g.ID, "early", seqRange(1, 3))
	wantVisible(t, s, g.ID, "late", []int64{3})
	wantVisible(t, s, g.ID, "stranger", nil)

	// Paging within the visible range ends at the join.
	if h, err := s.History(ctx, g.ID, "late", 3, 10); err != nil || len(h) != 0 {
		t.Fatalf("History(late, before 3) = %v, %v; want nothing", seqs(h), err)
	}
	if a, err := s.After(ctx, g.ID, "late", 1, 10); err != nil || !slices.Equal(seqs(a), []int64{3}) {
		t.Fatalf("After(late, 1) = %v, %v; want [3]", seqs(a), err)
	}

	// Removed, the member sees nothing; while out, messages go on; added
	// again, they see only what came after.
	if err := s.RemoveMembers(ctx, app, "g", []string{"early"}); err != nil {
		t.Fatal(err)
	}
	wantVisible(t, s, g.ID, "early", nil)
	send(t, s, g.ID, "owner", 4)
	if err := s.AddMembers(ctx, app, "g", []string{"early"}); err != nil {
		t.Fatal(err)
	}
	wantVisible(t, s, g.ID, "early", nil)
	send(t, s, g.ID, "late", 5)
	wantVisible(t, s, g.ID, "early", []int64{5})
	wantVisible(t, s, g.ID, "late", seqRange(3, 5))

	// Private conversations are visible from the start.
	p := openPrivate(t, s, app, "a", "b")
	send(t, s, p.ID, "a", 6)
	wantVisible(t, s, p.ID, "b", []int64{1})
}

// testVisibilitySessions: a session's last message and unread count follow
// the same rule.
func testVisibilitySessions(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "owner")
	send(t, s, g.ID, "owner", 1)
	if err := s.AddMembers(ctx, app, "g", []string{"late"}); err != nil {
		t.Fatal(err)
	}
	x := session(t, s, g.ID, "late")
	if x.LastMsg != nil || x.Unread() != 0 {
		t.Fatalf("new member's session: last %+v unread %d; want none, 0", x.LastMsg, x.Unread())
	}
	ss, err := s.Sessions(ctx, app, "late")
	if err != nil || len(ss) != 1 || ss[0].LastMsg != nil || ss[0].Unread() != 0 {
		t.Fatalf("Sessions(late) = %+v, %v; want one session with no last message", ss, err)
	}
	m := send(t, s, g.ID, "owner", 2)
	x = session(t, s, g.ID, "late")
	if x.LastMsg == nil || x.LastMsg.ID != m.ID || x.Unread() != 1 {
		t.Fatalf("after a message: last %+v unread %d; want %s, 1", x.LastMsg, x.Unread(), m.ID)
	}
	// Removed and added again: what was sent while out is neither the last
	// message nor unread.
	if err := s.RemoveMembers(ctx, app, "g", []string{"late"}); err != nil {
		t.Fatal(err)
	}
	send(t, s, g.ID, "owner", 3)
	if err := s.AddMembers(ctx, app, "g", []string{"late"}); err != nil {
		t.Fatal(err)
	}
	x = session(t, s, g.ID, "late")
	if x.LastMsg != nil || x.Unread() != 0 {
		t.Fatalf("re-added member's session: last %+v unread %d; want none, 0", x.LastMsg, x.Unread())
	}
}

// testFullHistory: the group's setting, or a member's grant, shows the
// whole history; turning it off hides it again.
func testFullHistory(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "owner")
	send(t, s, g.ID, "owner", 1)
	send(t, s, g.ID, "owner", 2)
	if err := s.AddMembers(ctx, app, "g", []string{"granted", "plain"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMembersFullHistory(ctx, app, "g", []string{"granted", "stranger"}, true); err != nil {
		t.Fatal(err)
	}
	wantVisible(t, s, g.ID, "granted", seqRange(1, 2))
	wantVisible(t, s, g.ID, "plain", nil)
	wantVisible(t, s, g.ID, "stranger", nil) // not a member: the grant did nothing
	if x := session(t, s, g.ID, "granted"); x.LastMsg == nil || x.LastMsg.Seq != 2 || x.Unread() != 0 {
		t.Fatalf("granted member's session: last %+v unread %d; want seq 2, 0 unread", x.LastMsg, x.Unread())
	}

	if err := s.SetGroupFullHistory(ctx, app, "g", true); err != nil {
		t.Fatal(err)
	}
	wantVisible(t, s, g.ID, "plain", seqRange(1, 2))
	if x := session(t, s, g.ID, "plain"); x.LastMsg == nil || x.LastMsg.Seq != 2 {
		t.Fatalf("with the group's full history, session last %+v; want seq 2", x.LastMsg)
	}
	if err := s.SetGroupFullHistory(ctx, app, "g", false); err != nil {
		t.Fatal(err)
	}
	wantVisible(t, s, g.ID, "plain", nil)
	if err := s.SetMembersFullHistory(ctx, app, "g", []string{"granted"}, false); err != nil {
		t.Fatal(err)
	}
	wantVisible(t, s, g.ID, "granted", nil)

	// A grant ends with the membership.
	if err := s.SetMembersFullHistory(ctx, app, "g", []string{"granted"}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMembers(ctx, app, "g", []string{"granted"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMembers(ctx, app, "g", []string{"granted"}); err != nil {
		t.Fatal(err)
	}
	wantVisible(t, s, g.ID, "granted", nil)

	wantErr(t, "SetGroupFullHistory unknown", s.SetGroupFullHistory(ctx, app, "nope", true), store.ErrNotFound)
	wantErr(t, "SetMembersFullHistory unknown", s.SetMembersFullHistory(ctx, app, "nope", []string{"x"}, true), store.ErrNotFound)
	other := newApp(t, s)
	wantErr(t, "SetGroupFullHistory other app", s.SetGroupFullHistory(ctx, other, "g", true), store.ErrNotFound)
}

func testAppSignRoute(t *testing.T, s store.Store) {
	app := newApp(t, s)
	if a, err := s.App(ctx, app); err != nil || a.SignRoute {
		t.Fatalf("new app: SignRoute %v, %v; want off", a.SignRoute, err)
	}
	if err := s.SetAppSignRoute(ctx, app, true); err != nil {
		t.Fatal(err)
	}
	if a, err := s.App(ctx, app); err != nil || !a.SignRoute {
		t.Fatalf("after SetAppSignRoute: SignRoute %v, %v; want on", a.SignRoute, err)
	}
	if err := s.SetAppSignRoute(ctx, app, false); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.App(ctx, app); a.SignRoute {
		t.Fatal("SignRoute still on")
	}
	b := store.App{ID: store.NewID(), Name: "b", Secret: "x", SignRoute: true}
	if err := s.CreateApp(ctx, b); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.App(ctx, b.ID); !a.SignRoute {
		t.Fatal("CreateApp dropped SignRoute")
	}
	wantErr(t, "SetAppSignRoute unknown", s.SetAppSignRoute(ctx, store.NewID(), true), store.ErrNotFound)

	if err := s.SetAppStatus(ctx, app, 1); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.App(ctx, app); a.Status != 1 {
		t.Fatalf("status %d after SetAppStatus(1)", a.Status)
	}
	if err := s.SetAppStatus(ctx, app, 0); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.App(ctx, app); a.Status != 0 {
		t.Fatalf("status %d after SetAppStatus(0)", a.Status)
	}
	wantErr(t, "SetAppStatus unknown", s.SetAppStatus(ctx, store.NewID(), 1), store.ErrNotFound)
}

func testUseNonce(t *testing.T, s store.Store) {
	later := time.Now().Add(time.Minute)
	for _, c := range []struct {
		app, nonce string
		expires    time.Time
		want       bool
	}{
		{"a", "n1", later, true},
		{"a", "n1", later, false}, // a replay
		{"b", "n1", later, true},  // apps are separate
		{"a", "n2", time.Now().Add(-time.Second), true},
		{"a", "n2", later, true}, // an expired nonce may be used again
		{"a", "n2", later, false},
	} {
		got, err := s.UseNonce(ctx, c.app, c.nonce, c.expires)
		if err != nil || got != c.want {
			t.Fatalf("UseNonce(%s, %s) = %v, %v; want %v", c.app, c.nonce, got, err, c.want)
		}
	}
}

// testUseNonceRace: of many requests using one nonce at once, exactly one wins.
func testUseNonceRace(t *testing.T, s store.Store) {
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			ok, err := s.UseNonce(ctx, "app", "same", time.Now().Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d winners; want 1", wins.Load())
	}
}
