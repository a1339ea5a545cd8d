package chat

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/sqlite"
)

// recorder is a Notifier that remembers what it was told.
type recorder struct {
	mu      sync.Mutex
	sent    []Delivery
	reads   []ReadMark
	revoked []string
	changed []string
}

func (r *recorder) MessageSent(_ context.Context, d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, d)
}
func (r *recorder) SessionRead(_ context.Context, m ReadMark) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, m)
}
func (r *recorder) UserChanged(_ context.Context, appID, userID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changed = append(r.changed, appID+"/"+userID)
}
func (r *recorder) TokensRevoked(_ context.Context, appID, userID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked = append(r.revoked, appID+"/"+userID)
}

type fixture struct {
	svc   *Service
	app   store.App
	rec   *recorder
	clock *time.Time
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.Local)
	f := &fixture{rec: &recorder{}, clock: &now}
	opts.Notifier = f.rec
	opts.Now = func() time.Time { return *f.clock }
	f.svc = New(st, opts)
	f.app, err = f.svc.CreateApp(context.Background(), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) token(t *testing.T, userID string) string {
	t.Helper()
	tok, err := f.svc.GetToken(context.Background(), f.app, userID, "Name "+userID, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func text(s string) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"content":%q}`, s)) }

func TestTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{})
	tok := f.token(t, "u1")
	if again := f.token(t, "u1"); again != tok {
		t.Fatal("getToken is not stable")
	}
	if u, err := f.svc.Authenticate(ctx, f.app.ID, tok); err != nil || u.UserID != "u1" {
		t.Fatalf("Authenticate: %v %v", u, err)
	}
	other, _ := f.svc.CreateApp(ctx, "other", "")
	bad := []struct {
		name  string
		appID string
		token string
		want  string
	}{
		{"empty", f.app.ID, "", "missing"},
		{"garbage", f.app.ID, "garbage", "malformed"},
		{"wrong app", other.ID, tok, "not issued for this app"},
		{"tampered user", f.app.ID, forge(tok, "u1", "u2"), "bad signature"},
		{"signed with another app's secret", f.app.ID, issueToken(other.Secret, f.app.ID, "u1", 0, 0), "bad signature"},
		{"unknown user", f.app.ID, issueToken(f.app.Secret, f.app.ID, "ghost", 0, 0), "unknown user"},
	}
	for _, c := range bad {
		if _, err := f.svc.Authenticate(ctx, c.appID, c.token); !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrBadToken with %q", c.name, err, c.want)
		}
	}

	if err := f.svc.RevokeTokens(ctx, f.app, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, f.app.ID, tok); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token accepted: %v", err)
	}
	if len(f.rec.revoked) != 1 || f.rec.revoked[0] != f.app.ID+"/u1" {
		t.Fatalf("revocation not notified: %v", f.rec.revoked)
	}
	fresh := f.token(t, "u1")
	if fresh == tok {
		t.Fatal("a revoked token was issued again")
	}
	if _, err := f.svc.Authenticate(ctx, f.app.ID, fresh); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeTokens(ctx, f.app, "ghost"); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("revoking an unknown user: %v", err)
	}
}

// forge swaps the user id inside a token's payload, keeping the old MAC.
func forge(token, from, to string) string {
	c, _ := parseToken(token)
	_, mac, _ := strings.Cut(token, ".")
	payload := strings.TrimSuffix(c.payload, ":"+from) + ":" + to
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + mac
}

func TestTokenTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{TokenTTL: time.Hour})
	tok := f.token(t, "u")
	*f.clock = f.clock.Add(10 * time.Minute)
	if again := f.token(t, "u"); again != tok {
		t.Fatal("tokens within one TTL period differ")
	}
	if _, err := f.svc.Authenticate(ctx, f.app.ID, tok); err != nil {
		t.Fatal(err)
	}
	*f.clock = f.clock.Add(2 * time.Hour)
	if _, err := f.svc.Authenticate(ctx, f.app.ID, tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired token was accepted: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, f.app.ID, f.token(t, "u")); err != nil {
		t.Fatalf("a fresh token after expiry: %v", err)
	}
}

func TestDisplayDate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.Local)
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{now.Add(-time.Hour), "09:00"},
		{time.Date(2026, 11, 27, 0, 0, 0, 0, time.Local), "00:00"},
		{time.Date(2026, 11, 26, 23, 59, 0, 0, time.Local), "26/11/26"},
		{time.Date(2018, 11, 5, 12, 0, 0, 0, time.Local), "18/11/05"},
	} {
		if got := displayDate(c.at, now); got != c.want {
			t.Errorf("displayDate(%v) = %q; want %q", c.at, got, c.want)
		}
	}
}

func TestSendNotifiesEveryMemberWithTheirSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{})
	for _, u := range []string{"a", "b", "c"} {
		f.token(t, u)
	}
	res, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "a", TargetID: "b", Type: TypeText, Content: text("hi"), Origin: "sock1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.SendSession.Title != "Name b" || res.Seq != 1 || res.TargetID != "b" || res.Date != "10:00" {
		t.Fatalf("result: %+v", res)
	}
	d := f.rec.sent[0]
	if d.Origin != "sock1" || len(d.Recipients) != 2 {
		t.Fatalf("delivery: %+v", d)
	}
	for _, r := range d.Recipients {
		want := map[string]string{"a": "Name b", "b": "Name a"}[r.UserID]
		if r.Session.Title != want || !store.ValidID(r.Session.SID) {
			t.Errorf("recipient %s: %+v; want title %q", r.UserID, r.Session, want)
		}
	}
	// A retry with the same clientMsgId is answered but not pushed again.
	in := SendInput{AppID: f.app.ID, SenderID: "a", TargetID: "b", Type: TypeText, Content: text("once"), ClientMsgID: "k"}
	first, _ := f.svc.SendPrivate(ctx, in)
	second, err := f.svc.SendPrivate(ctx, in)
	if err != nil || second.MsgID != first.MsgID || len(f.rec.sent) != 2 {
		t.Fatalf("retry: %v %v, %d deliveries", second.MsgID, err, len(f.rec.sent))
	}
	if st := f.svc.Stats(); st.MessagesSent != 2 || st.Duplicates != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSendRateLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{UserSendRate: 1, UserSendBurst: 3})
	f.token(t, "a")
	f.token(t, "b")
	var limited int
	for i := 0; i < 5; i++ {
		_, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "a", TargetID: "b", Type: TypeText, Content: text("x")})
		if errors.Is(err, ErrRateLimited) {
			limited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if limited != 2 {
		t.Fatalf("%d sends limited; want 2 (burst 3 of 5)", limited)
	}
	if _, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "b", TargetID: "a", Type: TypeText, Content: text("x")}); err != nil {
		t.Fatalf("another user is limited too: %v", err)
	}
	if code, status, _ := Describe(fmt.Errorf("wrapped: %w", ErrRateLimited)); code != CodeOther || status != 429 {
		t.Fatalf("Describe(rate limited) = %d, %d", code, status)
	}
	if st := f.svc.Stats(); st.RateLimited != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDescribeHidesInternalErrors(t *testing.T) {
	t.Parallel()
	code, status, msg := Describe(errors.New("pq: password authentication failed for user secret"))
	if code != CodeOther || status != 500 || msg != "internal error" {
		t.Fatalf("Describe(internal) = %d %d %q", code, status, msg)
	}
}

// TestDescribeStatuses: the HTTP statuses node-chat clients branch on.
// Validation errors are 422, as in node-chat, with node-chat's 1002 body code.
func TestDescribeStatuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err        error
		code, http int
	}{
		{fmt.Errorf("%w: missing userId", ErrInvalid), CodeBadParam, 422},
		{fmt.Errorf("%w: content", ErrTooLarge), CodeBadParam, 413},
		{fmt.Errorf("%w: mismatch", ErrBadSignature), CodeBadSignature, 400},
		{ErrUnknownApp, CodeUnknownApp, 400},
		{fmt.Errorf("%w: bob", ErrUnknownUser), CodeBadParam, 404},
		{ErrNotMember, CodeOther, 403},
		{ErrBadToken, CodeOther, 401},
		{ErrRateLimited, CodeOther, 429},
	} {
		if code, status, _ := Describe(c.err); code != c.code || status != c.http {
			t.Errorf("Describe(%v) = %d HTTP %d; want %d HTTP %d", c.err, code, status, c.code, c.http)
		}
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{Limits: Limits{MaxContentBytes: 100, MaxGroupSize: 3}})
	f.token(t, "a")
	f.token(t, "b")
	for _, c := range []struct {
		name string
		in   SendInput
		want string
	}{
		{"no sender", SendInput{TargetID: "b", Type: 1, Content: text("x")}, "senderUserId"},
		{"control char", SendInput{SenderID: "a\x00b", TargetID: "b", Type: 1, Content: text("x")}, "control"},
		{"type 0", SendInput{SenderID: "a", TargetID: "b", Type: 0, Content: text("x")}, "messageType"},
		{"array content", SendInput{SenderID: "a", TargetID: "b", Type: 1, Content: json.RawMessage(`[1]`)}, "object"},
		{"invalid json", SendInput{SenderID: "a", TargetID: "b", Type: 1, Content: json.RawMessage(`{"a":`)}, "object"},
		{"too large", SendInput{SenderID: "a", TargetID: "b", Type: 1, Content: text(strings.Repeat("x", 200))}, "larger"},
	} {
		c.in.AppID = f.app.ID
		if _, err := f.svc.SendPrivate(ctx, c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error about %q", c.name, err, c.want)
		}
	}
	if err := f.svc.CreateGroup(ctx, f.app.ID, "g", "G", "", []string{"a", "b", "c", "d"}); err == nil || !strings.Contains(err.Error(), "at most 3") {
		t.Fatalf("oversized group: %v", err)
	}
	if err := f.svc.CreateGroup(ctx, f.app.ID, "g", "G", "", []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.JoinGroup(ctx, f.app.ID, "g", []string{"c", "d"}); err == nil || !strings.Contains(err.Error(), "at most 3") {
		t.Fatalf("join past the limit: %v", err)
	}
	if err := f.svc.JoinGroup(ctx, f.app.ID, "g", []string{"a", "c"}); err != nil {
		t.Fatalf("join up to the limit (a is already in): %v", err)
	}
}

func TestMarkReadAndSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{})
	f.token(t, "a")
	f.token(t, "b")
	for i := 0; i < 5; i++ {
		if _, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "a", TargetID: "b", Type: 1, Content: text(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	ss, _ := f.svc.Sessions(ctx, f.app.ID, "b")
	if len(ss) != 1 || ss[0].Unread != 5 {
		t.Fatalf("sessions %+v", ss)
	}
	msgs, err := f.svc.Sync(ctx, f.app.ID, "b", ss[0].SID, 2, 0)
	if err != nil || len(msgs) != 3 || msgs[0].Seq != 3 {
		t.Fatalf("sync: %v %+v", err, msgs)
	}
	if _, err := f.svc.Sync(ctx, f.app.ID, "a", ss[0].SID, 0, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("syncing someone else's sid: %v", err)
	}
	seq, err := f.svc.MarkRead(ctx, f.app.ID, "b", ss[0].SID, "dev1")
	if err != nil || seq != 5 {
		t.Fatalf("MarkRead: %d %v", seq, err)
	}
	if len(f.rec.reads) != 1 || f.rec.reads[0].Origin != "dev1" || f.rec.reads[0].ReadSeq != 5 {
		t.Fatalf("read mark not notified: %+v", f.rec.reads)
	}
	ss, _ = f.svc.Sessions(ctx, f.app.ID, "b")
	if ss[0].Unread != 0 {
		t.Fatalf("unread after MarkRead: %d", ss[0].Unread)
	}
}

// countingStore counts the reads the send path makes.
type countingStore struct {
	store.Store
	mu                   sync.Mutex
	openPrivate, members int
}

func (c *countingStore) OpenPrivate(ctx context.Context, appID, a, b string) (store.Conversation, error) {
	c.mu.Lock()
	c.openPrivate++
	c.mu.Unlock()
	return c.Store.OpenPrivate(ctx, appID, a, b)
}

func (c *countingStore) Members(ctx context.Context, id string) ([]store.Member, int64, error) {
	c.mu.Lock()
	c.members++
	c.mu.Unlock()
	return c.Store.Members(ctx, id)
}

// TestPrivateConversationsAreRemembered: a private conversation and its two
// memberships never change, so only the first send of a pair reads them.
func TestPrivateConversationsAreRemembered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs := &countingStore{Store: st}
	svc := New(cs, Options{})
	app, _ := svc.CreateApp(ctx, "a", "")
	svc.GetToken(ctx, app, "a", "A", "")
	svc.GetToken(ctx, app, "b", "B", "")
	var sids []string
	for i, pair := range [][2]string{{"a", "b"}, {"b", "a"}, {"a", "b"}} {
		r, err := svc.SendPrivate(ctx, SendInput{AppID: app.ID, SenderID: pair[0], TargetID: pair[1], Type: 1, Content: text("x")})
		if err != nil || r.Seq != int64(i+1) {
			t.Fatalf("send %d: %v seq %d", i, err, r.Seq)
		}
		sids = append(sids, r.SendSession.SID)
	}
	if cs.openPrivate != 1 || cs.members != 1 {
		t.Fatalf("OpenPrivate %d times, Members %d times; want once each", cs.openPrivate, cs.members)
	}
	if sids[0] != sids[2] || sids[0] == sids[1] {
		t.Fatalf("sender sessions %v: each side keeps its own sid", sids)
	}
}

// relay is a Notifier that passes user changes on to other nodes' services,
// as the gateway does through the broker; with drop set it loses them.
type relay struct {
	recorder
	to   []*Service
	drop bool
}

func (r *relay) UserChanged(_ context.Context, appID, userID string) {
	if !r.drop {
		for _, s := range r.to {
			s.ForgetUser(appID, userID)
		}
	}
}

func (r *relay) TokensRevoked(_ context.Context, appID, userID string) {
	if !r.drop {
		for _, s := range r.to {
			s.ForgetUser(appID, userID)
		}
	}
}

// userReads counts the store's User calls and can run a hook inside one.
type userReads struct {
	store.Store
	mu     sync.Mutex
	n      int
	during func(userID string) bool // true: done, remove the hook
}

func (u *userReads) User(ctx context.Context, appID, userID string) (store.User, error) {
	usr, err := u.Store.User(ctx, appID, userID)
	u.mu.Lock()
	u.n++
	hook := u.during
	u.mu.Unlock()
	if hook != nil && hook(userID) { // after the read, before the cache keeps it
		u.mu.Lock()
		u.during = nil
		u.mu.Unlock()
	}
	return usr, err
}

func (u *userReads) reads() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n
}

// TestUserCacheAcrossNodes: two services on one store stand for two nodes.
// A name changed through node A reaches node B's pushes at once when the
// change is relayed, and within userCacheTTL when the relay is lost.
func TestUserCacheAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	reads := &userReads{Store: st}
	relayA, relayB := &relay{}, &relay{}
	a := New(st, Options{Notifier: relayA, Now: clock})
	b := New(reads, Options{Notifier: relayB, Now: clock})
	relayA.to, relayB.to = []*Service{b}, []*Service{a}
	app, err := a.CreateApp(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	a.GetToken(ctx, app, "ann", "Ann", "ann.png")
	a.GetToken(ctx, app, "bob", "Bob", "")

	sendOnB := func() SendResult {
		t.Helper()
		r, err := b.SendPrivate(ctx, SendInput{AppID: app.ID, SenderID: "bob", TargetID: "ann", Type: TypeText, Content: text("hi")})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := sendOnB(); r.SendSession.Title != "Ann" || r.SendSession.Avatar != "ann.png" {
		t.Fatalf("first send: session %+v", r.SendSession)
	}
	before := reads.reads()
	sendOnB()
	if got := reads.reads() - before; got != 0 {
		t.Fatalf("a repeated send read %d users from the store; want 0", got)
	}

	// Relayed: node B sees the new name at once.
	if _, err := a.GetToken(ctx, app, "ann", "Annie", "ann2.png"); err != nil {
		t.Fatal(err)
	}
	if r := sendOnB(); r.SendSession.Title != "Annie" || r.SendSession.Avatar != "ann2.png" {
		t.Fatalf("after a relayed rename node B titles the session %+v", r.SendSession)
	}
	// Lost: node B keeps the old name, but no longer than userCacheTTL.
	relayA.drop = true
	if _, err := a.GetToken(ctx, app, "ann", "Anna", "ann3.png"); err != nil {
		t.Fatal(err)
	}
	if r := sendOnB(); r.SendSession.Title != "Annie" {
		t.Fatalf("with the relay lost node B titles the session %+v; want the cached Annie", r.SendSession)
	}
	now = now.Add(userCacheTTL)
	if r := sendOnB(); r.SendSession.Title != "Anna" || r.SendSession.Avatar != "ann3.png" {
		t.Fatalf("past the bound node B titles the session %+v; want Anna", r.SendSession)
	}

	// A revocation on node A makes node B forget the user too.
	relayA.drop = false
	sendOnB()
	before = reads.reads()
	if err := a.RevokeTokens(ctx, app, "ann"); err != nil {
		t.Fatal(err)
	}
	sendOnB()
	if got := reads.reads() - before; got != 1 {
		t.Fatalf("after a revocation node B read %d users; want 1 (ann again)", got)
	}
}

// TestUserCacheKeepsNoReadRacingAChange: a row read before a change but
// stored after it was forgotten would stay stale; the cache drops it.
func TestUserCacheKeepsNoReadRacingAChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reads := &userReads{Store: st}
	svc := New(reads, Options{})
	app, _ := svc.CreateApp(ctx, "a", "")
	svc.GetToken(ctx, app, "ann", "Ann", "")
	svc.GetToken(ctx, app, "bob", "Bob", "")
	// The first read of ann races her rename.
	reads.during = func(userID string) bool {
		if userID != "ann" {
			return false
		}
		if _, err := svc.GetToken(ctx, app, "ann", "Annie", ""); err != nil {
			t.Error(err)
		}
		return true
	}
	svc.SendPrivate(ctx, SendInput{AppID: app.ID, SenderID: "bob", TargetID: "ann", Type: TypeText, Content: text("1")})
	r, err := svc.SendPrivate(ctx, SendInput{AppID: app.ID, SenderID: "bob", TargetID: "ann", Type: TypeText, Content: text("2")})
	if err != nil {
		t.Fatal(err)
	}
	if r.SendSession.Title != "Annie" {
		t.Fatalf("after a rename racing a read the session is titled %q; want Annie", r.SendSession.Title)
	}
}

// TestPreviewText: lastMsg.content is node-chat's inner text, whatever the
// message type; anything that is not a string there previews as "".
func TestPreviewText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ content, want string }{
		{`{"content":"hello"}`, "hello"},
		{`{"content":"a \"quoted\" \u00e9 <b>"}`, `a "quoted" é <b>`},
		{`{"content":""}`, ""},
		{`{"content":"https://x/a.png","width":3}`, "https://x/a.png"},
		{`{"url":"https://x/a.png","width":3}`, ""},
		{`{"content":{"text":"nested"}}`, ""},
		{`{"content":42}`, ""},
		{`{"content":null}`, ""},
		{`{"content":["a"]}`, ""},
		{`{}`, ""},
		{`[]`, ""},
		{``, ""},
	} {
		if got := PreviewText(json.RawMessage(c.content)); got != c.want {
			t.Errorf("PreviewText(%s) = %q; want %q", c.content, got, c.want)
		}
	}
}

// TestSessionLastMsg: the session list gives the inner text as
// lastMsg.content (node-chat's shape) and the whole content as lastMsg.body.
func TestSessionLastMsg(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{})
	f.token(t, "a")
	f.token(t, "b")
	f.token(t, "c")
	if _, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "a", TargetID: "b", Type: TypeText, Content: text("hi b")}); err != nil {
		t.Fatal(err)
	}
	img := json.RawMessage(`{"url":"https://x/a.png","name":"a.png"}`)
	if _, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "a", TargetID: "c", Type: 3, Content: img}); err != nil {
		t.Fatal(err)
	}
	list, err := f.svc.Sessions(ctx, f.app.ID, "a")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range list {
		b, err := json.Marshal(s.LastMsg)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(m["body"])
		got[s.TargetID] = fmt.Sprintf("%#v %s", m["content"], body)
	}
	want := map[string]string{
		"b": `"hi b" {"content":"hi b"}`,
		"c": `"" {"name":"a.png","url":"https://x/a.png"}`,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("lastMsg with %s: %s; want %s", k, got[k], w)
		}
	}
}
