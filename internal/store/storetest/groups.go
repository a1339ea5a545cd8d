package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// Group management and profiles (store.GroupStore).

func strp(s string) *string { return &s }

func testGroupInfo(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "alice", "bob")
	g, err := s.GroupInfo(ctx, app, "g")
	if err != nil {
		t.Fatalf("GroupInfo: %v", err)
	}
	if g.ID != c.ID || g.Name != "group g" || g.Notice != "" || g.Extra != nil || g.MuteAll || !g.DismissedAt.IsZero() ||
		g.OwnerID != "" || g.MemberCount != 2 {
		t.Fatalf("GroupInfo = %+v", g)
	}
	_, err = s.GroupInfo(ctx, app, "nope")
	wantErr(t, "GroupInfo unknown", err, store.ErrNotFound)
	_, err = s.GroupInfo(ctx, newApp(t, s), "g")
	wantErr(t, "GroupInfo from another app", err, store.ErrNotFound)

	yes := true
	g, err = s.UpdateGroup(ctx, app, "g", store.GroupUpdate{Notice: strp("hello all"), Extra: json.RawMessage(`{"k":[1,2]}`), MuteAll: &yes})
	if err != nil {
		t.Fatalf("UpdateGroup: %v", err)
	}
	if g.Name != "group g" || g.AvatarURI != "avatar g" || g.Notice != "hello all" || string(g.Extra) != `{"k":[1,2]}` || !g.MuteAll {
		t.Fatalf("after UpdateGroup = %+v", g)
	}
	g, err = s.UpdateGroup(ctx, app, "g", store.GroupUpdate{Name: strp("renamed"), AvatarURI: strp("a2")})
	if err != nil || g.Name != "renamed" || g.AvatarURI != "a2" || g.Notice != "hello all" || !g.MuteAll {
		t.Fatalf("UpdateGroup name = %+v, %v", g, err)
	}
	if ss := session(t, s, c.ID, "bob"); ss.Title != "renamed" || ss.Avatar != "a2" {
		t.Fatalf("session title after rename = %q %q", ss.Title, ss.Avatar)
	}
	_, err = s.UpdateGroup(ctx, app, "nope", store.GroupUpdate{Name: strp("x")})
	wantErr(t, "UpdateGroup unknown", err, store.ErrNotFound)
}

func testGroupRoles(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "alice", "bob", "carol")
	prev, err := s.TransferOwner(ctx, c.ID, "alice")
	if err != nil || prev != "" {
		t.Fatalf("first TransferOwner = %q, %v", prev, err)
	}
	changed, err := s.SetRole(ctx, c.ID, []string{"bob", "alice", "nobody", "bob"}, store.RoleAdmin)
	if err != nil || !slices.Equal(changed, []string{"bob"}) {
		t.Fatalf("SetRole admin = %v, %v; want [bob] (the owner keeps their role)", changed, err)
	}
	if changed, err = s.SetRole(ctx, c.ID, []string{"bob"}, store.RoleAdmin); err != nil || len(changed) != 0 {
		t.Fatalf("SetRole again = %v, %v; want nothing changed", changed, err)
	}
	_, err = s.SetRole(ctx, c.ID, []string{"bob"}, store.RoleOwner)
	wantErr(t, "SetRole owner", err, store.ErrInvalid)

	roles := func() map[string]int {
		ms, err := s.GroupMembers(ctx, c.ID, "", 10)
		if err != nil {
			t.Fatalf("GroupMembers: %v", err)
		}
		out := map[string]int{}
		for _, m := range ms {
			out[m.UserID] = m.Role
		}
		return out
	}
	if r := roles(); r["alice"] != store.RoleOwner || r["bob"] != store.RoleAdmin || r["carol"] != store.RoleMember {
		t.Fatalf("roles = %v", r)
	}
	prev, err = s.TransferOwner(ctx, c.ID, "carol")
	if err != nil || prev != "alice" {
		t.Fatalf("TransferOwner = %q, %v", prev, err)
	}
	if r := roles(); r["alice"] != store.RoleMember || r["bob"] != store.RoleAdmin || r["carol"] != store.RoleOwner {
		t.Fatalf("roles after transfer = %v", r)
	}
	if g, _ := s.GroupInfo(ctx, app, "g"); g.OwnerID != "carol" {
		t.Fatalf("OwnerID = %q", g.OwnerID)
	}
	_, err = s.TransferOwner(ctx, c.ID, "nobody")
	wantErr(t, "TransferOwner to a stranger", err, store.ErrNotMember)
	if prev, err = s.TransferOwner(ctx, c.ID, "carol"); err != nil || prev != "carol" {
		t.Fatalf("TransferOwner to the owner = %q, %v", prev, err)
	}
	st, err := s.MemberState(ctx, c.ID, "bob")
	if err != nil || st.Role != store.RoleAdmin || st.JoinedAt.IsZero() {
		t.Fatalf("MemberState = %+v, %v", st, err)
	}
	_, err = s.MemberState(ctx, c.ID, "nobody")
	wantErr(t, "MemberState of a stranger", err, store.ErrNotMember)
	if changed, err = s.SetRole(ctx, c.ID, []string{"bob"}, store.RoleMember); err != nil || !slices.Equal(changed, []string{"bob"}) {
		t.Fatalf("SetRole member = %v, %v", changed, err)
	}
	// A member removed and added again starts as a plain member.
	s.SetRole(ctx, c.ID, []string{"alice"}, store.RoleAdmin)
	s.RemoveMembers(ctx, app, "g", []string{"alice"})
	s.AddMembers(ctx, app, "g", []string{"alice"})
	if r := roles(); r["alice"] != store.RoleMember {
		t.Fatalf("re-added member role = %d", r["alice"])
	}
}

func testGroupMembersPaged(t *testing.T, s store.Store) {
	app := newApp(t, s)
	users := []string{"u1", "u2", "u3", "u4", "u5"}
	if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "u3", Name: "Three", AvatarURI: "a3"}); err != nil {
		t.Fatal(err)
	}
	c := upsertGroup(t, s, app, "g", users...)
	var got []string
	after := ""
	for {
		page, err := s.GroupMembers(ctx, c.ID, after, 2)
		if err != nil {
			t.Fatalf("GroupMembers: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			got = append(got, m.UserID)
			if m.JoinedAt.IsZero() {
				t.Fatalf("member %s has no join time", m.UserID)
			}
			if m.UserID == "u3" && (m.Name != "Three" || m.AvatarURI != "a3") {
				t.Fatalf("u3 profile = %+v", m)
			}
		}
		after = page[len(page)-1].UserID
	}
	if !slices.Equal(got, users) {
		t.Fatalf("paged members = %v", got)
	}
	if ms, err := s.GroupMembers(ctx, c.ID, "", 0); err != nil || len(ms) != 0 {
		t.Fatalf("limit 0 = %v, %v", ms, err)
	}
}

func testUserGroups(t *testing.T, s store.Store) {
	app := newApp(t, s)
	upsertGroup(t, s, app, "g2", "alice", "bob")
	c1 := upsertGroup(t, s, app, "g1", "alice")
	openPrivate(t, s, app, "alice", "bob")
	s.TransferOwner(ctx, c1.ID, "alice")
	gs, err := s.UserGroups(ctx, app, "alice")
	if err != nil || len(gs) != 2 {
		t.Fatalf("UserGroups = %+v, %v", gs, err)
	}
	if gs[0].Key != "g1" || gs[0].Role != store.RoleOwner || gs[0].OwnerID != "alice" || !store.ValidID(gs[0].SID) ||
		gs[1].Key != "g2" || gs[1].Role != store.RoleMember || gs[1].MemberCount != 2 {
		t.Fatalf("UserGroups = %+v", gs)
	}
	if gs, err := s.UserGroups(ctx, app, "nobody"); err != nil || len(gs) != 0 {
		t.Fatalf("UserGroups of nobody = %+v, %v", gs, err)
	}
	if gs, err := s.UserGroups(ctx, newApp(t, s), "alice"); err != nil || len(gs) != 0 {
		t.Fatalf("UserGroups in another app = %+v, %v", gs, err)
	}
}

func testMuteMembers(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "alice", "bob")
	until := base.Add(time.Hour)
	got, err := s.MuteMembers(ctx, c.ID, []string{"bob", "nobody"}, until)
	if err != nil || !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("MuteMembers = %v, %v", got, err)
	}
	if st, _ := s.MemberState(ctx, c.ID, "bob"); !st.MutedUntil.Equal(until) {
		t.Fatalf("MutedUntil = %v, want %v", st.MutedUntil, until)
	}
	if st, _ := s.MemberState(ctx, c.ID, "alice"); !st.MutedUntil.IsZero() || st.MuteAll {
		t.Fatalf("alice state = %+v", st)
	}
	if _, err := s.MuteMembers(ctx, c.ID, []string{"bob"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.MemberState(ctx, c.ID, "bob"); !st.MutedUntil.IsZero() {
		t.Fatalf("MutedUntil after unmute = %v", st.MutedUntil)
	}
	yes := true
	s.UpdateGroup(ctx, app, "g", store.GroupUpdate{MuteAll: &yes})
	if st, _ := s.MemberState(ctx, c.ID, "bob"); !st.MuteAll {
		t.Fatalf("MuteAll not seen in MemberState")
	}
}

func testAppendNotice(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "alice", "bob")
	send(t, s, c.ID, "alice", 1)
	_, v0, _ := s.Members(ctx, c.ID)
	n, err := s.AppendNotice(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "", Type: store.TypeNotice,
		Content: json.RawMessage(`{"content":"x joined","event":"joined"}`), At: at(2)})
	if err != nil {
		t.Fatalf("AppendNotice: %v", err)
	}
	if n.Seq != 2 || n.MembersVersion != v0 || !store.ValidID(n.ID) || !n.CreatedAt.Equal(at(2)) {
		t.Fatalf("notice = %+v", n)
	}
	// A sender who is not a member (one who just left) is fine for a notice.
	if _, err := s.AppendNotice(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "gone", Type: store.TypeNotice,
		Content: json.RawMessage(`{"content":"gone left"}`), At: at(3)}); err != nil {
		t.Fatalf("AppendNotice by a non-member: %v", err)
	}
	send(t, s, c.ID, "bob", 4)
	h, err := s.After(ctx, c.ID, "alice", 0, 10)
	if err != nil || !slices.Equal(seqs(h), []int64{1, 2, 3, 4}) || h[1].Type != store.TypeNotice ||
		string(h[1].Content) != `{"content":"x joined","event":"joined"}` || h[2].SenderID != "gone" {
		t.Fatalf("After = %+v, %v", h, err)
	}
	if ss := session(t, s, c.ID, "bob"); ss.LastSeq != 4 {
		t.Fatalf("LastSeq = %d", ss.LastSeq)
	}
	_, err = s.AppendNotice(ctx, store.NewMessage{ConversationID: store.NewID(), Type: store.TypeNotice, Content: json.RawMessage(`{}`)})
	wantErr(t, "AppendNotice to no conversation", err, store.ErrNotFound)
}

func testDismissGroup(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "alice", "bob")
	send(t, s, c.ID, "alice", 1)
	_, v0, _ := s.Members(ctx, c.ID)
	gone, err := s.DismissGroup(ctx, app, "g", at(2))
	if err != nil || len(gone) != 2 {
		t.Fatalf("DismissGroup = %+v, %v", gone, err)
	}
	g, err := s.GroupInfo(ctx, app, "g")
	if err != nil || !g.DismissedAt.Equal(at(2)) || g.MemberCount != 0 {
		t.Fatalf("GroupInfo after dismiss = %+v, %v", g, err)
	}
	if ms, v, _ := s.Members(ctx, c.ID); len(ms) != 0 || v <= v0 {
		t.Fatalf("Members after dismiss = %v at %d (was %d)", ms, v, v0)
	}
	if ss, _ := s.Sessions(ctx, app, "bob"); len(ss) != 0 {
		t.Fatalf("bob still has sessions: %+v", ss)
	}
	_, _, err = s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`{}`)})
	wantErr(t, "Send after dismiss", err, store.ErrNotMember)
	// Dismissing again changes nothing and keeps the first time.
	if gone, err := s.DismissGroup(ctx, app, "g", at(5)); err != nil || len(gone) != 0 {
		t.Fatalf("second DismissGroup = %+v, %v", gone, err)
	}
	if g, _ := s.GroupInfo(ctx, app, "g"); !g.DismissedAt.Equal(at(2)) {
		t.Fatalf("DismissedAt moved to %v", g.DismissedAt)
	}
	_, err = s.DismissGroup(ctx, app, "nope", at(1))
	wantErr(t, "DismissGroup unknown", err, store.ErrNotFound)
}

func testProfiles(t *testing.T, s store.Store) {
	app := newApp(t, s)
	if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "alice", Name: "Alice", AvatarURI: "a"}); err != nil {
		t.Fatal(err)
	}
	p, err := s.UpdateProfile(ctx, app, "alice", store.ProfileUpdate{Extra: json.RawMessage(`{"age":3}`)})
	if err != nil || p.Name != "Alice" || p.AvatarURI != "a" || string(p.Extra) != `{"age":3}` {
		t.Fatalf("UpdateProfile extra = %+v, %v", p, err)
	}
	p, err = s.UpdateProfile(ctx, app, "alice", store.ProfileUpdate{Name: strp("Al")})
	if err != nil || p.Name != "Al" || string(p.Extra) != `{"age":3}` {
		t.Fatalf("UpdateProfile name = %+v, %v", p, err)
	}
	if u, _ := s.User(ctx, app, "alice"); u.Name != "Al" {
		t.Fatalf("User name = %q", u.Name)
	}
	_, err = s.UpdateProfile(ctx, app, "nobody", store.ProfileUpdate{Name: strp("x")})
	wantErr(t, "UpdateProfile unknown", err, store.ErrNotFound)
	ps, err := s.Profiles(ctx, app, []string{"alice", "nobody"})
	if err != nil || len(ps) != 1 || ps[0].UserID != "alice" || ps[0].Name != "Al" {
		t.Fatalf("Profiles = %+v, %v", ps, err)
	}
	if ps, _ := s.Profiles(ctx, newApp(t, s), []string{"alice"}); len(ps) != 0 {
		t.Fatalf("Profiles from another app = %+v", ps)
	}
}

func testDeleteUser(t *testing.T, s store.Store) {
	for _, remove := range []bool{false, true} {
		app := newApp(t, s)
		for _, u := range []string{"alice", "bob"} {
			s.UpsertUser(ctx, store.User{AppID: app, UserID: u, Name: u})
		}
		p := openPrivate(t, s, app, "alice", "bob")
		g := upsertGroup(t, s, app, "g", "alice", "bob")
		send(t, s, p.ID, "alice", 1)
		send(t, s, g.ID, "alice", 2)
		send(t, s, g.ID, "bob", 3)
		if ok, err := s.ShareConversation(ctx, app, "bob", "alice"); err != nil || !ok {
			t.Fatalf("ShareConversation = %v, %v", ok, err)
		}
		before, _ := s.User(ctx, app, "alice")
		gone, err := s.DeleteUser(ctx, app, "alice", remove)
		if err != nil || len(gone) != 2 {
			t.Fatalf("DeleteUser = %+v, %v", gone, err)
		}
		_, err = s.User(ctx, app, "alice")
		wantErr(t, "User after delete", err, store.ErrNotFound)
		if ps, _ := s.Profiles(ctx, app, []string{"alice"}); len(ps) != 0 {
			t.Fatalf("deleted user has a profile: %+v", ps)
		}
		if ss, _ := s.Sessions(ctx, app, "alice"); len(ss) != 0 {
			t.Fatalf("deleted user has sessions: %+v", ss)
		}
		if ok, _ := s.ShareConversation(ctx, app, "bob", "alice"); ok {
			t.Fatalf("bob still shares a conversation with a deleted user")
		}
		h, _ := s.After(ctx, g.ID, "bob", 0, 10)
		want := []int64{1, 2}
		if remove {
			want = []int64{2}
		}
		if !slices.Equal(seqs(h), want) {
			t.Fatalf("remove=%v: group history seqs = %v, want %v", remove, seqs(h), want)
		}
		_, err = s.DeleteUser(ctx, app, "nobody", remove)
		wantErr(t, "DeleteUser unknown", err, store.ErrNotFound)
		// Created again, the user is back with a later token version, so
		// the deleted account's tokens stay void.
		again, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "alice", Name: "New"})
		if err != nil || again.TokenVersion <= before.TokenVersion || again.Name != "New" {
			t.Fatalf("user created again = %+v, %v (before: %+v)", again, err, before)
		}
		if u, err := s.User(ctx, app, "alice"); err != nil || u.Name != "New" {
			t.Fatalf("User after re-creation = %+v, %v", u, err)
		}
	}
}
