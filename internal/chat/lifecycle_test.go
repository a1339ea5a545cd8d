package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// updates is a Notifier that also records message updates.
type updates struct {
	recorder
	mu  sync.Mutex
	ups []Update
}

func (u *updates) MessageUpdated(_ context.Context, up Update) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ups = append(u.ups, up)
}

func (u *updates) take() []Update {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.ups
	u.ups = nil
	return out
}

type lifeFixture struct {
	*fixture
	ups *updates
	sid map[string]string // user → sid of the group g
}

// newLifeFixture: users alice, bob, carol, dave (not in the group), group g
// of alice, bob, carol.
func newLifeFixture(t *testing.T, opts Options) *lifeFixture {
	t.Helper()
	ups := &updates{}
	opts.Notifier = ups
	f := newFixture(t, opts)
	ctx := context.Background()
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		f.token(t, u)
	}
	if err := f.svc.CreateGroupWithOwner(ctx, CreateGroupInput{AppID: f.app.ID, GroupID: "g", Name: "G",
		UserIDs: []string{"alice", "bob", "carol"}}); err != nil { // alice owns it
		t.Fatal(err)
	}
	lf := &lifeFixture{fixture: f, ups: ups, sid: map[string]string{}}
	for _, u := range []string{"alice", "bob", "carol"} {
		ss, err := f.svc.Sessions(ctx, f.app.ID, u)
		if err != nil || len(ss) != 1 {
			t.Fatalf("sessions of %s: %v %v", u, ss, err)
		}
		lf.sid[u] = ss[0].SID
	}
	return lf
}

func (f *lifeFixture) send(t *testing.T, from, txt string, mod func(*SendInput)) SendResult {
	t.Helper()
	in := SendInput{AppID: f.app.ID, SenderID: from, TargetID: "g", Type: TypeText, Content: text(txt)}
	if mod != nil {
		mod(&in)
	}
	r, err := f.svc.SendGroup(context.Background(), in)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return r
}

func (f *lifeFixture) actor(u string) Actor { return Actor{AppID: f.app.ID, UserID: u} }
func (f *lifeFixture) ref(u string) ConvRef { return ConvRef{SID: f.sid[u]} }

func (f *lifeFixture) history(t *testing.T, u string) []Message {
	t.Helper()
	h, err := f.svc.HistoryBySID(context.Background(), f.app.ID, u, f.sid[u], Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func byID(ms []Message, id string) *Message {
	for i := range ms {
		if ms[i].MsgID == id {
			return &ms[i]
		}
	}
	return nil
}

func TestRecall(t *testing.T) {
	t.Parallel()
	f := newLifeFixture(t, Options{})
	ctx := context.Background()
	m := f.send(t, "alice", "secret", nil)
	reply := f.send(t, "bob", "what?", func(in *SendInput) { in.ReplyTo = m.MsgID })
	if reply.Quote == nil || reply.Quote.Excerpt != "secret" || reply.ReplyTo != m.MsgID {
		t.Fatalf("reply quote = %+v", reply.Quote)
	}
	f.ups.take()

	for _, tc := range []struct {
		name string
		a    Actor
		ref  ConvRef
		want error
	}{
		{"another member", f.actor("bob"), f.ref("bob"), ErrForbidden},
		{"someone else's sid", f.actor("dave"), f.ref("bob"), ErrNotFound},
		{"a non-member by target", f.actor("dave"), ConvRef{Type: store.Group, TargetID: "g"}, ErrNotMember},
		{"another app", Actor{AppID: store.NewID(), UserID: "alice"}, ConvRef{Type: store.Group, TargetID: "g"}, ErrNotFound},
	} {
		if _, err := f.svc.Recall(ctx, tc.a, tc.ref, m.MsgID); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := f.svc.Recall(ctx, f.actor("alice"), f.ref("alice"), store.NewID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown message: %v", err)
	}
	if len(f.ups.take()) != 0 {
		t.Fatal("a refused recall was pushed")
	}

	got, err := f.svc.Recall(ctx, f.actor("alice"), f.ref("alice"), m.MsgID)
	if err != nil || !got.Recalled || got.RecalledBy != "alice" || got.Seq != m.Seq || got.Version == 0 || PreviewText(got.Content) != "" {
		t.Fatalf("recall = %+v, %v", got, err)
	}
	ups := f.ups.take()
	if len(ups) != 1 || ups[0].Message.MsgID != m.MsgID || len(ups[0].Recipients) != 3 {
		t.Fatalf("updates %+v", ups)
	}
	// Again: harmless, nothing pushed.
	again, err := f.svc.Recall(ctx, f.actor("alice"), f.ref("alice"), m.MsgID)
	if err != nil || again.Version != got.Version || len(f.ups.take()) != 0 {
		t.Fatalf("second recall = %+v, %v", again, err)
	}
	h := f.history(t, "carol")
	if r := byID(h, m.MsgID); r == nil || !r.Recalled || string(r.Content) != `{"content":""}` {
		t.Fatalf("history shows %+v", r)
	}
	if q := byID(h, reply.MsgID).Quote; q == nil || !q.Recalled || q.Excerpt != "" {
		t.Fatalf("quote of the recalled message: %+v", q)
	}
	if _, err := f.svc.Edit(ctx, f.actor("alice"), f.ref("alice"), m.MsgID, text("x")); !errors.Is(err, ErrForbidden) {
		t.Fatalf("edit of a recalled message: %v", err)
	}
}

func TestRecallWindowAndApp(t *testing.T) {
	t.Parallel()
	f := newLifeFixture(t, Options{Lifecycle: LifecycleOptions{RecallWindow: time.Minute}})
	ctx := context.Background()
	m := f.send(t, "bob", "old", nil) // bob is a plain member: the window binds him
	*f.clock = f.clock.Add(2 * time.Minute)
	if _, err := f.svc.Recall(ctx, f.actor("bob"), f.ref("bob"), m.MsgID); !errors.Is(err, ErrForbidden) {
		t.Fatalf("recall after the window: %v", err)
	}
	app := Actor{AppID: f.app.ID}
	got, err := f.svc.Recall(ctx, app, ConvRef{Type: store.Group, TargetID: "g"}, m.MsgID)
	if err != nil || !got.Recalled || got.RecalledBy != "" {
		t.Fatalf("app recall = %+v, %v", got, err)
	}
	// The app finds a private message by its id.
	p, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "bob", TargetID: "dave", Type: TypeText, Content: text("hi")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Recall(ctx, app, ConvRef{Type: store.Private, TargetID: "carol"}, p.MsgID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("app recall with the wrong target: %v", err)
	}
	if got, err := f.svc.Recall(ctx, app, ConvRef{Type: store.Private, TargetID: "dave"}, p.MsgID); err != nil || !got.Recalled {
		t.Fatalf("app recall of a private message = %+v, %v", got, err)
	}
}

func TestEdit(t *testing.T) {
	t.Parallel()
	f := newLifeFixture(t, Options{Lifecycle: LifecycleOptions{EditWindow: time.Hour}})
	ctx := context.Background()
	m := f.send(t, "alice", "teh", nil)
	img := f.send(t, "alice", "", func(in *SendInput) { in.Type = TypeImage; in.Content = json.RawMessage(`{"url":"x"}`) })
	f.ups.take()
	for _, tc := range []struct {
		name    string
		user    string
		msg     string
		content json.RawMessage
		want    error
	}{
		{"not the sender", "bob", m.MsgID, text("x"), ErrForbidden},
		{"not text", "alice", img.MsgID, text("x"), ErrInvalid},
		{"not an object", "alice", m.MsgID, json.RawMessage(`"x"`), ErrInvalid},
		{"too large", "alice", m.MsgID, text(string(make([]byte, 70<<10))), ErrTooLarge},
	} {
		if _, err := f.svc.Edit(ctx, f.actor(tc.user), f.ref(tc.user), tc.msg, tc.content); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	got, err := f.svc.Edit(ctx, f.actor("alice"), f.ref("alice"), m.MsgID, text("the"))
	if err != nil || got.EditCount != 1 || got.EditedAt == 0 || PreviewText(got.Content) != "the" || got.Seq != m.Seq {
		t.Fatalf("edit = %+v, %v", got, err)
	}
	if _, err := f.svc.Edit(ctx, f.actor("alice"), f.ref("alice"), m.MsgID, text("the")); err != nil {
		t.Fatal(err)
	}
	if ups := f.ups.take(); len(ups) != 1 {
		t.Fatalf("%d updates, want 1 (the same content twice is no change)", len(ups))
	}
	ss, _ := f.svc.Sessions(ctx, f.app.ID, "bob")
	if ss[0].Unread != 2 || ss[0].LastSeq != img.Seq {
		t.Fatalf("an edit changed unread/lastSeq: %+v", ss[0])
	}
	if h := byID(f.history(t, "bob"), m.MsgID); h.EditCount != 1 || PreviewText(h.Content) != "the" {
		t.Fatalf("history after edit %+v", h)
	}
	*f.clock = f.clock.Add(2 * time.Hour)
	if _, err := f.svc.Edit(ctx, f.actor("alice"), f.ref("alice"), m.MsgID, text("late")); !errors.Is(err, ErrForbidden) {
		t.Fatalf("edit after the window: %v", err)
	}
}

func TestMentions(t *testing.T) {
	t.Parallel()
	f := newLifeFixture(t, Options{})
	ctx := context.Background()
	if _, err := f.svc.SendGroup(ctx, SendInput{AppID: f.app.ID, SenderID: "alice", TargetID: "g", Type: TypeText, Content: text("x"),
		Mentions: []string{"dave"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("mention of a non-member: %v", err)
	}
	if _, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "alice", TargetID: "bob", Type: TypeText, Content: text("x"),
		MentionAll: true}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("mentionAll in a private conversation: %v", err)
	}
	// Over a socket only the owner (alice, the group's creator) and admins
	// may mention everyone; the app backend's HTTP sends always may.
	if _, err := f.svc.SendGroup(ctx, SendInput{AppID: f.app.ID, SenderID: "bob", TargetID: "g", Type: TypeText, Content: text("x"),
		Origin: "bob-socket", MentionAll: true}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("mentionAll by a member over a socket: %v", err)
	}
	m := f.send(t, "alice", "@bob", func(in *SendInput) { in.Mentions = []string{"bob"} })
	f.send(t, "alice", "@all", func(in *SendInput) { in.MentionAll = true; in.Origin = "alice-socket" })
	if len(m.Mentions) != 1 {
		t.Fatalf("sent %+v", m)
	}
	want := map[string]int64{"alice": 0, "bob": 2, "carol": 1}
	for u, n := range want {
		ss, _ := f.svc.Sessions(ctx, f.app.ID, u)
		if ss[0].MentionedUnread != n {
			t.Errorf("%s mentionedUnread = %d, want %d", u, ss[0].MentionedUnread, n)
		}
	}
	if _, err := f.svc.MarkRead(ctx, f.app.ID, "bob", f.sid["bob"], ""); err != nil {
		t.Fatal(err)
	}
	if ss, _ := f.svc.Sessions(ctx, f.app.ID, "bob"); ss[0].MentionedUnread != 0 {
		t.Fatalf("after read: %d", ss[0].MentionedUnread)
	}
}

func TestReactions(t *testing.T) {
	t.Parallel()
	f := newLifeFixture(t, Options{Lifecycle: LifecycleOptions{MaxReactions: 2}})
	ctx := context.Background()
	m := f.send(t, "alice", "hi", nil)
	react := func(u, e string, on bool) (Message, error) {
		return f.svc.React(ctx, f.actor(u), f.ref(u), m.MsgID, e, on)
	}
	if _, err := react("bob", "👍", true); err != nil {
		t.Fatal(err)
	}
	got, err := react("carol", "👍", true)
	if err != nil || len(got.Reactions) != 1 || got.Reactions[0].Count != 2 || !got.Reactions[0].Me {
		t.Fatalf("react = %+v, %v", got.Reactions, err)
	}
	if _, err := react("carol", "😂", true); err != nil {
		t.Fatal(err)
	}
	if _, err := react("bob", "🎉", true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a third emoji: %v", err)
	}
	if _, err := react("bob", "", true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty emoji: %v", err)
	}
	if _, err := f.svc.React(ctx, f.actor("dave"), ConvRef{Type: store.Group, TargetID: "g"}, m.MsgID, "👍", true); !errors.Is(err, ErrNotMember) {
		t.Fatalf("non-member: %v", err)
	}
	f.ups.take()
	if _, err := react("bob", "👍", true); err != nil { // again: harmless
		t.Fatal(err)
	}
	if n := len(f.ups.take()); n != 0 {
		t.Fatalf("a repeated reaction pushed %d updates", n)
	}
	h := byID(f.history(t, "bob"), m.MsgID)
	if fmt.Sprint(h.Reactions) != "[{👍 2 [bob carol] true} {😂 1 [carol] false}]" {
		t.Fatalf("bob sees %v", h.Reactions)
	}
	if _, err := react("bob", "👍", false); err != nil {
		t.Fatal(err)
	}
	ups := f.ups.take()
	if len(ups) != 1 || ups[0].Reaction == nil || ups[0].Reaction.Added || ups[0].Actor != "bob" {
		t.Fatalf("unreact update %+v", ups)
	}
	if h := byID(f.history(t, "alice"), m.MsgID); fmt.Sprint(h.Reactions) != "[{👍 1 [carol] false} {😂 1 [carol] false}]" {
		t.Fatalf("alice sees %v", h.Reactions)
	}
}

func TestDeleteForMeAndClear(t *testing.T) {
	t.Parallel()
	f := newLifeFixture(t, Options{Limits: Limits{HistoryDefault: 3, HistoryMax: 3}})
	ctx := context.Background()
	var msgs []SendResult
	for i := range 8 {
		msgs = append(msgs, f.send(t, "alice", fmt.Sprint("m", i), nil))
	}
	// bob hides 3 of 8; his pages of 3 still come full.
	for _, i := range []int{7, 6, 4} {
		if _, err := f.svc.DeleteForMe(ctx, f.actor("bob"), f.ref("bob"), msgs[i].MsgID); err != nil {
			t.Fatal(err)
		}
	}
	h, err := f.svc.HistoryBySID(ctx, f.app.ID, "bob", f.sid["bob"], Page{})
	if err != nil || len(h) != 3 || h[0].MsgID != msgs[5].MsgID || h[2].MsgID != msgs[2].MsgID {
		t.Fatalf("bob's first page %v, %v", seqsOf(h), err)
	}
	if h := f.history(t, "carol"); len(h) != 3 || h[0].MsgID != msgs[7].MsgID {
		t.Fatalf("carol's page %v", seqsOf(h))
	}
	sync, err := f.svc.Sync(ctx, f.app.ID, "bob", f.sid["bob"], msgs[1].Seq, 3)
	if err != nil || fmt.Sprint(seqsOf(sync)) != fmt.Sprint([]int64{msgs[2].Seq, msgs[3].Seq, msgs[5].Seq}) {
		t.Fatalf("bob's sync %v, %v", seqsOf(sync), err)
	}
	ups := f.ups.take()
	if len(ups) != 3 || ups[0].Hidden == nil || len(ups[0].Recipients) != 1 || ups[0].Recipients[0].UserID != "bob" {
		t.Fatalf("hide updates %+v", ups)
	}
	// Clear: everything so far, read.
	if _, err := f.svc.ClearSession(ctx, f.actor("carol"), f.ref("carol")); err != nil {
		t.Fatal(err)
	}
	if h := f.history(t, "carol"); len(h) != 0 {
		t.Fatalf("carol after clear: %v", seqsOf(h))
	}
	if ss, _ := f.svc.Sessions(ctx, f.app.ID, "carol"); ss[0].LastMsg != nil || ss[0].Unread != 0 {
		t.Fatalf("carol's session after clear: %+v", ss[0])
	}
	after := f.send(t, "alice", "new", nil)
	if h := f.history(t, "carol"); len(h) != 1 || h[0].MsgID != after.MsgID {
		t.Fatalf("carol after clear and a new message: %v", seqsOf(h))
	}
	if _, err := f.svc.ClearSession(ctx, f.actor("dave"), ConvRef{Type: store.Group, TargetID: "g"}); !errors.Is(err, ErrNotMember) {
		t.Fatalf("clear by a non-member: %v", err)
	}
	if _, err := f.svc.DeleteForMe(ctx, f.actor("bob"), f.ref("bob"), store.NewID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of an unknown message: %v", err)
	}
}

func seqsOf(ms []Message) []int64 {
	var out []int64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

// A device that missed every push catches up with SyncChanges and ends in
// the state a fresh history shows.
func TestSyncChangesConverges(t *testing.T) {
	t.Parallel()
	f := newLifeFixture(t, Options{})
	ctx := context.Background()
	var msgs []SendResult
	for i := range 5 {
		msgs = append(msgs, f.send(t, "alice", fmt.Sprint("m", i), nil))
	}
	// The offline device of bob knows the messages as sent, and version 0.
	local := map[string]Message{}
	for _, m := range msgs {
		local[m.MsgID] = m.Message
	}
	f.svc.Edit(ctx, f.actor("alice"), f.ref("alice"), msgs[0].MsgID, text("e1"))
	f.svc.Recall(ctx, f.actor("alice"), f.ref("alice"), msgs[1].MsgID)
	f.svc.React(ctx, f.actor("carol"), f.ref("carol"), msgs[2].MsgID, "👍", true)
	f.svc.React(ctx, f.actor("bob"), f.ref("bob"), msgs[2].MsgID, "👍", true)
	f.svc.Edit(ctx, f.actor("alice"), f.ref("alice"), msgs[0].MsgID, text("e2"))
	f.svc.DeleteForMe(ctx, f.actor("bob"), f.ref("bob"), msgs[3].MsgID)
	f.svc.DeleteForMe(ctx, f.actor("carol"), f.ref("carol"), msgs[4].MsgID) // not bob's business

	var version int64
	for page := 0; ; page++ {
		ch, err := f.svc.SyncChanges(ctx, f.app.ID, "bob", f.sid["bob"], version, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ch.Messages {
			if m.Version >= local[m.MsgID].Version {
				local[m.MsgID] = m
			}
		}
		for _, h := range ch.Hidden {
			for id, m := range local {
				if h.FromSeq <= m.Seq && m.Seq <= h.ToSeq {
					delete(local, id)
				}
			}
		}
		if ch.Version < version {
			t.Fatalf("version went back: %d → %d", version, ch.Version)
		}
		version = ch.Version
		if !ch.More {
			break
		}
		if page > 10 {
			t.Fatal("SyncChanges never ends")
		}
	}
	fresh := f.history(t, "bob")
	if len(fresh) != len(local) {
		t.Fatalf("local has %d messages, history %d", len(local), len(fresh))
	}
	for _, m := range fresh {
		l := local[m.MsgID]
		l.Date, m.Date = "", ""
		a, _ := json.Marshal(l)
		b, _ := json.Marshal(m)
		if string(a) != string(b) {
			t.Errorf("message %d:\nlocal   %s\nhistory %s", m.Seq, a, b)
		}
	}
	// Nothing more to fetch.
	if ch, err := f.svc.SyncChanges(ctx, f.app.ID, "bob", f.sid["bob"], version, 10); err != nil || len(ch.Messages)+len(ch.Hidden) != 0 {
		t.Fatalf("after catching up: %+v, %v", ch, err)
	}
	if _, err := f.svc.SyncChanges(ctx, f.app.ID, "dave", f.sid["bob"], 0, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another user's sid: %v", err)
	}
}

// A member who joined after a message can neither see nor change it, nor
// reply to it.
func TestLifecycleVisibility(t *testing.T) {
	t.Parallel()
	f := newLifeFixture(t, Options{})
	ctx := context.Background()
	old := f.send(t, "alice", "before dave", nil)
	if err := f.svc.JoinGroup(ctx, f.app.ID, "g", []string{"dave"}); err != nil {
		t.Fatal(err)
	}
	ss, _ := f.svc.Sessions(ctx, f.app.ID, "dave")
	dave, ref := f.actor("dave"), ConvRef{SID: ss[0].SID}
	if _, err := f.svc.React(ctx, dave, ref, old.MsgID, "👍", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("react to an earlier message: %v", err)
	}
	if _, err := f.svc.DeleteForMe(ctx, dave, ref, old.MsgID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete an earlier message: %v", err)
	}
	if _, err := f.svc.SendGroup(ctx, SendInput{AppID: f.app.ID, SenderID: "dave", TargetID: "g", Type: TypeText, Content: text("re"), ReplyTo: old.MsgID}); !errors.Is(err, ErrNotFound) {
		t.Errorf("reply to an earlier message: %v", err)
	}
	if _, err := f.svc.React(ctx, f.actor("bob"), f.ref("bob"), old.MsgID, "👍", true); err != nil {
		t.Fatal(err)
	}
	ch, err := f.svc.SyncChanges(ctx, f.app.ID, "dave", ss[0].SID, 0, 10)
	if err != nil || len(ch.Messages) != 0 {
		t.Fatalf("dave's sync-changes = %+v, %v", ch, err)
	}
}

func TestChangeRateLimit(t *testing.T) {
	t.Parallel()
	f := newLifeFixture(t, Options{UserSendRate: 1, UserSendBurst: 2})
	ctx := context.Background()
	m := f.send(t, "alice", "x", nil)
	var limited error
	for _, e := range []string{"1", "2", "3"} {
		if _, err := f.svc.React(ctx, f.actor("alice"), f.ref("alice"), m.MsgID, e, true); err != nil {
			limited = err
		}
	}
	if !errors.Is(limited, ErrRateLimited) {
		t.Fatalf("reactions past the rate: %v", limited)
	}
}
