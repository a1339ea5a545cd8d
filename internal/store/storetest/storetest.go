// Package storetest is the conformance suite every chatd store backend must
// pass. A backend's test calls Run with a function that opens a fresh, empty
// store.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// Run runs every conformance test against stores made by open, which must
// return a fresh, empty store for each subtest and register its own cleanup.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Apps", testApps},
		{"Users", testUsers},
		{"UsersPerApp", testUsersPerApp},
		{"OpenPrivate", testOpenPrivate},
		{"OpenPrivateSelf", testOpenPrivateSelf},
		{"OpenPrivateConcurrent", testOpenPrivateConcurrent},
		{"UpsertGroup", testUpsertGroup},
		{"GroupMembership", testGroupMembership},
		{"GroupUnknown", testGroupUnknown},
		{"ConversationByKey", testConversationByKey},
		{"AppsIsolated", testAppsIsolated},
		{"Send", testSend},
		{"SendNotMember", testSendNotMember},
		{"SendDuplicate", testSendDuplicate},
		{"SendContentExact", testSendContentExact},
		{"SendConcurrent", testSendConcurrent},
		{"SendConcurrentDuplicates", testSendConcurrentDuplicates},
		{"SendConcurrentConversations", testSendConcurrentConversations},
		{"SendConcurrentMixed", testSendConcurrentMixed},
		{"MarkReadConcurrent", testMarkReadConcurrent},
		{"GroupDuplicateUsers", testGroupDuplicateUsers},
		{"Sessions", testSessions},
		{"SessionsEmpty", testSessionsEmpty},
		{"Session", testSession},
		{"MemberBySID", testMemberBySID},
		{"Members", testMembers},
		{"MembersVersion", testMembersVersion},
		{"MembersVersionPrivate", testMembersVersionPrivate},
		{"MembersVersionDuplicate", testMembersVersionDuplicate},
		{"MembersVersionConcurrent", testMembersVersionConcurrent},
		{"History", testHistory},
		{"HistoryPaging", testHistoryPaging},
		{"After", testAfter},
		{"MessageByID", testMessageByID},
		{"MarkRead", testMarkRead},
		{"Files", testFiles},
		{"FileUsage", testFileUsage},
		{"FileQuotaConcurrent", testFileQuotaConcurrent},
		{"Ping", testPing},
		{"Visibility", testVisibility},
		{"VisibilitySessions", testVisibilitySessions},
		{"FullHistory", testFullHistory},
		{"AppSignRoute", testAppSignRoute},
		{"UseNonce", testUseNonce},
		{"UseNonceRace", testUseNonceRace},
		// Group management and profiles (groups.go).
		{"GroupInfo", testGroupInfo},
		{"GroupRoles", testGroupRoles},
		{"GroupMembersPaged", testGroupMembersPaged},
		{"UserGroups", testUserGroups},
		{"MuteMembers", testMuteMembers},
		{"AppendNotice", testAppendNotice},
		{"DismissGroup", testDismissGroup},
		{"Profiles", testProfiles},
		{"DeleteUser", testDeleteUser},
	}
	tests = append(tests, lifecycleTests...)
	tests = append(tests, historyTests...)
	tests = append(tests, searchTests...)
	tests = append(tests, socialTests...)
	tests = append(tests, settingsTests...)
	tests = append(tests, webhookTests...)
	// Each test has a store of its own: they run in parallel.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

// base is a fixed, millisecond-aligned time so stored times compare exactly.
var base = time.UnixMilli(1_700_000_000_000)

func at(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }

func newApp(t *testing.T, s store.Store) string {
	t.Helper()
	id := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: id, Name: "app " + id, Secret: "secret", CreatedAt: base}); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	return id
}

func openPrivate(t *testing.T, s store.Store, app, a, b string) store.Conversation {
	t.Helper()
	c, err := s.OpenPrivate(ctx, app, a, b)
	if err != nil {
		t.Fatalf("OpenPrivate(%q, %q): %v", a, b, err)
	}
	return c
}

func upsertGroup(t *testing.T, s store.Store, app, group string, users ...string) store.Conversation {
	t.Helper()
	c, err := s.UpsertGroup(ctx, app, group, "group "+group, "avatar "+group, users)
	if err != nil {
		t.Fatalf("UpsertGroup(%q): %v", group, err)
	}
	return c
}

func send(t *testing.T, s store.Store, conv, sender string, i int) store.Message {
	t.Helper()
	m, dup, err := s.Send(ctx, store.NewMessage{
		ConversationID: conv, SenderID: sender, Type: 1,
		Content: json.RawMessage(fmt.Sprintf(`{"text":"m%d"}`, i)), At: at(i),
	})
	if err != nil {
		t.Fatalf("Send(%s by %s): %v", conv, sender, err)
	}
	if dup {
		t.Fatalf("Send(%s by %s): dup without a client id", conv, sender)
	}
	return m
}

func conv(t *testing.T, s store.Store, id string) store.Conversation {
	t.Helper()
	c, err := s.Conversation(ctx, id)
	if err != nil {
		t.Fatalf("Conversation(%s): %v", id, err)
	}
	return c
}

func member(t *testing.T, s store.Store, convID, user string) store.Member {
	t.Helper()
	m, err := s.Member(ctx, convID, user)
	if err != nil {
		t.Fatalf("Member(%s, %s): %v", convID, user, err)
	}
	return m
}

func session(t *testing.T, s store.Store, convID, user string) store.SessionRow {
	t.Helper()
	ss, err := s.Session(ctx, convID, user)
	if err != nil {
		t.Fatalf("Session(%s, %s): %v", convID, user, err)
	}
	return ss
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func seqs(ms []store.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func seqRange(from, to int64) []int64 { // inclusive, either direction
	var out []int64
	if from <= to {
		for i := from; i <= to; i++ {
			out = append(out, i)
		}
	} else {
		for i := from; i >= to; i-- {
			out = append(out, i)
		}
	}
	return out
}

// ---- apps and users ----

func testApps(t *testing.T, s store.Store) {
	a := store.App{ID: store.NewID(), Name: "demo", Description: "a demo app", Secret: "s3cret", Status: 1, CreatedAt: base}
	if err := s.CreateApp(ctx, a); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	got, err := s.App(ctx, a.ID)
	if err != nil {
		t.Fatalf("App: %v", err)
	}
	if got.ID != a.ID || got.Name != a.Name || got.Description != a.Description || got.Secret != a.Secret ||
		got.Status != a.Status || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("App = %+v, want %+v", got, a)
	}
	dup := a
	dup.Name = "other"
	wantErr(t, "CreateApp duplicate", s.CreateApp(ctx, dup), store.ErrExists)
	if got, _ := s.App(ctx, a.ID); got.Name != "demo" {
		t.Fatalf("duplicate CreateApp changed the app: %+v", got)
	}
	_, err = s.App(ctx, store.NewID())
	wantErr(t, "App unknown", err, store.ErrNotFound)

	// Without CreatedAt the backend stamps the time.
	b := store.App{ID: store.NewID(), Name: "b", Secret: "x"}
	if err := s.CreateApp(ctx, b); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	if got, err := s.App(ctx, b.ID); err != nil || got.CreatedAt.IsZero() {
		t.Fatalf("App(b) = %+v, %v; want a creation time", got, err)
	}
}

func testUsers(t *testing.T, s store.Store) {
	app := newApp(t, s)
	u, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "alice", Name: "Alice", AvatarURI: "a.png"})
	if err != nil {
		t.Fatalf("UpsertUser: %v", err)
	}
	if u.AppID != app || u.UserID != "alice" || u.Name != "Alice" || u.AvatarURI != "a.png" || u.TokenVersion != 0 || u.CreatedAt.IsZero() {
		t.Fatalf("UpsertUser = %+v", u)
	}
	v, err := s.BumpTokenVersion(ctx, app, "alice")
	if err != nil || v != 1 {
		t.Fatalf("BumpTokenVersion = %d, %v; want 1", v, err)
	}
	v, err = s.BumpTokenVersion(ctx, app, "alice")
	if err != nil || v != 2 {
		t.Fatalf("BumpTokenVersion = %d, %v; want 2", v, err)
	}
	u2, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "alice", Name: "Alice B", AvatarURI: "b.png"})
	if err != nil {
		t.Fatalf("UpsertUser again: %v", err)
	}
	if u2.Name != "Alice B" || u2.AvatarURI != "b.png" || u2.TokenVersion != 2 || !u2.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("UpsertUser again = %+v; want new name/avatar, token version 2, created %v", u2, u.CreatedAt)
	}
	got, err := s.User(ctx, app, "alice")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if got.Name != "Alice B" || got.AvatarURI != "b.png" || got.TokenVersion != 2 {
		t.Fatalf("User = %+v", got)
	}
	_, err = s.User(ctx, app, "nobody")
	wantErr(t, "User unknown", err, store.ErrNotFound)
	_, err = s.BumpTokenVersion(ctx, app, "nobody")
	wantErr(t, "BumpTokenVersion unknown", err, store.ErrNotFound)
	if _, err := s.User(ctx, app, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("BumpTokenVersion of an unknown user created it: %v", err)
	}
}

func testUsersPerApp(t *testing.T, s store.Store) {
	app1, app2 := newApp(t, s), newApp(t, s)
	if _, err := s.UpsertUser(ctx, store.User{AppID: app1, UserID: "u", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertUser(ctx, store.User{AppID: app2, UserID: "u", Name: "two"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BumpTokenVersion(ctx, app1, "u"); err != nil {
		t.Fatal(err)
	}
	u1, err1 := s.User(ctx, app1, "u")
	u2, err2 := s.User(ctx, app2, "u")
	if err1 != nil || err2 != nil {
		t.Fatalf("User: %v, %v", err1, err2)
	}
	if u1.Name != "one" || u1.TokenVersion != 1 || u2.Name != "two" || u2.TokenVersion != 0 {
		t.Fatalf("users of two apps mixed up: %+v, %+v", u1, u2)
	}
}

// ---- conversations ----

func testOpenPrivate(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := openPrivate(t, s, app, "bob", "alice")
	if !store.ValidID(c.ID) || c.AppID != app || c.Type != store.Private || c.Key != store.PrivateKey("alice", "bob") ||
		c.LastSeq != 0 || !c.LastMsgAt.IsZero() || c.CreatedAt.IsZero() {
		t.Fatalf("OpenPrivate = %+v", c)
	}
	again := openPrivate(t, s, app, "bob", "alice")
	reverse := openPrivate(t, s, app, "alice", "bob")
	if again.ID != c.ID || reverse.ID != c.ID {
		t.Fatalf("OpenPrivate ids %s, %s, %s; want one conversation", c.ID, again.ID, reverse.ID)
	}
	a, b := member(t, s, c.ID, "alice"), member(t, s, c.ID, "bob")
	if !store.ValidID(a.SID) || !store.ValidID(b.SID) || a.SID == b.SID {
		t.Fatalf("sids %q, %q; want two distinct 24-hex ids", a.SID, b.SID)
	}
	if a.AppID != app || a.ConversationID != c.ID || a.ReadSeq != 0 {
		t.Fatalf("member = %+v", a)
	}
	if again := member(t, s, c.ID, "alice"); again.SID != a.SID {
		t.Fatalf("reopening changed the sid: %s → %s", a.SID, again.SID)
	}
	ms, _, err := s.Members(ctx, c.ID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("Members = %+v, %v; want 2", ms, err)
	}
	_, err = s.Member(ctx, c.ID, "carol")
	wantErr(t, "Member of a stranger", err, store.ErrNotMember)
	other := openPrivate(t, s, app, "alice", "carol")
	if other.ID == c.ID {
		t.Fatal("different pairs share a conversation")
	}
}

func testOpenPrivateSelf(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := openPrivate(t, s, app, "alice", "alice")
	if c.Key != store.PrivateKey("alice", "alice") {
		t.Fatalf("key = %q", c.Key)
	}
	ms, _, err := s.Members(ctx, c.ID)
	if err != nil || len(ms) != 1 || ms[0].UserID != "alice" {
		t.Fatalf("Members of a conversation with oneself = %+v, %v; want exactly alice", ms, err)
	}
	if again := openPrivate(t, s, app, "alice", "alice"); again.ID != c.ID {
		t.Fatal("OpenPrivate with oneself is not idempotent")
	}
	ss, err := s.Sessions(ctx, app, "alice")
	if err != nil || len(ss) != 1 {
		t.Fatalf("Sessions = %+v, %v; want one session", ss, err)
	}
	if ss[0].TargetID != "alice" {
		t.Fatalf("TargetID = %q, want alice", ss[0].TargetID)
	}
	m := send(t, s, c.ID, "alice", 1)
	if m.Seq != 1 {
		t.Fatalf("seq = %d", m.Seq)
	}
	if ss := session(t, s, c.ID, "alice"); ss.Unread() != 0 {
		t.Fatalf("unread = %d, want 0", ss.Unread())
	}
}

func testOpenPrivateConcurrent(t *testing.T, s store.Store) {
	app := newApp(t, s)
	const iterations = 20
	for i := range iterations {
		a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		var ids [2]string
		var errs [2]error
		var wg sync.WaitGroup
		for g := range 2 {
			wg.Go(func() {
				x, y := a, b
				if g == 1 {
					x, y = b, a
				}
				c, err := s.OpenPrivate(ctx, app, x, y)
				ids[g], errs[g] = c.ID, err
			})
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("iteration %d: OpenPrivate: %v, %v", i, errs[0], errs[1])
		}
		if ids[0] != ids[1] {
			t.Fatalf("iteration %d: concurrent OpenPrivate made two conversations %s, %s", i, ids[0], ids[1])
		}
		ms, _, err := s.Members(ctx, ids[0])
		if err != nil || len(ms) != 2 {
			t.Fatalf("iteration %d: Members = %+v, %v", i, ms, err)
		}
		for _, u := range []string{a, b} {
			if ss, err := s.Sessions(ctx, app, u); err != nil || len(ss) != 1 {
				t.Fatalf("iteration %d: Sessions(%s) = %d, %v; want 1", i, u, len(ss), err)
			}
		}
	}
}

func testUpsertGroup(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c, err := s.UpsertGroup(ctx, app, "g1", "Group", "g.png", []string{"alice", "bob"})
	if err != nil {
		t.Fatalf("UpsertGroup: %v", err)
	}
	if !store.ValidID(c.ID) || c.AppID != app || c.Type != store.Group || c.Key != "g1" || c.Name != "Group" || c.AvatarURI != "g.png" {
		t.Fatalf("UpsertGroup = %+v", c)
	}
	alice := member(t, s, c.ID, "alice")
	send(t, s, c.ID, "alice", 1)
	send(t, s, c.ID, "bob", 2)
	alice = member(t, s, c.ID, "alice")
	bob := member(t, s, c.ID, "bob")

	c2, err := s.UpsertGroup(ctx, app, "g1", "Renamed", "r.png", []string{"alice", "carol"})
	if err != nil {
		t.Fatalf("UpsertGroup again: %v", err)
	}
	if c2.ID != c.ID || c2.Name != "Renamed" || c2.AvatarURI != "r.png" {
		t.Fatalf("UpsertGroup again = %+v; want same id, new name and avatar", c2)
	}
	if got := conv(t, s, c.ID); got.Name != "Renamed" || got.AvatarURI != "r.png" || got.LastSeq != 2 {
		t.Fatalf("Conversation = %+v", got)
	}
	if got := member(t, s, c.ID, "alice"); got.SID != alice.SID || got.ReadSeq != alice.ReadSeq {
		t.Fatalf("upsert touched an existing member: %+v → %+v", alice, got)
	}
	if got := member(t, s, c.ID, "bob"); got.SID != bob.SID || got.ReadSeq != bob.ReadSeq {
		t.Fatalf("upsert dropped or touched a member not in the list: %+v → %+v", bob, got)
	}
	carol := member(t, s, c.ID, "carol")
	if !store.ValidID(carol.SID) || carol.SID == alice.SID || carol.SID == bob.SID {
		t.Fatalf("carol's sid = %q", carol.SID)
	}
	ms, _, err := s.Members(ctx, c.ID)
	if err != nil || len(ms) != 3 {
		t.Fatalf("Members = %+v, %v; want 3", ms, err)
	}
	// Members need not exist as users and the group may start empty.
	if _, err := s.UpsertGroup(ctx, app, "empty", "", "", nil); err != nil {
		t.Fatalf("UpsertGroup without members: %v", err)
	}
}

func testGroupMembership(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "alice")
	if err := s.AddMembers(ctx, app, "g", []string{"bob", "carol", "alice"}); err != nil {
		t.Fatalf("AddMembers: %v", err)
	}
	bob := member(t, s, c.ID, "bob")
	send(t, s, c.ID, "bob", 1)

	if err := s.RemoveMembers(ctx, app, "g", []string{"bob", "nobody"}); err != nil {
		t.Fatalf("RemoveMembers: %v", err)
	}
	_, err := s.Member(ctx, c.ID, "bob")
	wantErr(t, "Member after removal", err, store.ErrNotMember)
	_, err = s.Session(ctx, c.ID, "bob")
	wantErr(t, "Session after removal", err, store.ErrNotMember)
	_, err = s.MemberBySID(ctx, app, "bob", bob.SID)
	wantErr(t, "MemberBySID after removal", err, store.ErrNotFound)
	if ss, err := s.Sessions(ctx, app, "bob"); err != nil || len(ss) != 0 {
		t.Fatalf("Sessions after removal = %+v, %v; want none", ss, err)
	}
	_, _, err = s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "bob", Type: 1, Content: json.RawMessage(`"x"`)})
	wantErr(t, "Send by a removed member", err, store.ErrNotMember)
	if got := conv(t, s, c.ID); got.LastSeq != 1 {
		t.Fatalf("LastSeq = %d after a rejected send, want 1", got.LastSeq)
	}
	ms, _, err := s.Members(ctx, c.ID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("Members = %+v, %v; want alice and carol", ms, err)
	}

	if err := s.AddMembers(ctx, app, "g", []string{"bob"}); err != nil {
		t.Fatalf("AddMembers again: %v", err)
	}
	back := member(t, s, c.ID, "bob")
	if !store.ValidID(back.SID) {
		t.Fatalf("re-added sid = %q", back.SID)
	}
	if ss, err := s.Sessions(ctx, app, "bob"); err != nil || len(ss) != 1 || ss[0].SID != back.SID {
		t.Fatalf("Sessions after re-adding = %+v, %v", ss, err)
	}
	send(t, s, c.ID, "bob", 2)
}

func testGroupUnknown(t *testing.T, s store.Store) {
	app := newApp(t, s)
	wantErr(t, "AddMembers unknown group", s.AddMembers(ctx, app, "nope", []string{"a"}), store.ErrNotFound)
	wantErr(t, "RemoveMembers unknown group", s.RemoveMembers(ctx, app, "nope", []string{"a"}), store.ErrNotFound)
	// A private conversation is not a group.
	p := openPrivate(t, s, app, "a", "b")
	wantErr(t, "AddMembers to a private key", s.AddMembers(ctx, app, p.Key, []string{"c"}), store.ErrNotFound)
	_, err := s.Conversation(ctx, store.NewID())
	wantErr(t, "Conversation unknown", err, store.ErrNotFound)
}

func testConversationByKey(t *testing.T, s store.Store) {
	app := newApp(t, s)
	p := openPrivate(t, s, app, "alice", "bob")
	g := upsertGroup(t, s, app, "g", "alice")
	for _, tc := range []struct {
		typ  int
		key  string
		want string
	}{
		{store.Private, store.PrivateKey("alice", "bob"), p.ID},
		{store.Private, store.PrivateKey("bob", "alice"), p.ID},
		{store.Group, "g", g.ID},
		{store.Group, store.PrivateKey("alice", "bob"), ""},
		{store.Private, "g", ""},
		{store.Group, "other", ""},
		{store.Private, store.PrivateKey("alice", "carol"), ""},
	} {
		c, err := s.ConversationByKey(ctx, app, tc.typ, tc.key)
		if tc.want == "" {
			wantErr(t, fmt.Sprintf("ConversationByKey(%d, %q)", tc.typ, tc.key), err, store.ErrNotFound)
			continue
		}
		if err != nil || c.ID != tc.want {
			t.Fatalf("ConversationByKey(%d, %q) = %s, %v; want %s", tc.typ, tc.key, c.ID, err, tc.want)
		}
	}
	if _, err := s.ConversationByKey(ctx, app, store.Private, store.PrivateKey("alice", "carol")); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("ConversationByKey created a conversation")
	}
}

func testAppsIsolated(t *testing.T, s store.Store) {
	app1, app2 := newApp(t, s), newApp(t, s)
	g1 := upsertGroup(t, s, app1, "g", "alice")
	g2 := upsertGroup(t, s, app2, "g", "alice")
	p1 := openPrivate(t, s, app1, "alice", "bob")
	p2 := openPrivate(t, s, app2, "alice", "bob")
	if g1.ID == g2.ID || p1.ID == p2.ID {
		t.Fatal("two apps share a conversation")
	}
	send(t, s, g1.ID, "alice", 1)
	if got := conv(t, s, g2.ID); got.LastSeq != 0 {
		t.Fatalf("a send in app1 moved app2's group to seq %d", got.LastSeq)
	}
	_, err := s.ConversationByKey(ctx, app2, store.Group, "missing")
	wantErr(t, "ConversationByKey other app", err, store.ErrNotFound)
	if err := s.RemoveMembers(ctx, app2, "g", []string{"alice"}); err != nil {
		t.Fatal(err)
	}
	member(t, s, g1.ID, "alice")
	ss1, err := s.Sessions(ctx, app1, "alice")
	if err != nil || len(ss1) != 2 {
		t.Fatalf("Sessions app1 = %d, %v; want 2", len(ss1), err)
	}
	ss2, err := s.Sessions(ctx, app2, "alice")
	if err != nil || len(ss2) != 1 || ss2[0].ConversationID != p2.ID {
		t.Fatalf("Sessions app2 = %+v, %v; want only the private one", ss2, err)
	}
	m := member(t, s, p1.ID, "alice")
	_, err = s.MemberBySID(ctx, app2, "alice", m.SID)
	wantErr(t, "MemberBySID from another app", err, store.ErrNotFound)
}

// ---- send ----

func testSend(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "alice", "bob", "carol")
	var ids []string
	for i := 1; i <= 5; i++ {
		sender := "alice"
		if i == 4 {
			sender = "bob"
		}
		m := send(t, s, c.ID, sender, i)
		if m.Seq != int64(i) {
			t.Fatalf("message %d got seq %d", i, m.Seq)
		}
		if !store.ValidID(m.ID) || slices.Contains(ids, m.ID) {
			t.Fatalf("msg id %q is not a fresh 24-hex id", m.ID)
		}
		ids = append(ids, m.ID)
		if m.ConversationID != c.ID || m.SenderID != sender || m.Type != 1 || !m.CreatedAt.Equal(at(i)) || m.ClientMsgID != "" {
			t.Fatalf("Send = %+v", m)
		}
		if want := fmt.Sprintf(`{"text":"m%d"}`, i); string(m.Content) != want {
			t.Fatalf("content = %s, want %s", m.Content, want)
		}
	}
	got := conv(t, s, c.ID)
	if got.LastSeq != 5 || !got.LastMsgAt.Equal(at(5)) {
		t.Fatalf("Conversation = %+v; want last_seq 5 at %v", got, at(5))
	}
	for _, tc := range []struct {
		user   string
		read   int64
		unread int64
	}{
		{"alice", 5, 0}, // her own messages are read
		{"bob", 4, 1},
		{"carol", 0, 5},
	} {
		ss := session(t, s, c.ID, tc.user)
		if ss.ReadSeq != tc.read || ss.Unread() != tc.unread || ss.LastSeq != 5 {
			t.Fatalf("%s: read %d unread %d last %d; want read %d unread %d", tc.user, ss.ReadSeq, ss.Unread(), ss.LastSeq, tc.read, tc.unread)
		}
	}
	// Without At the backend stamps the time.
	m, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "carol", Type: 2, Content: json.RawMessage(`1`)})
	if err != nil || m.Seq != 6 || m.CreatedAt.IsZero() {
		t.Fatalf("Send without At = %+v, %v", m, err)
	}
	// A message stamped earlier (a skewed clock) keeps its time but does not
	// move the conversation back in the session list.
	before := conv(t, s, c.ID).LastMsgAt
	old := send(t, s, c.ID, "bob", 0)
	if !old.CreatedAt.Equal(at(0)) || old.Seq != 7 {
		t.Fatalf("Send at an earlier time = %+v", old)
	}
	if got := conv(t, s, c.ID); got.LastSeq != 7 || got.LastMsgAt.Before(before) {
		t.Fatalf("Conversation = %+v; LastMsgAt moved back from %v", got, before)
	}
}

func testSendNotMember(t *testing.T, s store.Store) {
	app := newApp(t, s)
	p := openPrivate(t, s, app, "alice", "bob")
	send(t, s, p.ID, "alice", 1)
	for _, tc := range []struct{ conv, sender string }{
		{p.ID, "carol"},
		{p.ID, ""},
		{store.NewID(), "alice"},
	} {
		_, _, err := s.Send(ctx, store.NewMessage{ConversationID: tc.conv, SenderID: tc.sender, Type: 1,
			Content: json.RawMessage(`"hi"`), ClientMsgID: "c1"})
		wantErr(t, fmt.Sprintf("Send(%s by %q)", tc.conv, tc.sender), err, store.ErrNotMember)
	}
	if got := conv(t, s, p.ID); got.LastSeq != 1 {
		t.Fatalf("LastSeq = %d after rejected sends, want 1", got.LastSeq)
	}
	if h, err := s.History(ctx, p.ID, "alice", 0, 10); err != nil || len(h) != 1 {
		t.Fatalf("History = %d messages, %v; want 1", len(h), err)
	}
}

func testSendDuplicate(t *testing.T, s store.Store) {
	app := newApp(t, s)
	p := openPrivate(t, s, app, "alice", "bob")
	nm := store.NewMessage{ConversationID: p.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`{"t":"first"}`), ClientMsgID: "cm-1", At: at(1)}
	orig, dup, err := s.Send(ctx, nm)
	if err != nil || dup || orig.Seq != 1 || orig.ClientMsgID != "cm-1" {
		t.Fatalf("Send = %+v, %v, %v", orig, dup, err)
	}
	retry := nm
	retry.Content = json.RawMessage(`{"t":"retry"}`)
	retry.At = at(2)
	again, dup, err := s.Send(ctx, retry)
	if err != nil || !dup {
		t.Fatalf("retry: dup = %v, err = %v; want the original with dup", dup, err)
	}
	if again.ID != orig.ID || again.Seq != orig.Seq || string(again.Content) != `{"t":"first"}` || !again.CreatedAt.Equal(orig.CreatedAt) {
		t.Fatalf("retry returned %+v, want original %+v", again, orig)
	}
	if got := conv(t, s, p.ID); got.LastSeq != 1 {
		t.Fatalf("LastSeq = %d after a duplicate, want 1", got.LastSeq)
	}
	// Same client id from the other sender is a different message.
	other := nm
	other.SenderID = "bob"
	m, dup, err := s.Send(ctx, other)
	if err != nil || dup || m.Seq != 2 || m.ID == orig.ID {
		t.Fatalf("other sender: %+v, %v, %v; want a new message at seq 2", m, dup, err)
	}
	// Same client id in another conversation is a different message too.
	q := openPrivate(t, s, app, "alice", "carol")
	nm.ConversationID = q.ID
	if m, dup, err := s.Send(ctx, nm); err != nil || dup || m.Seq != 1 {
		t.Fatalf("other conversation: %+v, %v, %v", m, dup, err)
	}
	// Messages without a client id never collide.
	send(t, s, p.ID, "alice", 3)
	send(t, s, p.ID, "alice", 4)
	if got := conv(t, s, p.ID); got.LastSeq != 4 {
		t.Fatalf("LastSeq = %d, want 4", got.LastSeq)
	}
}

func testSendContentExact(t *testing.T, s store.Store) {
	app := newApp(t, s)
	p := openPrivate(t, s, app, "alice", "bob")
	contents := []string{
		`{"text":"héllo wörld — 你好 🎉","nested":{"a":[1,2.50,{"b":null}],"e":"\u00e9\n\t\"q\""}}`,
		`{ "spaced" :  true ,"order":{"z":1,"a":2} }`,
		`"just a string"`,
		`[1,2,3]`,
		`12345678901234567890`,
		`{"html":"<script>alert(1)</script>&amp;"}`,
		`{"big":"` + strings.Repeat("0123456789abcdef", 4096) + `"}`, // 64 KiB
	}
	var ids []string
	for i, c := range contents {
		m, _, err := s.Send(ctx, store.NewMessage{ConversationID: p.ID, SenderID: "alice", Type: i, Content: json.RawMessage(c), At: at(i)})
		if err != nil {
			t.Fatalf("Send(%s): %v", c, err)
		}
		if string(m.Content) != c {
			t.Fatalf("Send returned content %s, want %s", m.Content, c)
		}
		ids = append(ids, m.ID)
	}
	h, err := s.History(ctx, p.ID, "bob", 0, 100)
	if err != nil || len(h) != len(contents) {
		t.Fatalf("History = %d, %v", len(h), err)
	}
	for i, c := range contents {
		got := h[len(h)-1-i]
		if string(got.Content) != c || got.Type != i {
			t.Fatalf("History content %s (type %d), want %s (type %d)", got.Content, got.Type, c, i)
		}
		byID, err := s.MessageByID(ctx, p.ID, ids[i])
		if err != nil || string(byID.Content) != c {
			t.Fatalf("MessageByID content %s, %v; want %s", byID.Content, err, c)
		}
	}
	ss := session(t, s, p.ID, "bob")
	if ss.LastMsg == nil || string(ss.LastMsg.Content) != contents[len(contents)-1] {
		t.Fatalf("Session last message = %+v", ss.LastMsg)
	}
}

func testSendConcurrent(t *testing.T, s store.Store) {
	app := newApp(t, s)
	const senders, each = 32, 25
	users := make([]string, senders)
	for i := range users {
		users[i] = fmt.Sprintf("u%02d", i)
	}
	c := upsertGroup(t, s, app, "hot", users...)
	var mu sync.Mutex
	seen := map[int64]string{}
	ids := map[string]bool{}
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				m, dup, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: users[g], Type: 1,
					Content: json.RawMessage(fmt.Sprintf(`{"g":%d,"i":%d}`, g, i))})
				if err == nil && dup {
					err = errors.New("dup without a client id")
				}
				if err != nil {
					errs <- fmt.Errorf("sender %d message %d: %w", g, i, err)
					return
				}
				mu.Lock()
				if prev, ok := seen[m.Seq]; ok {
					mu.Unlock()
					errs <- fmt.Errorf("seq %d given twice (%s and %s)", m.Seq, prev, m.ID)
					return
				}
				seen[m.Seq] = m.ID
				ids[m.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const n = senders * each
	if len(seen) != n || len(ids) != n {
		t.Fatalf("%d seqs and %d ids for %d messages", len(seen), len(ids), n)
	}
	for seq := int64(1); seq <= n; seq++ {
		if _, ok := seen[seq]; !ok {
			t.Fatalf("seq %d missing", seq)
		}
	}
	if got := conv(t, s, c.ID); got.LastSeq != n {
		t.Fatalf("LastSeq = %d, want %d", got.LastSeq, n)
	}
	all, err := s.After(ctx, c.ID, users[0], 0, 2*n)
	if err != nil {
		t.Fatalf("After: %v", err)
	}
	if !slices.Equal(seqs(all), seqRange(1, n)) {
		t.Fatalf("stored seqs are not 1..%d", n)
	}
	// Every sender has read up to its own last message.
	for _, u := range users {
		m := member(t, s, c.ID, u)
		var last int64
		for _, msg := range all {
			if msg.SenderID == u {
				last = msg.Seq
			}
		}
		if m.ReadSeq != last {
			t.Fatalf("%s: read_seq %d, want %d (its last message)", u, m.ReadSeq, last)
		}
	}
}

func testSendConcurrentDuplicates(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "alice", "bob")
	const goroutines, ids = 8, 40
	type result struct {
		clientID string
		msgID    string
		seq      int64
		dup      bool
	}
	results := make(chan result, goroutines*ids*2)
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range ids {
				// Every goroutine sends the same client ids, as retries would.
				for _, sender := range []string{"alice", "bob"} {
					cid := fmt.Sprintf("cid-%d", (i+g)%ids)
					m, dup, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: sender, Type: 1,
						Content: json.RawMessage(`{"g":` + fmt.Sprint(g) + `}`), ClientMsgID: cid})
					if err != nil {
						errs <- err
						return
					}
					results <- result{sender + "/" + cid, m.ID, m.Seq, dup}
				}
			}
		})
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	first := map[string]result{}
	fresh := 0
	for r := range results {
		if !r.dup {
			fresh++
		}
		if f, ok := first[r.clientID]; ok {
			if f.msgID != r.msgID || f.seq != r.seq {
				t.Fatalf("client id %s stored twice: %+v and %+v", r.clientID, f, r)
			}
			continue
		}
		first[r.clientID] = r
	}
	want := 2 * ids
	if len(first) != want || fresh != want {
		t.Fatalf("%d client ids, %d non-duplicate results; want %d of each", len(first), fresh, want)
	}
	if got := conv(t, s, c.ID); got.LastSeq != int64(want) {
		t.Fatalf("LastSeq = %d, want %d", got.LastSeq, want)
	}
}

func testSendConcurrentConversations(t *testing.T, s store.Store) {
	app := newApp(t, s)
	const convs, each = 8, 20
	cs := make([]store.Conversation, convs)
	for i := range cs {
		cs[i] = openPrivate(t, s, app, "hub", fmt.Sprintf("peer%d", i))
	}
	errs := make(chan error, 2*convs)
	var wg sync.WaitGroup
	for i := range cs {
		for _, sender := range []string{"hub", fmt.Sprintf("peer%d", i)} {
			wg.Go(func() {
				for j := range each {
					if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: cs[i].ID, SenderID: sender, Type: 1,
						Content: json.RawMessage(fmt.Sprint(j))}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, c := range cs {
		all, err := s.After(ctx, c.ID, "hub", 0, 1000)
		if err != nil || !slices.Equal(seqs(all), seqRange(1, 2*each)) {
			t.Fatalf("conversation %s: seqs %v, %v", c.ID, seqs(all), err)
		}
	}
	ss, err := s.Sessions(ctx, app, "hub")
	if err != nil || len(ss) != convs {
		t.Fatalf("Sessions = %d, %v", len(ss), err)
	}
	for _, x := range ss {
		if x.LastSeq != 2*each || x.LastMsg == nil || x.LastMsg.Seq != 2*each {
			t.Fatalf("session %+v", x)
		}
	}
}

// ---- sessions ----

func testSessions(t *testing.T, s store.Store) {
	app := newApp(t, s)
	if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "bob", Name: "Bob", AvatarURI: "bob.png"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "alice", Name: "Alice", AvatarURI: "alice.png"}); err != nil {
		t.Fatal(err)
	}
	pBob := openPrivate(t, s, app, "alice", "bob")
	pDan := openPrivate(t, s, app, "dan", "alice") // dan never called UpsertUser
	g := upsertGroup(t, s, app, "team", "alice", "bob", "carol")
	quiet := upsertGroup(t, s, app, "quiet", "alice") // no message

	send(t, s, pBob.ID, "bob", 1)
	send(t, s, pBob.ID, "bob", 2)
	send(t, s, g.ID, "carol", 3)
	send(t, s, pDan.ID, "alice", 4)
	last := send(t, s, g.ID, "bob", 5)

	ss, err := s.Sessions(ctx, app, "alice")
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	var order []string
	for _, x := range ss {
		order = append(order, x.ConversationID)
	}
	if want := []string{g.ID, pDan.ID, pBob.ID, quiet.ID}; !slices.Equal(order, want) {
		t.Fatalf("session order %v, want %v (most recent message first, silent last)", order, want)
	}
	byConv := map[string]store.SessionRow{}
	for _, x := range ss {
		byConv[x.ConversationID] = x
		if want := member(t, s, x.ConversationID, "alice").SID; x.SID != want {
			t.Fatalf("session sid %s, want alice's membership sid %s", x.SID, want)
		}
	}
	for _, tc := range []struct {
		name                   string
		conv                   string
		typ                    int
		target, title, avatar  string
		lastSeq, read, unread  int64
		lastAt                 time.Time
		lastSender, lastString string
	}{
		{"group", g.ID, store.Group, "team", "group team", "avatar team", 2, 0, 2, at(5), "bob", `{"text":"m5"}`},
		{"private with unknown user", pDan.ID, store.Private, "dan", "", "", 1, 1, 0, at(4), "alice", `{"text":"m4"}`},
		{"private", pBob.ID, store.Private, "bob", "Bob", "bob.png", 2, 0, 2, at(2), "bob", `{"text":"m2"}`},
		{"no message", quiet.ID, store.Group, "quiet", "group quiet", "avatar quiet", 0, 0, 0, time.Time{}, "", ""},
	} {
		x := byConv[tc.conv]
		if x.Type != tc.typ || x.TargetID != tc.target || x.Title != tc.title || x.Avatar != tc.avatar {
			t.Fatalf("%s: type %d target %q title %q avatar %q; want %d %q %q %q", tc.name, x.Type, x.TargetID, x.Title, x.Avatar, tc.typ, tc.target, tc.title, tc.avatar)
		}
		if x.LastSeq != tc.lastSeq || x.ReadSeq != tc.read || x.Unread() != tc.unread || !x.LastMsgAt.Equal(tc.lastAt) {
			t.Fatalf("%s: last %d read %d unread %d at %v; want %d %d %d %v", tc.name, x.LastSeq, x.ReadSeq, x.Unread(), x.LastMsgAt, tc.lastSeq, tc.read, tc.unread, tc.lastAt)
		}
		if tc.lastSender == "" {
			if x.LastMsg != nil {
				t.Fatalf("%s: LastMsg = %+v, want nil", tc.name, x.LastMsg)
			}
			continue
		}
		lm := x.LastMsg
		if lm == nil || lm.Seq != tc.lastSeq || lm.SenderID != tc.lastSender || string(lm.Content) != tc.lastString ||
			lm.Type != 1 || !lm.CreatedAt.Equal(tc.lastAt) || !store.ValidID(lm.ID) || lm.ConversationID != tc.conv {
			t.Fatalf("%s: LastMsg = %+v", tc.name, lm)
		}
	}
	if byConv[g.ID].LastMsg.ID != last.ID {
		t.Fatalf("group LastMsg id %s, want %s", byConv[g.ID].LastMsg.ID, last.ID)
	}
	// The peer sees alice's name.
	bobs, err := s.Sessions(ctx, app, "bob")
	if err != nil || len(bobs) != 2 {
		t.Fatalf("Sessions(bob) = %d, %v", len(bobs), err)
	}
	if bobs[0].ConversationID != g.ID || bobs[1].TargetID != "alice" || bobs[1].Title != "Alice" || bobs[1].Avatar != "alice.png" {
		t.Fatalf("Sessions(bob) = %+v", bobs)
	}
	// Renaming the peer shows up at once.
	if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "bob", Name: "Robert", AvatarURI: "r.png"}); err != nil {
		t.Fatal(err)
	}
	if x := session(t, s, pBob.ID, "alice"); x.Title != "Robert" || x.Avatar != "r.png" {
		t.Fatalf("after rename: %+v", x)
	}
	// A new message moves its conversation to the top.
	send(t, s, pBob.ID, "bob", 6)
	ss, err = s.Sessions(ctx, app, "alice")
	if err != nil || len(ss) != 4 || ss[0].ConversationID != pBob.ID || ss[1].ConversationID != g.ID {
		t.Fatalf("after a new message in the private chat: %+v, %v", ss, err)
	}
	// Reading moves the session's unread to zero.
	if _, err := s.MarkRead(ctx, g.ID, "alice", -1); err != nil {
		t.Fatal(err)
	}
	if x := session(t, s, g.ID, "alice"); x.Unread() != 0 {
		t.Fatalf("unread after MarkRead = %d", x.Unread())
	}
}

func testSessionsEmpty(t *testing.T, s store.Store) {
	app := newApp(t, s)
	openPrivate(t, s, app, "a", "b")
	for _, u := range []string{"nobody", "A"} {
		ss, err := s.Sessions(ctx, app, u)
		if err != nil {
			t.Fatalf("Sessions(%s): %v", u, err)
		}
		if ss == nil || len(ss) != 0 {
			t.Fatalf("Sessions(%s) = %#v, want an empty non-nil slice", u, ss)
		}
	}
	other := newApp(t, s)
	if ss, err := s.Sessions(ctx, other, "a"); err != nil || len(ss) != 0 {
		t.Fatalf("Sessions in another app = %+v, %v", ss, err)
	}
}

func testSession(t *testing.T, s store.Store) {
	app := newApp(t, s)
	if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "bob", Name: "Bob", AvatarURI: "b.png"}); err != nil {
		t.Fatal(err)
	}
	p := openPrivate(t, s, app, "alice", "bob")
	m := send(t, s, p.ID, "bob", 1)
	x := session(t, s, p.ID, "alice")
	if x.ConversationID != p.ID || x.Type != store.Private || x.TargetID != "bob" || x.Title != "Bob" || x.Avatar != "b.png" ||
		x.Unread() != 1 || x.LastMsg == nil || x.LastMsg.ID != m.ID || x.SID != member(t, s, p.ID, "alice").SID {
		t.Fatalf("Session = %+v", x)
	}
	list, err := s.Sessions(ctx, app, "alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("Sessions = %+v, %v", list, err)
	}
	if l := list[0]; l.SID != x.SID || l.TargetID != x.TargetID || l.Title != x.Title || l.LastSeq != x.LastSeq || l.ReadSeq != x.ReadSeq {
		t.Fatalf("Session %+v disagrees with Sessions %+v", x, l)
	}
	_, err = s.Session(ctx, p.ID, "carol")
	wantErr(t, "Session of a stranger", err, store.ErrNotMember)
	_, err = s.Session(ctx, store.NewID(), "alice")
	wantErr(t, "Session of an unknown conversation", err, store.ErrNotMember)
}

func testMemberBySID(t *testing.T, s store.Store) {
	app := newApp(t, s)
	p := openPrivate(t, s, app, "alice", "bob")
	a, b := member(t, s, p.ID, "alice"), member(t, s, p.ID, "bob")
	got, err := s.MemberBySID(ctx, app, "alice", a.SID)
	if err != nil || got.ConversationID != p.ID || got.UserID != "alice" || got.SID != a.SID || got.AppID != app {
		t.Fatalf("MemberBySID(own) = %+v, %v", got, err)
	}
	for _, tc := range []struct{ app, user, sid string }{
		{app, "alice", b.SID},  // someone else's session
		{app, "carol", a.SID},  // a stranger
		{app, "alice", "nope"}, // garbage
		{app, "alice", store.NewID()},
		{store.NewID(), "alice", a.SID}, // another app
	} {
		_, err := s.MemberBySID(ctx, tc.app, tc.user, tc.sid)
		wantErr(t, fmt.Sprintf("MemberBySID(%s, %s, %s)", tc.app, tc.user, tc.sid), err, store.ErrNotFound)
	}
}

func testMembers(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "x", "y", "z")
	ms, _, err := s.Members(ctx, g.ID)
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	var users []string
	sids := map[string]bool{}
	for _, m := range ms {
		users = append(users, m.UserID)
		sids[m.SID] = true
		if m.ConversationID != g.ID || m.AppID != app || !store.ValidID(m.SID) {
			t.Fatalf("member %+v", m)
		}
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"x", "y", "z"}) || len(sids) != 3 {
		t.Fatalf("Members users %v, %d sids", users, len(sids))
	}
}

// memberIDs lists the conversation's member user ids (in Members' order)
// and the members version read with them.
func memberIDs(t *testing.T, s store.Store, convID string) ([]string, int64) {
	t.Helper()
	ms, v, err := s.Members(ctx, convID)
	if err != nil {
		t.Fatalf("Members(%s): %v", convID, err)
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	return ids, v
}

// testMembersVersion: every change of a group's members moves the members
// version on, in the change's own transaction; nothing moves it back; Send
// reports the version its members were read at.
func testMembersVersion(t *testing.T, s store.Store) {
	app := newApp(t, s)
	if ms, v, err := s.Members(ctx, store.NewID()); err != nil || len(ms) != 0 || v != 0 {
		t.Fatalf("Members of an unknown conversation = %+v, %d, %v; want none, 0", ms, v, err)
	}
	empty := upsertGroup(t, s, app, "empty")
	if ids, v := memberIDs(t, s, empty.ID); len(ids) != 0 || v != 0 {
		t.Fatalf("a group created empty: members %v version %d; want none at 0", ids, v)
	}

	var g store.Conversation
	steps := []struct {
		name    string
		change  func() error
		want    []string
		changed bool // false: nothing changed, so the version may stay
	}{
		{"create with alice", func() (err error) {
			g, err = s.UpsertGroup(ctx, app, "g", "G", "", []string{"alice"})
			return err
		}, []string{"alice"}, true},
		{"add bob and carol", func() error { return s.AddMembers(ctx, app, "g", []string{"bob", "carol", "alice"}) },
			[]string{"alice", "bob", "carol"}, true},
		{"upsert adding dave", func() error {
			_, err := s.UpsertGroup(ctx, app, "g", "G", "", []string{"alice", "dave"})
			return err
		}, []string{"alice", "bob", "carol", "dave"}, true},
		{"remove bob", func() error { return s.RemoveMembers(ctx, app, "g", []string{"bob", "nobody"}) },
			[]string{"alice", "carol", "dave"}, true},
		{"re-add bob", func() error { return s.AddMembers(ctx, app, "g", []string{"bob"}) },
			[]string{"alice", "bob", "carol", "dave"}, true},
		{"remove two", func() error { return s.RemoveMembers(ctx, app, "g", []string{"carol", "dave"}) },
			[]string{"alice", "bob"}, true},
		{"add an existing member", func() error { return s.AddMembers(ctx, app, "g", []string{"alice"}) },
			[]string{"alice", "bob"}, false},
		{"remove a stranger", func() error { return s.RemoveMembers(ctx, app, "g", []string{"nobody"}) },
			[]string{"alice", "bob"}, false},
		{"rename", func() error {
			_, err := s.UpsertGroup(ctx, app, "g", "Renamed", "r.png", []string{"bob"})
			return err
		}, []string{"alice", "bob"}, false},
	}
	var prev int64
	for i, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		ids, v := memberIDs(t, s, g.ID)
		if !slices.Equal(ids, st.want) {
			t.Fatalf("%s: members %v, want %v", st.name, ids, st.want)
		}
		if st.changed && v <= prev || v < prev {
			t.Fatalf("%s: members version %d after %d (changed: %v)", st.name, v, prev, st.changed)
		}
		prev = v
		// A send is no membership change, and reports the version current
		// at it.
		m := send(t, s, g.ID, "alice", i)
		if m.MembersVersion != v {
			t.Fatalf("%s: Send reported members version %d, Members %d", st.name, m.MembersVersion, v)
		}
		if _, again := memberIDs(t, s, g.ID); again != v {
			t.Fatalf("%s: a send moved the members version %d → %d", st.name, v, again)
		}
	}
	// The other group's version did not move with g's.
	if _, v := memberIDs(t, s, empty.ID); v != 0 {
		t.Fatalf("an untouched group's members version = %d, want 0", v)
	}
}

// testMembersVersionPrivate: creating a private conversation adds its
// members, which is a change like any other; reopening it is none.
func testMembersVersionPrivate(t *testing.T, s store.Store) {
	app := newApp(t, s)
	for _, pair := range [][2]string{{"alice", "bob"}, {"carol", "carol"}} {
		p := openPrivate(t, s, app, pair[0], pair[1])
		ids, v := memberIDs(t, s, p.ID)
		if len(ids) == 0 || v <= 0 {
			t.Fatalf("%v: members %v at version %d; want them at a version above 0", pair, ids, v)
		}
		openPrivate(t, s, app, pair[1], pair[0])
		if _, again := memberIDs(t, s, p.ID); again != v {
			t.Fatalf("%v: reopening moved the members version %d → %d", pair, v, again)
		}
		if m := send(t, s, p.ID, pair[1], 1); m.MembersVersion != v {
			t.Fatalf("%v: Send reported members version %d, Members %d", pair, m.MembersVersion, v)
		}
	}
}

// testMembersVersionDuplicate: a retry stores nothing and reports the
// members version current at the retry.
func testMembersVersionDuplicate(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "alice", "bob")
	nm := store.NewMessage{ConversationID: g.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`{}`), ClientMsgID: "k"}
	orig, _, err := s.Send(ctx, nm)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMembers(ctx, app, "g", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	_, v := memberIDs(t, s, g.ID)
	again, dup, err := s.Send(ctx, nm)
	if err != nil || !dup || again.ID != orig.ID {
		t.Fatalf("retry = %+v, dup %v, %v; want the original", again, dup, err)
	}
	if again.MembersVersion != v || v <= orig.MembersVersion {
		t.Fatalf("retry reported members version %d; original %d, current %d", again.MembersVersion, orig.MembersVersion, v)
	}
}

// testMembersVersionConcurrent: with bob removed and re-added while alice
// and bob send, every message reports a version that existed, versions
// never go back as seqs go up, and bob's accepted messages report a version
// at which he was a member — the membership check and the version are read
// at one moment, inside the send.
func testMembersVersionConcurrent(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "alice", "bob")
	bobIn := map[int64]bool{} // every version there was: is bob a member at it
	ids, v := memberIDs(t, s, g.ID)
	bobIn[v] = slices.Contains(ids, "bob")

	const toggles, each = 30, 60
	var mu sync.Mutex
	var msgs []store.Message
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() { // the only one changing members, so it sees every version
		for i := range toggles {
			var err error
			if i%2 == 0 {
				err = s.RemoveMembers(ctx, app, "g", []string{"bob"})
			} else {
				err = s.AddMembers(ctx, app, "g", []string{"bob"})
			}
			if err != nil {
				errs <- err
				return
			}
			ms, v, err := s.Members(ctx, g.ID)
			if err != nil {
				errs <- err
				return
			}
			in := slices.ContainsFunc(ms, func(m store.Member) bool { return m.UserID == "bob" })
			mu.Lock()
			bobIn[v] = in
			mu.Unlock()
		}
	})
	for _, sender := range []string{"alice", "bob"} {
		wg.Go(func() {
			for i := range each {
				m, _, err := s.Send(ctx, store.NewMessage{ConversationID: g.ID, SenderID: sender, Type: 1,
					Content: json.RawMessage(fmt.Sprint(i))})
				if errors.Is(err, store.ErrNotMember) && sender == "bob" {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", sender, err)
					return
				}
				mu.Lock()
				msgs = append(msgs, m)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.SortFunc(msgs, func(a, b store.Message) int { return int(a.Seq - b.Seq) })
	var last int64
	for _, m := range msgs {
		in, ok := bobIn[m.MembersVersion]
		switch {
		case !ok:
			t.Fatalf("seq %d by %s reports members version %d, which never existed (%v)", m.Seq, m.SenderID, m.MembersVersion, bobIn)
		case m.MembersVersion < last:
			t.Fatalf("seq %d reports members version %d after %d", m.Seq, m.MembersVersion, last)
		case m.SenderID == "bob" && !in:
			t.Fatalf("seq %d by bob was accepted at members version %d, when he was not a member", m.Seq, m.MembersVersion)
		}
		last = m.MembersVersion
	}
}

// ---- history ----

func seed(t *testing.T, s store.Store, n int) (app string, c store.Conversation, msgs []store.Message) {
	t.Helper()
	app = newApp(t, s)
	if _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "alice", Name: "Alice", AvatarURI: "a.png"}); err != nil {
		t.Fatal(err)
	}
	c = openPrivate(t, s, app, "alice", "bob")
	for i := 1; i <= n; i++ {
		sender := "alice"
		if i%3 == 0 {
			sender = "bob"
		}
		msgs = append(msgs, send(t, s, c.ID, sender, i))
	}
	return app, c, msgs
}

func testHistory(t *testing.T, s store.Store) {
	_, c, msgs := seed(t, s, 10)
	for _, tc := range []struct {
		name   string
		before int64
		limit  int
		want   []int64
	}{
		{"newest", 0, 3, []int64{10, 9, 8}},
		{"negative before", -1, 2, []int64{10, 9}},
		{"all", 0, 100, seqRange(10, 1)},
		{"before 5", 5, 10, []int64{4, 3, 2, 1}},
		{"before 5 limit 2", 5, 2, []int64{4, 3}},
		{"before 1", 1, 10, nil},
		{"before past end", 100, 2, []int64{10, 9}},
		{"limit 0", 0, 0, nil},
	} {
		h, err := s.History(ctx, c.ID, "bob", tc.before, tc.limit)
		if err != nil {
			t.Fatalf("%s: History: %v", tc.name, err)
		}
		if got := seqs(h); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Fatalf("%s: seqs %v, want %v", tc.name, got, tc.want)
		}
	}
	h, err := s.History(ctx, c.ID, "alice", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range h {
		orig := msgs[m.Seq-1]
		if m.ID != orig.ID || m.SenderID != orig.SenderID || string(m.Content) != string(orig.Content) ||
			!m.CreatedAt.Equal(orig.CreatedAt) || m.ConversationID != c.ID || m.Type != 1 {
			t.Fatalf("History message %+v, sent %+v", m, orig)
		}
		switch m.SenderID {
		case "alice":
			if m.SenderName != "Alice" || m.SenderAvatar != "a.png" {
				t.Fatalf("alice's message without her name: %+v", m)
			}
		case "bob": // never called UpsertUser
			if m.SenderName != "" || m.SenderAvatar != "" {
				t.Fatalf("bob's message with a name: %+v", m)
			}
		}
	}
	if h, err := s.History(ctx, store.NewID(), "alice", 0, 10); err != nil || len(h) != 0 {
		t.Fatalf("History of an unknown conversation = %+v, %v", h, err)
	}
}

func testHistoryPaging(t *testing.T, s store.Store) {
	_, c, _ := seed(t, s, 23)
	var got []int64
	before := int64(0)
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("paging does not end")
		}
		h, err := s.History(ctx, c.ID, "alice", before, 5)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		if len(h) == 0 {
			break
		}
		if len(h) > 5 {
			t.Fatalf("page of %d, limit 5", len(h))
		}
		got = append(got, seqs(h)...)
		before = h[len(h)-1].Seq
	}
	if !slices.Equal(got, seqRange(23, 1)) {
		t.Fatalf("paged seqs %v, want 23..1 once each", got)
	}
}

func testAfter(t *testing.T, s store.Store) {
	_, c, _ := seed(t, s, 10)
	for _, tc := range []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 3, []int64{1, 2, 3}},
		{0, 100, seqRange(1, 10)},
		{7, 100, []int64{8, 9, 10}},
		{7, 2, []int64{8, 9}},
		{10, 5, nil},
		{-5, 2, []int64{1, 2}},
		{0, 0, nil},
	} {
		a, err := s.After(ctx, c.ID, "bob", tc.after, tc.limit)
		if err != nil {
			t.Fatalf("After(%d, %d): %v", tc.after, tc.limit, err)
		}
		if got := seqs(a); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Fatalf("After(%d, %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
	a, err := s.After(ctx, c.ID, "alice", 0, 1)
	if err != nil || len(a) != 1 || a[0].SenderName != "Alice" {
		t.Fatalf("After names: %+v, %v", a, err)
	}
}

func testMessageByID(t *testing.T, s store.Store) {
	app, c, msgs := seed(t, s, 3)
	m, err := s.MessageByID(ctx, c.ID, msgs[1].ID)
	if err != nil || m.ID != msgs[1].ID || m.Seq != 2 || string(m.Content) != string(msgs[1].Content) || m.SenderName != "Alice" {
		t.Fatalf("MessageByID = %+v, %v", m, err)
	}
	_, err = s.MessageByID(ctx, c.ID, store.NewID())
	wantErr(t, "MessageByID unknown", err, store.ErrNotFound)
	other := openPrivate(t, s, app, "alice", "carol")
	om := send(t, s, other.ID, "carol", 1)
	_, err = s.MessageByID(ctx, c.ID, om.ID)
	wantErr(t, "MessageByID of another conversation", err, store.ErrNotFound)
}

func testMarkRead(t *testing.T, s store.Store) {
	_, c, _ := seed(t, s, 5) // bob sent seq 3, so his read_seq is 3
	for _, tc := range []struct {
		name string
		user string
		seq  int64
		want int64
	}{
		{"bob starts at his own message", "bob", 0, 3},
		{"forward", "bob", 4, 4},
		{"never backwards", "bob", 2, 4},
		{"capped at last_seq", "bob", 99, 5},
		{"alice to 2 is behind her own 5", "alice", 2, 5},
		{"everything", "alice", -1, 5},
	} {
		got, err := s.MarkRead(ctx, c.ID, tc.user, tc.seq)
		if err != nil || got != tc.want {
			t.Fatalf("%s: MarkRead(%s, %d) = %d, %v; want %d", tc.name, tc.user, tc.seq, got, err, tc.want)
		}
		if m := member(t, s, c.ID, tc.user); m.ReadSeq != tc.want {
			t.Fatalf("%s: stored read_seq %d, want %d", tc.name, m.ReadSeq, tc.want)
		}
	}
	send(t, s, c.ID, "alice", 6)
	send(t, s, c.ID, "alice", 7)
	if x := session(t, s, c.ID, "bob"); x.Unread() != 2 {
		t.Fatalf("bob unread = %d, want 2", x.Unread())
	}
	if got, err := s.MarkRead(ctx, c.ID, "bob", -1); err != nil || got != 7 {
		t.Fatalf("MarkRead(-1) = %d, %v; want 7", got, err)
	}
	_, err := s.MarkRead(ctx, c.ID, "carol", 1)
	wantErr(t, "MarkRead by a stranger", err, store.ErrNotMember)
	_, err = s.MarkRead(ctx, store.NewID(), "bob", 1)
	wantErr(t, "MarkRead unknown conversation", err, store.ErrNotMember)
}

// ---- files ----

func testFiles(t *testing.T, s store.Store) {
	app := newApp(t, s)
	f := store.File{ID: store.NewID(), AppID: app, UserID: "alice", Key: "ab/cd/" + store.NewID(), Name: "photo 1.jpg",
		Size: 12345, ContentType: "image/jpeg", CreatedAt: base}
	if err := s.CreateFile(ctx, f); err != nil {
		t.Fatalf("CreateFile: %v", err)
	}
	got, err := s.File(ctx, app, f.ID)
	if err != nil {
		t.Fatalf("File: %v", err)
	}
	if got.ID != f.ID || got.AppID != f.AppID || got.UserID != f.UserID || got.Key != f.Key || got.Name != f.Name ||
		got.Size != f.Size || got.ContentType != f.ContentType || !got.CreatedAt.Equal(f.CreatedAt) {
		t.Fatalf("File = %+v, want %+v", got, f)
	}
	_, err = s.File(ctx, newApp(t, s), f.ID)
	wantErr(t, "File from another app", err, store.ErrNotFound)
	_, err = s.File(ctx, app, store.NewID())
	wantErr(t, "File unknown", err, store.ErrNotFound)
}

func testFileUsage(t *testing.T, s store.Store) {
	app, other := newApp(t, s), newApp(t, s)
	usage := func(app string) store.FileUsage {
		t.Helper()
		u, err := s.FileUsage(ctx, app)
		if err != nil {
			t.Fatalf("FileUsage: %v", err)
		}
		return u
	}
	if u := usage(app); u != (store.FileUsage{}) {
		t.Fatalf("new app usage = %+v", u)
	}
	file := func(app string, size int64) store.File {
		return store.File{ID: store.NewID(), AppID: app, UserID: "alice", Key: store.NewID(), Size: size, ContentType: "text/plain"}
	}
	f1 := file(app, 100)
	if err := s.CreateFile(ctx, f1); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFileWithin(ctx, file(app, 50), 150); err != nil {
		t.Fatalf("CreateFileWithin up to the quota: %v", err)
	}
	if u := usage(app); u != (store.FileUsage{Bytes: 150, Files: 2}) {
		t.Fatalf("usage = %+v", u)
	}
	over := file(app, 1)
	wantErr(t, "CreateFileWithin over the quota", s.CreateFileWithin(ctx, over, 150), store.ErrQuota)
	_, err := s.File(ctx, app, over.ID)
	wantErr(t, "File refused by the quota", err, store.ErrNotFound)
	dup := f1
	dup.Size = 7
	wantErr(t, "CreateFileWithin duplicate", s.CreateFileWithin(ctx, dup, 0), store.ErrExists)
	if u := usage(app); u != (store.FileUsage{Bytes: 150, Files: 2}) {
		t.Fatalf("usage after refusals = %+v", u)
	}
	// Quotas and usage are per app.
	if err := s.CreateFileWithin(ctx, file(other, 150), 150); err != nil {
		t.Fatalf("other app: %v", err)
	}
	if u := usage(other); u != (store.FileUsage{Bytes: 150, Files: 1}) {
		t.Fatalf("other app usage = %+v", u)
	}
	if err := s.CreateFileWithin(ctx, file(app, 1000), 0); err != nil {
		t.Fatalf("no quota: %v", err)
	}
}

// WantFileUsage checks the usage of each app in want (backends' migration
// tests use it).
func WantFileUsage(t *testing.T, s store.Store, want map[string]store.FileUsage) {
	t.Helper()
	for app, w := range want {
		if got, err := s.FileUsage(context.Background(), app); err != nil || got != w {
			t.Errorf("FileUsage(%s) = %+v %v, want %+v", app, got, err, w)
		}
	}
}

// testFileQuotaConcurrent: uploads racing for the last bytes of a quota
// never pass it together.
func testFileQuotaConcurrent(t *testing.T, s store.Store) {
	app := newApp(t, s)
	const n, size, quota = 12, 10, 55
	var ok sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for range n {
		ok.Go(func() {
			err := s.CreateFileWithin(ctx, store.File{ID: store.NewID(), AppID: app, UserID: "u", Key: store.NewID(), Size: size}, quota)
			switch {
			case err == nil:
				mu.Lock()
				accepted++
				mu.Unlock()
			case !errors.Is(err, store.ErrQuota):
				t.Errorf("CreateFileWithin: %v", err)
			}
		})
	}
	ok.Wait()
	u, err := s.FileUsage(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if accepted != quota/size || u != (store.FileUsage{Bytes: int64(accepted * size), Files: int64(accepted)}) {
		t.Errorf("accepted %d, usage %+v; want %d files", accepted, u, quota/size)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// Members and non-members sending at once: every rejection stays its own,
// every accepted message gets the next seq.
func testSendConcurrentMixed(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "m0", "m1", "m2", "m3")
	const goroutines, each = 8, 20
	var accepted sync.Map
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		sender := fmt.Sprintf("m%d", g/2)
		if g%2 == 1 {
			sender = fmt.Sprintf("x%d", g) // not a member
		}
		wg.Go(func() {
			for i := range each {
				m, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: sender, Type: 1,
					Content: json.RawMessage(fmt.Sprint(i)), ClientMsgID: fmt.Sprintf("%s-%d", sender, i)})
				switch {
				case sender[0] == 'x' && !errors.Is(err, store.ErrNotMember):
					errs <- fmt.Errorf("non-member %s: err = %v, want ErrNotMember", sender, err)
					return
				case sender[0] == 'm' && err != nil:
					errs <- fmt.Errorf("member %s: %w", sender, err)
					return
				case sender[0] == 'm':
					if _, loaded := accepted.LoadOrStore(m.Seq, m.ID); loaded {
						errs <- fmt.Errorf("seq %d given twice", m.Seq)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const n = goroutines / 2 * each
	all, err := s.After(ctx, c.ID, "m0", 0, 10*n)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs(all), seqRange(1, n)) {
		t.Fatalf("stored seqs %v, want 1..%d", seqs(all), n)
	}
	for _, m := range all {
		if m.SenderID[0] != 'm' {
			t.Fatalf("a non-member's message was stored: %+v", m)
		}
	}
}

// Read marks racing with sends never pass last_seq and never go back.
func testMarkReadConcurrent(t *testing.T, s store.Store) {
	app := newApp(t, s)
	p := openPrivate(t, s, app, "alice", "bob")
	const n = 60
	var wg sync.WaitGroup
	sendErr := make(chan error, 1)
	wg.Go(func() {
		for i := range n {
			if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: p.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(fmt.Sprint(i))}); err != nil {
				sendErr <- err
				return
			}
		}
	})
	var marks []int64
	markErr := make(chan error, 1)
	wg.Go(func() {
		for i := range n {
			seq := int64(-1)
			if i%3 == 0 {
				seq = int64(i / 2) // sometimes behind
			}
			r, err := s.MarkRead(ctx, p.ID, "bob", seq)
			if err != nil {
				markErr <- err
				return
			}
			marks = append(marks, r)
		}
	})
	wg.Wait()
	close(sendErr)
	close(markErr)
	for err := range sendErr {
		t.Fatal(err)
	}
	for err := range markErr {
		t.Fatal(err)
	}
	if !slices.IsSorted(marks) {
		t.Fatalf("read_seq went backwards: %v", marks)
	}
	if last := marks[len(marks)-1]; last > n {
		t.Fatalf("read_seq %d beyond last_seq %d", last, n)
	}
	if r, err := s.MarkRead(ctx, p.ID, "bob", -1); err != nil || r != n {
		t.Fatalf("final MarkRead = %d, %v; want %d", r, err, n)
	}
	if x := session(t, s, p.ID, "bob"); x.Unread() != 0 || x.ReadSeq != n {
		t.Fatalf("session %+v", x)
	}
}

func testGroupDuplicateUsers(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "a", "b", "a", "b", "a")
	if err := s.AddMembers(ctx, app, "g", []string{"c", "c", "a"}); err != nil {
		t.Fatalf("AddMembers: %v", err)
	}
	ms, _, err := s.Members(ctx, c.ID)
	if err != nil || len(ms) != 3 {
		t.Fatalf("Members = %+v, %v; want a, b and c once each", ms, err)
	}
	if err := s.RemoveMembers(ctx, app, "g", []string{"a", "a"}); err != nil {
		t.Fatalf("RemoveMembers: %v", err)
	}
	if ms, _, err := s.Members(ctx, c.ID); err != nil || len(ms) != 2 {
		t.Fatalf("Members after removal = %+v, %v", ms, err)
	}
}
