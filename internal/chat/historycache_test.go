package chat

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/store/sqlite"
)

// TestHistoryCacheNeverStale: two services on one store are two nodes. Node
// a reads bob's history and sync (twice, so the pages are cached and the
// second read is served from the cache); every change made on node b
// (edit, reaction, recall, delete for me, send, clear, a new name) shows in
// node a's next read. Changes reach a only through the store (its version
// check) and, for a name, ForgetUser, as the users topic calls it.
func TestHistoryCacheNeverStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, b := New(st, Options{}), New(st, Options{})
	app, err := a.CreateApp(ctx, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := a.GetToken(ctx, app, u, "Name "+u, ""); err != nil {
			t.Fatal(err)
		}
	}
	send := func(svc *Service, txt string) SendResult {
		t.Helper()
		r, err := svc.SendPrivate(ctx, SendInput{AppID: app.ID, SenderID: "alice", TargetID: "bob", Type: TypeText, Content: text(txt)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	m1, m2 := send(a, "one"), send(a, "two")
	alice := ConvRef{SID: m1.SendSession.SID}
	ss, err := a.Sessions(ctx, app.ID, "bob")
	if err != nil || len(ss) != 1 {
		t.Fatal(ss, err)
	}
	bob := ConvRef{SID: ss[0].SID}
	// views are what node a answers: the newest page, a page before the
	// newest message, and a sync from the start.
	views := func() map[string][]Message {
		t.Helper()
		out := map[string][]Message{}
		for range 2 {
			h, err := a.HistoryBySID(ctx, app.ID, "bob", bob.SID, Page{Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			out["newest page"] = h
			if len(h) > 0 {
				if out["page before the newest"], err = a.HistoryBySID(ctx, app.ID, "bob", bob.SID, Page{Limit: 50, LastMsgID: h[0].MsgID}); err != nil {
					t.Fatal(err)
				}
			}
			if out["sync"], err = a.Sync(ctx, app.ID, "bob", bob.SID, 0, 50); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	views()
	if hits, _ := a.HistoryCacheStats(); hits == 0 {
		t.Fatal("the second reads were not served from the cache: this test would prove nothing")
	}
	find := func(ms []Message, id string) *Message {
		for i := range ms {
			if ms[i].MsgID == id {
				return &ms[i]
			}
		}
		return nil
	}
	var m3 SendResult
	steps := []struct {
		name  string
		do    func() error
		check func(ms []Message) bool // true when the change shows
		views []string                // the views that show m1 or m3
	}{
		{"edit", func() error {
			_, err := b.Edit(ctx, Actor{AppID: app.ID, UserID: "alice"}, alice, m1.MsgID, text("one, edited"))
			return err
		},
			func(ms []Message) bool {
				m := find(ms, m1.MsgID)
				return m != nil && strings.Contains(string(m.Content), "edited")
			}, nil},
		{"reaction", func() error {
			_, err := b.React(ctx, Actor{AppID: app.ID, UserID: "bob"}, bob, m1.MsgID, "👍", true)
			return err
		},
			func(ms []Message) bool {
				m := find(ms, m1.MsgID)
				return m != nil && len(m.Reactions) == 1 && m.Reactions[0].Me
			}, nil},
		{"recall", func() error {
			_, err := b.Recall(ctx, Actor{AppID: app.ID, UserID: "alice"}, alice, m1.MsgID)
			return err
		},
			func(ms []Message) bool { m := find(ms, m1.MsgID); return m != nil && m.Recalled }, nil},
		{"send", func() error { m3 = send(b, "three"); return nil },
			func(ms []Message) bool { return find(ms, m3.MsgID) != nil }, []string{"newest page", "sync"}},
		{"new name", func() error {
			name := "Alice Renamed"
			_, err := b.UpdateUser(ctx, app.ID, "alice", ProfileInput{Name: &name})
			a.ForgetUser(app.ID, "alice") // what the users topic does on node a
			return err
		}, func(ms []Message) bool {
			m := find(ms, m1.MsgID)
			return m != nil && m.SendUser.Name == "Alice Renamed"
		}, nil},
		{"delete for me", func() error {
			_, err := b.DeleteForMe(ctx, Actor{AppID: app.ID, UserID: "bob"}, bob, m2.MsgID)
			return err
		},
			func(ms []Message) bool { return find(ms, m2.MsgID) == nil }, nil},
		{"clear", func() error { _, err := b.ClearSession(ctx, Actor{AppID: app.ID, UserID: "bob"}, bob); return err },
			func(ms []Message) bool { return len(ms) == 0 }, nil},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s on node b: %v", st.name, err)
		}
		got := views()
		names := st.views
		if names == nil {
			names = []string{"newest page", "sync"}
			if st.name != "clear" && st.name != "send" {
				names = append(names, "page before the newest")
			}
		}
		for _, v := range names {
			if !st.check(got[v]) {
				t.Errorf("after %s on node b, node a's %s is stale: %+v", st.name, v, got[v])
			}
		}
	}
}
