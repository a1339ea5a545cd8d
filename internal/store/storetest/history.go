package storetest

import (
	"reflect"
	"testing"

	"github.com/chatd/chatd/internal/store"
)

// historyTests cover what the history read path relies on beyond History
// and After (docs/benchmarks.md, History).
var historyTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"MemberHidMessages", testMemberHidMessages},
	{"SessionBySID", testSessionBySID},
	{"MessageSeq", testMessageSeq},
}

// CursorReader is implemented by both backends (see store.CursorReader): it
// answers MessageByID's seq, and ErrNotFound for an unknown id or the id of
// another conversation's message.
func testMessageSeq(t *testing.T, s store.Store) {
	cr, ok := s.(store.CursorReader)
	if !ok {
		t.Skip("the store does not implement store.CursorReader")
	}
	app, c, msgs := seed(t, s, 4)
	for _, m := range msgs {
		got, err := cr.MessageSeq(ctx, c.ID, m.ID)
		if err != nil || got != m.Seq {
			t.Fatalf("MessageSeq(%s) = %d, %v; want %d", m.ID, got, err, m.Seq)
		}
	}
	other := openPrivate(t, s, app, "alice", "carol")
	elsewhere := send(t, s, other.ID, "alice", 1)
	for _, tc := range []struct{ conv, id string }{
		{c.ID, store.NewID()}, {c.ID, elsewhere.ID}, {other.ID, msgs[0].ID},
	} {
		_, err := cr.MessageSeq(ctx, tc.conv, tc.id)
		wantErr(t, "MessageSeq("+tc.id+")", err, store.ErrNotFound)
	}
}

// SessionReader is implemented by both backends (see store.SessionReader):
// it answers what MemberBySID and Conversation answer, or ErrNotFound for
// another user's, another app's or an unknown sid.
func testSessionBySID(t *testing.T, s store.Store) {
	sr, ok := s.(store.SessionReader)
	if !ok {
		t.Skip("the store does not implement store.SessionReader")
	}
	app, c, _ := seed(t, s, 3)
	m, err := s.Member(ctx, c.ID, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Hide(ctx, c.ID, "bob", 1, 1); err != nil {
		t.Fatal(err)
	}
	wantM, err := s.MemberBySID(ctx, app, "bob", m.SID)
	if err != nil {
		t.Fatal(err)
	}
	wantC, err := s.Conversation(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	gotC, gotM, err := sr.SessionBySID(ctx, app, "bob", m.SID)
	if err != nil || !reflect.DeepEqual(gotC, wantC) || !reflect.DeepEqual(gotM, wantM) {
		t.Fatalf("SessionBySID = %+v, %+v, %v; want %+v, %+v", gotC, gotM, err, wantC, wantM)
	}
	if gotC.ChangeSeq == 0 || gotC.LastSeq != 3 || !gotM.HidMessages {
		t.Fatalf("SessionBySID: change seq %d, last seq %d, hid %v", gotC.ChangeSeq, gotC.LastSeq, gotM.HidMessages)
	}
	other := newApp(t, s)
	for _, tc := range []struct{ app, user, sid string }{
		{app, "alice", m.SID}, {other, "bob", m.SID}, {app, "bob", store.NewID()},
	} {
		_, _, err := sr.SessionBySID(ctx, tc.app, tc.user, tc.sid)
		wantErr(t, "SessionBySID("+tc.user+")", err, store.ErrNotFound)
	}
}

// Member.HidMessages is false until the member hides something, true
// after, and still true when they leave the group and join it again (their
// hidden ranges are still there); another member's flag is untouched.
func testMemberHidMessages(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c, err := s.UpsertGroup(ctx, app, "g", "G", "", []string{"alice", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		send(t, s, c.ID, "alice", i)
	}
	hid := func(user string) bool {
		t.Helper()
		m, err := s.Member(ctx, c.ID, user)
		if err != nil {
			t.Fatal(err)
		}
		bySID, err := s.MemberBySID(ctx, app, user, m.SID)
		if err != nil || bySID.HidMessages != m.HidMessages {
			t.Fatalf("MemberBySID(%s) = %+v, %v; Member = %+v", user, bySID, err, m)
		}
		return m.HidMessages
	}
	if hid("alice") || hid("bob") {
		t.Fatal("a new member has hidden messages")
	}
	if _, err := s.Hide(ctx, c.ID, "bob", 2, 2); err != nil {
		t.Fatal(err)
	}
	if !hid("bob") || hid("alice") {
		t.Fatalf("after bob hid one message: bob %v, alice %v", hid("bob"), hid("alice"))
	}
	if err := s.RemoveMembers(ctx, app, "g", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMembers(ctx, app, "g", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	if !hid("bob") {
		t.Fatal("bob joined again: his hidden ranges are still there, but the flag is not set")
	}
}
