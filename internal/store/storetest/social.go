package storetest

import (
	"slices"
	"testing"

	"github.com/chatd/chatd/internal/store"
)

var socialTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"PeerReadSeqs", testPeerReadSeqs},
	{"MessageReaders", testMessageReaders},
	{"SharedWith", testSharedWith},
}

func testPeerReadSeqs(t *testing.T, s store.Store) {
	app := newApp(t, s)
	ab := openPrivate(t, s, app, "a", "b")
	ac := openPrivate(t, s, app, "a", "c")
	g := upsertGroup(t, s, app, "g", "a", "b")
	other := newApp(t, s)
	openPrivate(t, s, other, "a", "b")
	for i := range 3 {
		send(t, s, ab.ID, "a", i)
	}
	send(t, s, g.ID, "a", 9)
	if _, err := s.MarkRead(ctx, ab.ID, "b", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRead(ctx, g.ID, "b", -1); err != nil {
		t.Fatal(err)
	}
	got, err := s.PeerReadSeqs(ctx, app, "a")
	if err != nil {
		t.Fatalf("PeerReadSeqs: %v", err)
	}
	// Groups are not listed; an unread private conversation is, at 0.
	if len(got) != 2 || got[ab.ID] != 2 || got[ac.ID] != 0 {
		t.Fatalf("PeerReadSeqs(a) = %v; want %s:2 %s:0", got, ab.ID, ac.ID)
	}
	// A sender has read what they sent.
	if got, err := s.PeerReadSeqs(ctx, app, "b"); err != nil || len(got) != 1 || got[ab.ID] != 3 {
		t.Fatalf("PeerReadSeqs(b) = %v, %v; want %s:3", got, err, ab.ID)
	}
	if got, err := s.PeerReadSeqs(ctx, app, "nobody"); err != nil || len(got) != 0 {
		t.Fatalf("PeerReadSeqs(nobody) = %v, %v", got, err)
	}
}

func testMessageReaders(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "a", "b", "c")
	m1 := send(t, s, g.ID, "a", 1)
	// d joins after m1: it cannot see it, so it is not in its audience.
	if err := s.AddMembers(ctx, app, "g", []string{"d"}); err != nil {
		t.Fatal(err)
	}
	m2 := send(t, s, g.ID, "a", 2)
	for _, u := range []string{"b", "d"} {
		if _, err := s.MarkRead(ctx, g.ID, u, -1); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(ms []store.Member) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.UserID)
		}
		return out
	}
	tests := []struct {
		seq      int64
		sender   string
		readers  []string
		audience int
	}{
		{m1.Seq, "a", []string{"b"}, 2},
		{m2.Seq, "a", []string{"b", "d"}, 3},
		{m2.Seq, "b", []string{"a", "d"}, 3}, // as if b had sent it: never its own reader
	}
	for _, tt := range tests {
		r, n, err := s.MessageReaders(ctx, g.ID, tt.seq, tt.sender)
		if err != nil || !slices.Equal(ids(r), tt.readers) || n != tt.audience {
			t.Fatalf("MessageReaders(%d, %s) = %v, %d, %v; want %v, %d", tt.seq, tt.sender, ids(r), n, err, tt.readers, tt.audience)
		}
	}
	if err := s.SetMembersFullHistory(ctx, app, "g", []string{"d"}, true); err != nil {
		t.Fatal(err)
	}
	if _, n, err := s.MessageReaders(ctx, g.ID, m1.Seq, "a"); err != nil || n != 3 {
		t.Fatalf("with full history d sees m1: audience %d, %v; want 3", n, err)
	}
}

func testSharedWith(t *testing.T, s store.Store) {
	app := newApp(t, s)
	openPrivate(t, s, app, "a", "b")
	upsertGroup(t, s, app, "g", "a", "c")
	upsertGroup(t, s, app, "h", "x", "y")
	other := newApp(t, s)
	openPrivate(t, s, other, "a", "x")
	got, err := s.SharedWith(ctx, app, "a", []string{"b", "c", "x", "y", "nobody"})
	if err != nil || !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("SharedWith(a) = %v, %v; want [b c]", got, err)
	}
	if got, err := s.SharedWith(ctx, app, "a", nil); err != nil || len(got) != 0 {
		t.Fatalf("SharedWith(a, none) = %v, %v", got, err)
	}
	if err := s.RemoveMembers(ctx, app, "g", []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SharedWith(ctx, app, "a", []string{"c"}); err != nil || len(got) != 0 {
		t.Fatalf("after c left g: SharedWith(a, c) = %v, %v; want none", got, err)
	}
}
