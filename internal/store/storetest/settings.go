package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// settingsTests cover store.Settings.
var settingsTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"SessionSettings", testSessionSettings},
	{"SessionSettingsHide", testSessionSettingsHide},
	{"Blocks", testBlocks},
	{"LastSeen", testLastSeen},
	{"DeleteUserSettings", testDeleteUserSettings},
}

func ptr[T any](v T) *T { return &v }

func testSessionSettings(t *testing.T, s store.Store) {
	app := newApp(t, s)
	ab := openPrivate(t, s, app, "a", "b")
	g := upsertGroup(t, s, app, "g", "a", "b")
	if got, err := s.SessionSettings(ctx, app, "a"); err != nil || len(got) != 0 {
		t.Fatalf("SessionSettings before any = %v, %v; want none", got, err)
	}
	st, err := s.UpdateSessionSettings(ctx, app, "a", ab.ID, store.SettingsPatch{Pinned: ptr(true), At: at(1)})
	if err != nil {
		t.Fatal(err)
	}
	if !st.PinnedAt.Equal(at(1)) || st.Muted || st.Hidden || st.Draft != "" || !st.UpdatedAt.Equal(at(1)) {
		t.Fatalf("after pin: %+v", st)
	}
	// Fields not in the patch are kept.
	st, err = s.UpdateSessionSettings(ctx, app, "a", ab.ID, store.SettingsPatch{Muted: ptr(true), Draft: ptr("héllo"), At: at(2)})
	if err != nil {
		t.Fatal(err)
	}
	if !st.PinnedAt.Equal(at(1)) || !st.Muted || st.Draft != "héllo" || !st.UpdatedAt.Equal(at(2)) {
		t.Fatalf("after mute and draft: %+v", st)
	}
	if _, err := s.UpdateSessionSettings(ctx, app, "a", g.ID, store.SettingsPatch{Muted: ptr(true), At: at(3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSessionSettings(ctx, app, "b", g.ID, store.SettingsPatch{Pinned: ptr(true), At: at(3)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionSettings(ctx, app, "a")
	if err != nil || len(got) != 2 || !got[ab.ID].Muted || got[ab.ID].Draft != "héllo" || !got[g.ID].Muted || !got[g.ID].PinnedAt.IsZero() {
		t.Fatalf("SessionSettings(a) = %+v, %v", got, err)
	}
	// Unpin, unmute, clear the draft.
	st, err = s.UpdateSessionSettings(ctx, app, "a", ab.ID, store.SettingsPatch{Pinned: ptr(false), Muted: ptr(false), Draft: ptr(""), At: at(4)})
	if err != nil || !st.PinnedAt.IsZero() || st.Muted || st.Draft != "" {
		t.Fatalf("after clearing: %+v, %v", st, err)
	}
	if m, err := s.MutedMembers(ctx, g.ID); err != nil || !slices.Equal(m, []string{"a"}) {
		t.Fatalf("MutedMembers(g) = %v, %v; want [a]", m, err)
	}
	if m, err := s.MutedMembers(ctx, ab.ID); err != nil || len(m) != 0 {
		t.Fatalf("MutedMembers(ab) = %v, %v; want none", m, err)
	}
	// Another app's user of the same name sees nothing of these.
	if got, err := s.SessionSettings(ctx, newApp(t, s), "a"); err != nil || len(got) != 0 {
		t.Fatalf("other app: %v, %v", got, err)
	}
}

func testSessionSettingsHide(t *testing.T, s store.Store) {
	app := newApp(t, s)
	ab := openPrivate(t, s, app, "a", "b")
	// An empty conversation hidden stays hidden until its first message.
	st, err := s.UpdateSessionSettings(ctx, app, "a", ab.ID, store.SettingsPatch{Hide: true, At: at(1)})
	if err != nil || !st.Hidden || st.HiddenSeq != 0 || st.Visible(0) || !st.Visible(1) {
		t.Fatalf("hide empty: %+v, %v", st, err)
	}
	send(t, s, ab.ID, "b", 1)
	send(t, s, ab.ID, "b", 2)
	st, err = s.UpdateSessionSettings(ctx, app, "a", ab.ID, store.SettingsPatch{Hide: true, At: at(2)})
	if err != nil || !st.Hidden || st.HiddenSeq != 2 || st.Visible(2) || !st.Visible(3) {
		t.Fatalf("hide at 2: %+v, %v", st, err)
	}
	// Other changes keep the hide.
	st, err = s.UpdateSessionSettings(ctx, app, "a", ab.ID, store.SettingsPatch{Muted: ptr(true), At: at(3)})
	if err != nil || !st.Hidden || st.HiddenSeq != 2 {
		t.Fatalf("mute after hide: %+v, %v", st, err)
	}
}

func testBlocks(t *testing.T, s store.Store) {
	app := newApp(t, s)
	if got, err := s.Blocked(ctx, app, "a"); err != nil || len(got) != 0 {
		t.Fatalf("Blocked before = %v, %v", got, err)
	}
	if err := s.Block(ctx, app, "a", []string{"c", "b"}, at(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Block(ctx, app, "a", []string{"b", "d"}, at(2)); err != nil { // b again: kept
		t.Fatal(err)
	}
	if got, err := s.Blocked(ctx, app, "a"); err != nil || !slices.Equal(got, []string{"b", "c", "d"}) {
		t.Fatalf("Blocked(a) = %v, %v; want [b c d]", got, err)
	}
	if got, err := s.Blocked(ctx, app, "b"); err != nil || len(got) != 0 {
		t.Fatalf("Blocked(b) = %v, %v; blocking is one way", got, err)
	}
	if err := s.Unblock(ctx, app, "a", []string{"c", "x"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Blocked(ctx, app, "a"); err != nil || !slices.Equal(got, []string{"b", "d"}) {
		t.Fatalf("Blocked(a) after unblock = %v, %v; want [b d]", got, err)
	}
	if got, err := s.Blocked(ctx, newApp(t, s), "a"); err != nil || len(got) != 0 {
		t.Fatalf("other app: %v, %v", got, err)
	}
}

func testLastSeen(t *testing.T, s store.Store) {
	app := newApp(t, s)
	other := newApp(t, s)
	err := s.SaveLastSeen(ctx, []store.LastSeen{
		{AppID: app, UserID: "a", At: at(5)},
		{AppID: app, UserID: "a", At: at(3)}, // the same user twice in a batch: the latest wins
		{AppID: app, UserID: "b", At: at(1)},
		{AppID: other, UserID: "a", At: at(9)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// An earlier time never replaces a later one.
	if err := s.SaveLastSeen(ctx, []store.LastSeen{{AppID: app, UserID: "a", At: at(4)}, {AppID: app, UserID: "b", At: at(2)}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LastSeen(ctx, app, []string{"a", "b", "never"})
	want := map[string]time.Time{"a": at(5), "b": at(2)}
	if err != nil || len(got) != 2 || !got["a"].Equal(want["a"]) || !got["b"].Equal(want["b"]) {
		t.Fatalf("LastSeen = %v, %v; want %v", got, err, want)
	}
	if err := s.SaveLastSeen(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// testDeleteUserSettings: deleting a user deletes their session settings,
// their blocks and the blocks of them, and their last seen time (also one
// saved after the deletion, by their last sockets closing), and no one
// else's.
func testDeleteUserSettings(t *testing.T, s store.Store) {
	app := newApp(t, s)
	for _, u := range []string{"a", "b", "c"} {
		if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: u, Name: u}); err != nil {
			t.Fatal(err)
		}
	}
	ab := openPrivate(t, s, app, "a", "b")
	g := upsertGroup(t, s, app, "g", "a", "b", "c")
	for _, u := range []string{"a", "b"} {
		for _, conv := range []string{ab.ID, g.ID} {
			if _, err := s.UpdateSessionSettings(ctx, app, u, conv, store.SettingsPatch{Pinned: ptr(true), Muted: ptr(true), At: at(1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, b := range [][2]string{{"a", "b"}, {"a", "c"}, {"b", "a"}, {"c", "a"}, {"b", "c"}} {
		if err := s.Block(ctx, app, b[0], []string{b[1]}, at(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveLastSeen(ctx, []store.LastSeen{{AppID: app, UserID: "a", At: at(2)}, {AppID: app, UserID: "b", At: at(2)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteUser(ctx, app, "a", false); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SessionSettings(ctx, app, "a"); err != nil || len(got) != 0 {
		t.Fatalf("deleted user's settings = %v, %v; want none", got, err)
	}
	if got, err := s.SessionSettings(ctx, app, "b"); err != nil || len(got) != 2 {
		t.Fatalf("b's settings = %v, %v; want both kept", got, err)
	}
	if got, err := s.Blocked(ctx, app, "a"); err != nil || len(got) != 0 {
		t.Fatalf("deleted user's blocks = %v, %v; want none", got, err)
	}
	for u, want := range map[string][]string{"b": {"c"}, "c": nil} {
		if got, err := s.Blocked(ctx, app, u); err != nil || !slices.Equal(got, want) {
			t.Fatalf("Blocked(%s) = %v, %v; want %v (the deleted user's rows gone, others kept)", u, got, err, want)
		}
	}
	// The last sockets of the deleted user close after the deletion.
	if err := s.SaveLastSeen(ctx, []store.LastSeen{{AppID: app, UserID: "a", At: at(3)}, {AppID: app, UserID: "c", At: at(3)}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LastSeen(ctx, app, []string{"a", "b", "c"})
	if err != nil || len(got) != 2 || !got["b"].Equal(at(2)) || !got["c"].Equal(at(3)) {
		t.Fatalf("LastSeen = %v, %v; want b and c only", got, err)
	}
	// Created again, the user's times are kept again.
	if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveLastSeen(ctx, []store.LastSeen{{AppID: app, UserID: "a", At: at(4)}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LastSeen(ctx, app, []string{"a"}); err != nil || !got["a"].Equal(at(4)) {
		t.Fatalf("LastSeen after re-creation = %v, %v", got, err)
	}
}
