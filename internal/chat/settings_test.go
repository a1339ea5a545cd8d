package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSettingsRules: pins order the list (most recent first), hides last
// until the next message, bad input changes nothing, a block refuses the
// blocked sender's private sends only, and a send marks exactly the
// recipients who muted the conversation (in a large group too).
func TestSettingsRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, Options{})
	for _, u := range []string{"a", "b", "c", "d"} {
		f.token(t, u)
	}
	sids := map[string]string{}
	for _, peer := range []string{"b", "c", "d"} {
		if _, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: peer, TargetID: "a", Type: 1, Content: text("hi")}); err != nil {
			t.Fatal(err)
		}
		*f.clock = f.clock.Add(time.Second)
		ss, _ := f.svc.Sessions(ctx, f.app.ID, "a")
		sids[peer] = ss[0].SID
	}
	order := func() string {
		ss, err := f.svc.Sessions(ctx, f.app.ID, "a")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range ss {
			out = append(out, s.TargetID)
		}
		return strings.Join(out, ",")
	}
	if got := order(); got != "d,c,b" {
		t.Fatalf("order %s", got)
	}
	yes, no := true, false
	for _, p := range []string{"b", "c"} {
		if _, err := f.svc.UpdateSession(ctx, f.app.ID, "a", sids[p], SessionPatch{Pinned: &yes}, ""); err != nil {
			t.Fatal(err)
		}
		*f.clock = f.clock.Add(time.Second)
	}
	if got := order(); got != "c,b,d" {
		t.Fatalf("after pinning b then c: %s, want c,b,d", got)
	}
	if _, err := f.svc.UpdateSession(ctx, f.app.ID, "a", sids["c"], SessionPatch{Pinned: &no}, ""); err != nil {
		t.Fatal(err)
	}
	if got := order(); got != "b,d,c" {
		t.Fatalf("after unpinning c: %s, want b,d,c", got)
	}
	if _, err := f.svc.HideSession(ctx, f.app.ID, "a", sids["d"], ""); err != nil {
		t.Fatal(err)
	}
	if got := order(); got != "b,c" {
		t.Fatalf("after hiding d: %s", got)
	}
	if _, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "d", TargetID: "a", Type: 1, Content: text("back")}); err != nil {
		t.Fatal(err)
	}
	if got := order(); got != "b,d,c" {
		t.Fatalf("after d's next message: %s", got)
	}

	// Bad input: nothing changes.
	long := strings.Repeat("é", maxDraftBytes)
	for _, tc := range []struct {
		err error
		do  func() error
	}{
		{ErrInvalid, func() error {
			_, err := f.svc.UpdateSession(ctx, f.app.ID, "a", sids["b"], SessionPatch{}, "")
			return err
		}},
		{ErrInvalid, func() error {
			_, err := f.svc.UpdateSession(ctx, f.app.ID, "a", sids["b"], SessionPatch{Draft: &long}, "")
			return err
		}},
		{ErrNotFound, func() error { _, err := f.svc.HideSession(ctx, f.app.ID, "b", sids["b"], ""); return err }},
		{ErrInvalid, func() error { return f.svc.Block(ctx, f.app.ID, "a", nil) }},
		{ErrInvalid, func() error { return f.svc.Block(ctx, f.app.ID, "a", []string{"a"}) }},
		{ErrInvalid, func() error { return f.svc.Block(ctx, f.app.ID, "a", make([]string, maxBlockIDs+1)) }},
	} {
		if err := tc.do(); !errors.Is(err, tc.err) {
			t.Errorf("got %v, want %v", err, tc.err)
		}
	}
	if got := order(); got != "b,d,c" {
		t.Fatalf("refused changes changed the list: %s", got)
	}

	// Blocks: b may not write to a; a may write to b; groups are open.
	if err := f.svc.Block(ctx, f.app.ID, "a", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	sent := len(f.rec.sent)
	_, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "b", TargetID: "a", Type: 1, Content: text("no")})
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("blocked send: %v", err)
	}
	if code, status, msg := Describe(err); code != CodeOther || status != 403 || !strings.HasPrefix(msg, "blocked") {
		t.Fatalf("Describe(blocked) = %d %d %q", code, status, msg)
	}
	if len(f.rec.sent) != sent {
		t.Fatal("a refused send was delivered")
	}
	if _, err := f.svc.SendPrivate(ctx, SendInput{AppID: f.app.ID, SenderID: "a", TargetID: "b", Type: 1, Content: text("yes")}); err != nil {
		t.Fatalf("the blocker's send: %v", err)
	}

	// Mutes mark exactly the muted recipients, in a group of 30 where 20 muted.
	users := make([]string, 30)
	for i := range users {
		users[i] = fmt.Sprintf("g%02d", i)
	}
	if err := f.svc.CreateGroup(ctx, f.app.ID, "big", "Big", "", users); err != nil {
		t.Fatal(err)
	}
	for _, u := range users[:20] {
		ss, _ := f.svc.Sessions(ctx, f.app.ID, u)
		if _, err := f.svc.UpdateSession(ctx, f.app.ID, u, ss[0].SID, SessionPatch{Muted: &yes}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.SendGroup(ctx, SendInput{AppID: f.app.ID, SenderID: "g29", TargetID: "big", Type: 1, Content: text("x")}); err != nil {
		t.Fatal(err)
	}
	d := f.rec.sent[len(f.rec.sent)-1]
	for _, r := range d.Recipients {
		if want := r.UserID < "g20"; r.Muted != want {
			t.Fatalf("%s muted=%v", r.UserID, r.Muted)
		}
	}
	if tot, err := f.svc.UnreadTotal(ctx, f.app.ID, "g00"); err != nil || tot.Unread != 0 {
		t.Fatalf("a muted member's total: %+v %v", tot, err)
	}
	if tot, err := f.svc.UnreadTotal(ctx, f.app.ID, "g25"); err != nil || tot.Unread != 1 {
		t.Fatalf("an unmuted member's total: %+v %v", tot, err)
	}
}
