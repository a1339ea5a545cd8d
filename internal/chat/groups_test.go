package chat

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// groupFixture is a group "g" of owner o, admin ad and members m1, m2.
func groupFixture(t *testing.T) (*fixture, context.Context) {
	t.Helper()
	f := newFixture(t, Options{})
	ctx := context.Background()
	for _, u := range []string{"o", "ad", "m1", "m2", "out"} {
		f.token(t, u)
	}
	if err := f.svc.CreateGroupWithOwner(ctx, CreateGroupInput{AppID: f.app.ID, GroupID: "g", Name: "G", UserIDs: []string{"ad", "m1", "m2"}, OwnerID: "o"}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetAdmins(ctx, f.backend(), "g", []string{"ad"}, nil); err != nil {
		t.Fatal(err)
	}
	return f, ctx
}

func (f *fixture) backend() Actor       { return Actor{AppID: f.app.ID} }
func (f *fixture) as(user string) Actor { return Actor{AppID: f.app.ID, UserID: user} }

// notices returns the group's notices, oldest first, as {event, content}.
func (f *fixture) notices(t *testing.T, user string) []map[string]any {
	t.Helper()
	msgs, err := f.svc.HistoryWith(context.Background(), f.app.ID, user, "g", store.Group, Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].MessageType != TypeNotice {
			continue
		}
		var c map[string]any
		if err := json.Unmarshal(msgs[i].Content, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestGroupOwnerAndRoles(t *testing.T) {
	t.Parallel()
	f, ctx := groupFixture(t)
	g, err := f.svc.GroupInfo(ctx, f.backend(), "g")
	if err != nil || g.OwnerID != "o" || g.MemberCount != 4 || string(g.Extra) != "{}" {
		t.Fatalf("GroupInfo = %+v, %v", g, err)
	}
	// The first userIds entry owns a group created without ownerId.
	if err := f.svc.CreateGroupWithOwner(ctx, CreateGroupInput{AppID: f.app.ID, GroupID: "h", Name: "H", UserIDs: []string{"m1", "m2"}}); err != nil {
		t.Fatal(err)
	}
	if h, _ := f.svc.GroupInfo(ctx, f.backend(), "h"); h.OwnerID != "m1" {
		t.Fatalf("owner of h = %q", h.OwnerID)
	}
	// Creating again keeps the owner (idempotent).
	if err := f.svc.CreateGroupWithOwner(ctx, CreateGroupInput{AppID: f.app.ID, GroupID: "h", Name: "H", UserIDs: []string{"m2"}, OwnerID: "m2"}); err != nil {
		t.Fatal(err)
	}
	if h, _ := f.svc.GroupInfo(ctx, f.backend(), "h"); h.OwnerID != "m1" {
		t.Fatalf("owner of h after re-create = %q", h.OwnerID)
	}
	if err := f.svc.Transfer(ctx, f.backend(), "g", "m1"); err != nil {
		t.Fatal(err)
	}
	page, err := f.svc.GroupMembers(ctx, f.as("m2"), "g", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for _, m := range page.Members {
		roles[m.UserID] = m.Role
	}
	if roles["m1"] != "owner" || roles["o"] != "member" || roles["ad"] != "admin" || roles["m2"] != "member" {
		t.Fatalf("roles = %v", roles)
	}
	ev := f.notices(t, "m2")
	if last := ev[len(ev)-1]; last["event"] != "owner" || last["previousOwnerId"] != "o" || !strings.Contains(last["content"].(string), "Name m1") {
		t.Fatalf("last notice = %v", last)
	}
}

// TestGroupAuthorization: who may do what, one row per actor and action.
func TestGroupAuthorization(t *testing.T) {
	t.Parallel()
	type op struct {
		name string
		do   func(f *fixture, ctx context.Context, a Actor) error
	}
	name := "N"
	ops := []op{
		{"info", func(f *fixture, ctx context.Context, a Actor) error {
			_, err := f.svc.GroupInfo(ctx, a, "g")
			return err
		}},
		{"members", func(f *fixture, ctx context.Context, a Actor) error {
			_, err := f.svc.GroupMembers(ctx, a, "g", 10, "")
			return err
		}},
		{"update", func(f *fixture, ctx context.Context, a Actor) error {
			_, err := f.svc.UpdateGroup(ctx, a, "g", GroupUpdateInput{Name: &name})
			return err
		}},
		{"add", func(f *fixture, ctx context.Context, a Actor) error {
			return f.svc.AddMembers(ctx, a, "g", []string{"out"})
		}},
		{"remove", func(f *fixture, ctx context.Context, a Actor) error {
			return f.svc.RemoveMembers(ctx, a, "g", []string{"m2"})
		}},
		{"mute", func(f *fixture, ctx context.Context, a Actor) error {
			return f.svc.Mute(ctx, a, "g", []string{"m2"}, (*f.clock).Add(time.Hour))
		}},
		{"muteAll", func(f *fixture, ctx context.Context, a Actor) error { return f.svc.MuteAll(ctx, a, "g", true) }},
		{"admins", func(f *fixture, ctx context.Context, a Actor) error {
			return f.svc.SetAdmins(ctx, a, "g", []string{"m2"}, nil)
		}},
		{"transfer", func(f *fixture, ctx context.Context, a Actor) error { return f.svc.Transfer(ctx, a, "g", "m2") }},
		{"dismiss", func(f *fixture, ctx context.Context, a Actor) error { return f.svc.Dismiss(ctx, a, "g") }},
	}
	// allowed[actor] lists the ops the actor may do.
	allowed := map[string]string{
		"backend": "info members update add remove mute muteAll admins transfer dismiss",
		"o":       "info members update add remove mute muteAll admins transfer dismiss",
		"ad":      "info members update add remove mute muteAll",
		"m1":      "info members",
		"out":     "",
		"removed": "",
		"other":   "",
	}
	for actor, may := range allowed {
		for _, o := range ops {
			t.Run(actor+"/"+o.name, func(t *testing.T) {
				t.Parallel()
				f, ctx := groupFixture(t)
				a := f.as(actor)
				switch actor {
				case "backend":
					a = f.backend()
				case "removed":
					if err := f.svc.RemoveMembers(ctx, f.backend(), "g", []string{"m1"}); err != nil {
						t.Fatal(err)
					}
					a = f.as("m1")
				case "other":
					other, err := f.svc.CreateApp(ctx, "other", "")
					if err != nil {
						t.Fatal(err)
					}
					a = Actor{AppID: other.ID, UserID: "o"}
				}
				err := o.do(f, ctx, a)
				want := strings.Contains(" "+may+" ", " "+o.name+" ")
				if want && err != nil {
					t.Fatalf("%s may %s, got %v", actor, o.name, err)
				}
				if !want {
					if err == nil {
						t.Fatalf("%s may not %s, but it succeeded", actor, o.name)
					}
					code, status, _ := Describe(err)
					if status != 403 && status != 404 || code == CodeOK {
						t.Fatalf("%s %s: %v → %d/%d, want 403 or 404", actor, o.name, err, code, status)
					}
				}
			})
		}
	}
}

func TestAdminLimits(t *testing.T) {
	t.Parallel()
	f, ctx := groupFixture(t)
	for _, target := range []string{"o", "ad"} {
		if err := f.svc.RemoveMembers(ctx, f.as("ad"), "g", []string{target}); !errors.Is(err, ErrForbidden) {
			t.Fatalf("admin removes %s: %v", target, err)
		}
		if err := f.svc.Mute(ctx, f.as("ad"), "g", []string{target}, (*f.clock).Add(time.Hour)); !errors.Is(err, ErrForbidden) {
			t.Fatalf("admin mutes %s: %v", target, err)
		}
	}
	if err := f.svc.Leave(ctx, f.as("o"), "g"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("owner leaves: %v", err)
	}
}

func TestMuteRefusesSends(t *testing.T) {
	t.Parallel()
	f, ctx := groupFixture(t)
	send := func(u string) error {
		_, err := f.svc.SendGroup(ctx, SendInput{AppID: f.app.ID, SenderID: u, TargetID: "g", Type: TypeText, Content: text("hi")})
		return err
	}
	until := (*f.clock).Add(time.Hour)
	if err := f.svc.Mute(ctx, f.backend(), "g", []string{"m1"}, until); err != nil {
		t.Fatal(err)
	}
	err := send("m1")
	if !errors.Is(err, ErrMuted) || !strings.Contains(err.Error(), "muted in this group until") {
		t.Fatalf("muted send: %v", err)
	}
	if _, status, _ := Describe(err); status != 403 {
		t.Fatalf("muted send status %d", status)
	}
	if err := send("m2"); err != nil {
		t.Fatalf("unmuted member: %v", err)
	}
	*f.clock = until.Add(time.Second) // the mute has run out
	if err := send("m1"); err != nil {
		t.Fatalf("after the mute ran out: %v", err)
	}
	*f.clock = until.Add(-time.Hour)
	if err := f.svc.Mute(ctx, f.backend(), "g", []string{"m1"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := send("m1"); err != nil {
		t.Fatalf("after unmute: %v", err)
	}
	if err := f.svc.MuteAll(ctx, f.as("ad"), "g", true); err != nil {
		t.Fatal(err)
	}
	if err := send("m1"); !errors.Is(err, ErrMuted) || !strings.Contains(err.Error(), "only its owner and admins") {
		t.Fatalf("send in a muted group: %v", err)
	}
	for _, u := range []string{"o", "ad"} {
		if err := send(u); err != nil {
			t.Fatalf("%s in a muted group: %v", u, err)
		}
	}
	if err := f.svc.Mute(ctx, f.backend(), "g", []string{"m1"}, (*f.clock).Add(-time.Minute)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("mute until the past: %v", err)
	}
	var events []string
	for _, n := range f.notices(t, "o") {
		events = append(events, n["event"].(string))
	}
	if got := strings.Join(events, " "); got != "admins muted unmuted muteAll" {
		t.Fatalf("events = %q", got)
	}
}

func TestNoticesInOrderAndPushed(t *testing.T) {
	t.Parallel()
	f, ctx := groupFixture(t)
	f.svc.SendGroup(ctx, SendInput{AppID: f.app.ID, SenderID: "m1", TargetID: "g", Type: TypeText, Content: text("one")})
	if err := f.svc.AddMembers(ctx, f.backend(), "g", []string{"out", "m1"}); err != nil {
		t.Fatal(err)
	}
	notice := "Read the rules"
	name := "Renamed"
	if _, err := f.svc.UpdateGroup(ctx, f.as("ad"), "g", GroupUpdateInput{Name: &name, Notice: &notice}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Leave(ctx, f.as("m2"), "g"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RemoveMembers(ctx, f.as("o"), "g", []string{"out"}); err != nil {
		t.Fatal(err)
	}
	msgs, err := f.svc.Sync(ctx, f.app.ID, "o", mustSID(t, f, "o"), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("seq %d at %d", m.Seq, i)
		}
		var c struct{ Content, Event string }
		json.Unmarshal(m.Content, &c)
		got = append(got, c.Event+":"+c.Content)
	}
	want := []string{
		"admins:Name ad became an admin",
		":one",
		"joined:Name out joined the group",
		"renamed:The group was renamed to \u201cRenamed\u201d",
		"notice:Group notice: Read the rules",
		"left:Name m2 left the group",
		"removed:Name out was removed from the group",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Every notice was pushed to the members of the moment, titled with the
	// group's current name; the removed member got the removal.
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	last := f.rec.sent[len(f.rec.sent)-1]
	if last.Message.MessageType != TypeNotice || last.Message.SenderUserID != "o" {
		t.Fatalf("last push = %+v", last.Message)
	}
	var to []string
	for _, r := range last.Recipients {
		to = append(to, r.UserID)
		if r.Session.Title != "Renamed" {
			t.Fatalf("push title %q", r.Session.Title)
		}
	}
	if strings.Join(to, ",") != "ad,m1,o,out" {
		t.Fatalf("removal pushed to %v", to)
	}
	if sessions, _ := f.svc.Sessions(ctx, f.app.ID, "o"); sessions[0].LastMsg.Content != "Name out was removed from the group" {
		t.Fatalf("lastMsg = %+v", sessions[0].LastMsg)
	}
}

func mustSID(t *testing.T, f *fixture, user string) string {
	t.Helper()
	gs, err := f.svc.UserGroups(context.Background(), f.app.ID, user)
	if err != nil || len(gs) == 0 {
		t.Fatalf("UserGroups(%s) = %v, %v", user, gs, err)
	}
	return gs[0].SID
}

func TestDismiss(t *testing.T) {
	t.Parallel()
	f, ctx := groupFixture(t)
	if err := f.svc.Dismiss(ctx, f.as("o"), "g"); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.SendGroup(ctx, SendInput{AppID: f.app.ID, SenderID: "m1", TargetID: "g", Type: TypeText, Content: text("x")})
	if !errors.Is(err, ErrDismissed) {
		t.Fatalf("send after dismiss: %v", err)
	}
	if err := f.svc.AddMembers(ctx, f.backend(), "g", []string{"m1"}); !errors.Is(err, ErrDismissed) {
		t.Fatalf("join after dismiss: %v", err)
	}
	if err := f.svc.CreateGroupWithOwner(ctx, CreateGroupInput{AppID: f.app.ID, GroupID: "g", Name: "G", UserIDs: []string{"m1"}}); !errors.Is(err, ErrDismissed) {
		t.Fatalf("create after dismiss: %v", err)
	}
	if gs, _ := f.svc.UserGroups(ctx, f.app.ID, "m1"); len(gs) != 0 {
		t.Fatalf("m1's groups after dismiss: %+v", gs)
	}
	g, err := f.svc.GroupInfo(ctx, f.backend(), "g")
	if err != nil || !g.Dismissed || g.MemberCount != 0 {
		t.Fatalf("info after dismiss: %+v, %v", g, err)
	}
}

func TestGroupInputBounds(t *testing.T) {
	t.Parallel()
	f, ctx := groupFixture(t)
	long := strings.Repeat("x", MaxNoticeBytes+1)
	if _, err := f.svc.UpdateGroup(ctx, f.backend(), "g", GroupUpdateInput{Notice: &long}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("long notice: %v", err)
	}
	big := json.RawMessage(`{"x":"` + strings.Repeat("y", MaxExtraBytes) + `"}`)
	if _, err := f.svc.UpdateGroup(ctx, f.backend(), "g", GroupUpdateInput{Extra: big}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("big extra: %v", err)
	}
	if _, err := f.svc.UpdateGroup(ctx, f.backend(), "g", GroupUpdateInput{Extra: json.RawMessage(`[1]`)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("array extra: %v", err)
	}
	if _, err := f.svc.UpdateGroup(ctx, f.backend(), "g", GroupUpdateInput{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty update: %v", err)
	}
	if _, err := f.svc.GroupMembers(ctx, f.backend(), "g", -1, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative limit: %v", err)
	}
	g, _ := f.svc.GroupInfo(ctx, f.backend(), "g")
	if g.Notice != "" || string(g.Extra) != "{}" {
		t.Fatalf("a refused update changed the group: %+v", g)
	}
}

func TestCanModerate(t *testing.T) {
	t.Parallel()
	f, ctx := groupFixture(t)
	conv, _ := f.svc.store.ConversationByKey(ctx, f.app.ID, store.Group, "g")
	for u, want := range map[string]bool{"o": true, "ad": true, "m1": false, "out": false} {
		if got, err := f.svc.canModerate(ctx, conv, u); err != nil || got != want {
			t.Fatalf("canModerate(%s) = %v, %v", u, got, err)
		}
	}
}

func TestProfiles(t *testing.T) {
	t.Parallel()
	f, ctx := groupFixture(t)
	name := "New name"
	p, err := f.svc.UpdateUser(ctx, f.app.ID, "m1", ProfileInput{Name: &name, Extra: json.RawMessage(`{"v":1}`)})
	if err != nil || p.Name != name || string(p.Extra) != `{"v":1}` {
		t.Fatalf("UpdateUser = %+v, %v", p, err)
	}
	res, err := f.svc.SendGroup(ctx, SendInput{AppID: f.app.ID, SenderID: "m1", TargetID: "g", Type: TypeText, Content: text("x")})
	if err != nil || res.SendUser.Name != name {
		t.Fatalf("sendUser after rename = %+v, %v", res.SendUser, err)
	}
	if _, err := f.svc.UpdateUser(ctx, f.app.ID, "ghost", ProfileInput{Name: &name}); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("update unknown: %v", err)
	}
	// A user sees the profiles of those they share a conversation with.
	ps, err := f.svc.UserInfo(ctx, f.as("m2"), []string{"m1", "out", "m2"})
	if err != nil || len(ps) != 2 {
		t.Fatalf("UserInfo as m2 = %+v, %v", ps, err)
	}
	if ps, _ := f.svc.UserInfo(ctx, f.backend(), []string{"out"}); len(ps) != 1 {
		t.Fatalf("UserInfo as backend = %+v", ps)
	}
	tok := f.token(t, "m1")
	if err := f.svc.DeleteUser(ctx, f.app, "m1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, f.app.ID, tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("token after delete: %v", err)
	}
	if gs, _ := f.svc.UserGroups(ctx, f.app.ID, "m1"); len(gs) != 0 {
		t.Fatalf("deleted user's groups: %v", gs)
	}
	if _, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "m2", TargetID: "m1", Type: TypeText, Content: text("x")}); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("send to a deleted user: %v", err)
	}
	// Issued again, the user has a new token; the old one stays void.
	if again := f.token(t, "m1"); again == tok {
		t.Fatal("the deleted account's token came back")
	}
	if _, err := f.svc.Authenticate(ctx, f.app.ID, tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("old token after re-creation: %v", err)
	}
	f.rec.mu.Lock()
	revoked := strings.Join(f.rec.revoked, ",")
	f.rec.mu.Unlock()
	if !strings.Contains(revoked, "/m1") {
		t.Fatalf("sockets not closed: %q", revoked)
	}
}

// TestModeratorsRecall: group owners and admins recall anyone's message in
// their group, at any time; a member only their own.
func TestModeratorsRecall(t *testing.T) {
	t.Parallel()
	f, ctx := groupFixture(t)
	sent := func(u string) string {
		r, err := f.svc.SendGroup(ctx, SendInput{AppID: f.app.ID, SenderID: u, TargetID: "g", Type: TypeText, Content: text("x")})
		if err != nil {
			t.Fatal(err)
		}
		return r.MsgID
	}
	ref := ConvRef{Type: store.Group, TargetID: "g"}
	if _, err := f.svc.Recall(ctx, f.as("m2"), ref, sent("m1")); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a member recalls another's message: %v", err)
	}
	for _, mod := range []string{"ad", "o"} {
		m, err := f.svc.Recall(ctx, f.as(mod), ref, sent("m1"))
		if err != nil {
			t.Fatalf("%s recalls m1's message: %v", mod, err)
		}
		if PreviewText(m.Content) != "" {
			t.Fatalf("recalled content = %s", m.Content)
		}
	}
}
