package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/chatd/chatd/internal/store"
)

// lifecycleTests cover store.Lifecycle and the reply and mention fields of Send.
var lifecycleTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"SendReplyMentions", testSendReplyMentions},
	{"SendReplyMentionsBatch", testSendReplyMentionsBatch},
	{"UpdateMessageEdit", testUpdateMessageEdit},
	{"UpdateMessageUnchanged", testUpdateMessageUnchanged},
	{"UpdateMessageRecall", testUpdateMessageRecall},
	{"UpdateMessageConcurrent", testUpdateMessageConcurrent},
	{"Reactions", testReactions},
	{"ReactionsSampleAndOrder", testReactionsSampleAndOrder},
	{"Hide", testHide},
	{"MessagesBySeq", testMessagesBySeq},
	{"LifecycleVisibility", testLifecycleVisibility},
}

// A member who joined later sees neither the changes nor the quotes of
// messages from before (see Visibility), nor may a stranger read them.
func testLifecycleVisibility(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "alice")
	old := send(t, s, g.ID, "alice", 1)
	if _, err := s.UpdateMessage(ctx, g.ID, old.ID, edit("e")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMembers(ctx, app, "g", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	fresh := send(t, s, g.ID, "alice", 2)
	if _, err := s.UpdateMessage(ctx, g.ID, fresh.ID, edit("f")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user string
		want []int64
	}{{"alice", []int64{1, 2}}, {"bob", []int64{2}}, {"mallory", nil}} {
		ch, err := s.Changes(ctx, g.ID, tc.user, 0, 10)
		if err != nil || !slices.Equal(seqs(ch), tc.want) && !(len(ch) == 0 && tc.want == nil) {
			t.Errorf("Changes(%s) = %v, %v; want %v", tc.user, seqs(ch), err, tc.want)
		}
		q, err := s.MessagesBySeq(ctx, g.ID, tc.user, []int64{1, 2})
		if err != nil || !slices.Equal(seqs(q), tc.want) && !(len(q) == 0 && tc.want == nil) {
			t.Errorf("MessagesBySeq(%s) = %v, %v; want %v", tc.user, seqs(q), err, tc.want)
		}
	}
}

func sendWith(t *testing.T, s store.Store, n store.NewMessage) store.Message {
	t.Helper()
	if n.Type == 0 {
		n.Type = 1
	}
	if n.Content == nil {
		n.Content = json.RawMessage(`{"content":"hi"}`)
	}
	m, _, err := s.Send(ctx, n)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return m
}

func messageByID(t *testing.T, s store.Store, conv, id string) store.Message {
	t.Helper()
	m, err := s.MessageByID(ctx, conv, id)
	if err != nil {
		t.Fatalf("MessageByID(%s): %v", id, err)
	}
	return m
}

func testSendReplyMentions(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "alice", "bob", "carol")
	first := send(t, s, g.ID, "alice", 1)
	reply := sendWith(t, s, store.NewMessage{ConversationID: g.ID, SenderID: "bob", ReplySeq: first.Seq,
		Mentions: []string{"alice", "alice", "carol"}, At: at(2)})
	if reply.ReplySeq != first.Seq || !slices.Equal(reply.Meta.Mentions, []string{"alice", "alice", "carol"}) {
		t.Fatalf("Send returned reply %d mentions %v", reply.ReplySeq, reply.Meta.Mentions)
	}
	all := sendWith(t, s, store.NewMessage{ConversationID: g.ID, SenderID: "carol", MentionAll: true, At: at(3)})
	got := messageByID(t, s, g.ID, reply.ID)
	if got.ReplySeq != first.Seq || len(got.Meta.Mentions) != 3 || got.Version != 0 {
		t.Fatalf("stored reply = %+v", got)
	}
	if m := messageByID(t, s, g.ID, all.ID); !m.Meta.MentionAll {
		t.Fatalf("stored @all = %+v", m.Meta)
	}
	plain := messageByID(t, s, g.ID, first.ID)
	if plain.ReplySeq != 0 || !plain.Meta.IsZero() {
		t.Fatalf("plain message has %d %+v", plain.ReplySeq, plain.Meta)
	}
	// alice: named twice (counted once) + @all; bob: only @all; carol:
	// named, but she has sent since, which read it.
	for user, want := range map[string]int64{"alice": 2, "bob": 1, "carol": 0} {
		if got := session(t, s, g.ID, user).MentionedUnread; got != want {
			t.Errorf("%s mentionedUnread = %d, want %d", user, got, want)
		}
	}
	if _, err := s.MarkRead(ctx, g.ID, "alice", -1); err != nil {
		t.Fatal(err)
	}
	ss, err := s.Sessions(ctx, app, "alice")
	if err != nil || len(ss) != 1 || ss[0].MentionedUnread != 0 {
		t.Fatalf("Sessions after read = %+v, %v", ss, err)
	}
}

// Replies and mentions among concurrent plain sends, which the backends
// commit together.
func testSendReplyMentionsBatch(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "alice", "bob")
	var wg sync.WaitGroup
	res := make([]store.Message, 40)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := store.NewMessage{ConversationID: g.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`{}`)}
			if i%2 == 1 {
				n.SenderID, n.ReplySeq, n.Mentions = "bob", 1, []string{"alice"}
			}
			m, _, err := s.Send(ctx, n)
			if err != nil {
				t.Errorf("Send: %v", err)
			}
			res[i] = m
		}()
	}
	wg.Wait()
	hist, err := s.History(ctx, g.ID, "alice", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	replies := 0
	for _, m := range hist {
		if m.SenderID == "bob" {
			if m.ReplySeq != 1 || !slices.Equal(m.Meta.Mentions, []string{"alice"}) {
				t.Fatalf("bob's message %d: reply %d mentions %v", m.Seq, m.ReplySeq, m.Meta.Mentions)
			}
			replies++
		} else if m.ReplySeq != 0 || !m.Meta.IsZero() {
			t.Fatalf("alice's message %d has extras", m.Seq)
		}
	}
	if replies != 20 {
		t.Fatalf("%d replies, want 20", replies)
	}
	alice := session(t, s, g.ID, "alice")
	var want int64
	for _, m := range hist {
		if m.SenderID == "bob" && m.Seq > alice.ReadSeq {
			want++
		}
	}
	if alice.MentionedUnread != want {
		t.Fatalf("alice mentionedUnread = %d, want %d", alice.MentionedUnread, want)
	}
}

func edit(text string) func(store.MessageTx, *store.Message) error {
	return func(_ store.MessageTx, m *store.Message) error {
		m.Content = json.RawMessage(fmt.Sprintf(`{"content":%q}`, text))
		m.Meta.EditCount++
		m.Meta.EditedAt = 1
		return nil
	}
}

func testUpdateMessageEdit(t *testing.T, s store.Store) {
	_, c, msgs := seed(t, s, 5)
	before := conv(t, s, c.ID)
	unread := session(t, s, c.ID, "bob").Unread()
	m, err := s.UpdateMessage(ctx, c.ID, msgs[1].ID, edit("fixed"))
	if err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	if m.Version != 1 || m.Seq != msgs[1].Seq || string(m.Content) != `{"content":"fixed"}` || m.Meta.EditCount != 1 {
		t.Fatalf("UpdateMessage returned %+v", m)
	}
	m2, err := s.UpdateMessage(ctx, c.ID, msgs[3].ID, edit("again"))
	if err != nil || m2.Version != 2 {
		t.Fatalf("second UpdateMessage: version %d, %v", m2.Version, err)
	}
	if ss := session(t, s, c.ID, "bob"); ss.ChangeSeq != 2 {
		t.Fatalf("session change seq %d, want 2", ss.ChangeSeq)
	}
	got := messageByID(t, s, c.ID, msgs[1].ID)
	if got.Version != 1 || string(got.Content) != `{"content":"fixed"}` || got.Meta.EditCount != 1 || got.SenderName != "Alice" {
		t.Fatalf("stored %+v", got)
	}
	// Seq order, last seq and unread are untouched.
	if after := conv(t, s, c.ID); after.LastSeq != before.LastSeq {
		t.Fatalf("last seq %d → %d", before.LastSeq, after.LastSeq)
	}
	if u := session(t, s, c.ID, "bob").Unread(); u != unread {
		t.Fatalf("unread %d → %d", unread, u)
	}
	hist, _ := s.History(ctx, c.ID, "alice", 0, 10)
	if !slices.Equal(seqs(hist), seqRange(5, 1)) {
		t.Fatalf("history seqs %v", seqs(hist))
	}
	for _, tc := range []struct {
		after int64
		want  []int64 // seqs, in version order
	}{{0, []int64{2, 4}}, {1, []int64{4}}, {2, nil}, {-5, []int64{2, 4}}} {
		ch, err := s.Changes(ctx, c.ID, "alice", tc.after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seqs(ch), tc.want) && !(len(ch) == 0 && tc.want == nil) {
			t.Errorf("Changes(%d) = %v, want %v", tc.after, seqs(ch), tc.want)
		}
	}
	if ch, _ := s.Changes(ctx, c.ID, "alice", 0, 1); !slices.Equal(seqs(ch), []int64{2}) {
		t.Errorf("Changes limit 1 = %v", seqs(ch))
	}
	_, err = s.UpdateMessage(ctx, c.ID, store.NewID(), edit("x"))
	wantErr(t, "UpdateMessage(unknown)", err, store.ErrNotFound)
	_, err = s.UpdateMessage(ctx, store.NewID(), msgs[1].ID, edit("x"))
	wantErr(t, "UpdateMessage(other conversation)", err, store.ErrNotFound)
}

func testUpdateMessageUnchanged(t *testing.T, s store.Store) {
	_, c, msgs := seed(t, s, 2)
	refuse := errors.New("refused")
	for _, want := range []error{store.ErrUnchanged, refuse} {
		m, err := s.UpdateMessage(ctx, c.ID, msgs[0].ID, func(_ store.MessageTx, m *store.Message) error {
			m.Content = json.RawMessage(`{"content":"lost"}`)
			return fmt.Errorf("callback: %w", want)
		})
		wantErr(t, "UpdateMessage", err, want)
		if want == store.ErrUnchanged && (m.ID != msgs[0].ID || string(m.Content) != string(msgs[0].Content)) {
			t.Fatalf("unchanged returned %+v, want the current message", m)
		}
	}
	if got := messageByID(t, s, c.ID, msgs[0].ID); got.Version != 0 || string(got.Content) != string(msgs[0].Content) {
		t.Fatalf("a refused update wrote %+v", got)
	}
	if ch, _ := s.Changes(ctx, c.ID, "alice", 0, 10); len(ch) != 0 {
		t.Fatalf("Changes = %v", seqs(ch))
	}
}

func testUpdateMessageRecall(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "alice", "bob")
	m := sendWith(t, s, store.NewMessage{ConversationID: g.ID, SenderID: "alice", Mentions: []string{"bob"},
		Content: json.RawMessage(`{"content":"secret"}`), At: at(1)})
	if n := session(t, s, g.ID, "bob").MentionedUnread; n != 1 {
		t.Fatalf("mentionedUnread = %d", n)
	}
	_, err := s.UpdateMessage(ctx, g.ID, m.ID, func(tx store.MessageTx, m *store.Message) error {
		if _, err := tx.SetReaction(ctx, "bob", "👍", true); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.UpdateMessage(ctx, g.ID, m.ID, func(tx store.MessageTx, m *store.Message) error {
		m.Content = store.RecalledContent
		m.Meta = store.MessageMeta{RecalledBy: "alice", RecalledAt: 5}
		return tx.Forget(ctx)
	})
	if err != nil || got.Version != 2 || !got.Meta.Recalled() {
		t.Fatalf("recall = %+v, %v", got, err)
	}
	stored := messageByID(t, s, g.ID, m.ID)
	if string(stored.Content) != string(store.RecalledContent) || stored.Meta.RecalledBy != "alice" || len(stored.Meta.Mentions) != 0 {
		t.Fatalf("stored after recall %+v", stored)
	}
	if n := session(t, s, g.ID, "bob").MentionedUnread; n != 0 {
		t.Fatalf("mentionedUnread after recall = %d", n)
	}
	if r, _ := s.Reacted(ctx, g.ID, "bob", []int64{m.Seq}); len(r) != 0 {
		t.Fatalf("reactions after recall: %v", r)
	}
	if ss := session(t, s, g.ID, "bob"); ss.LastMsg == nil || string(ss.LastMsg.Content) != string(store.RecalledContent) {
		t.Fatalf("session last message after recall: %+v", ss.LastMsg)
	}
}

// Concurrent changes of one conversation get distinct versions 1..n, and
// the latest version of each message is what Changes reports.
func testUpdateMessageConcurrent(t *testing.T, s store.Store) {
	_, c, msgs := seed(t, s, 4)
	const n = 40
	var wg sync.WaitGroup
	versions := make([]int64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%5 == 0 { // sends interleave with the changes
				if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "bob", Type: 1, Content: json.RawMessage(`{}`)}); err != nil {
					t.Errorf("Send: %v", err)
				}
			}
			m, err := s.UpdateMessage(ctx, c.ID, msgs[i%len(msgs)].ID, func(_ store.MessageTx, m *store.Message) error {
				m.Meta.EditCount++
				return nil
			})
			if err != nil {
				t.Errorf("UpdateMessage: %v", err)
			}
			versions[i] = m.Version
		}()
	}
	wg.Wait()
	slices.Sort(versions)
	if !slices.Equal(versions, seqRange(1, n)) {
		t.Fatalf("versions %v", versions)
	}
	ch, err := s.Changes(ctx, c.ID, "alice", 0, 100)
	if err != nil || len(ch) != len(msgs) {
		t.Fatalf("Changes = %d messages, %v", len(ch), err)
	}
	total := 0
	for i, m := range ch {
		total += m.Meta.EditCount
		if i > 0 && m.Version <= ch[i-1].Version {
			t.Fatalf("Changes out of version order")
		}
	}
	if total != n || ch[len(ch)-1].Version != n {
		t.Fatalf("edit counts add up to %d, last version %d", total, ch[len(ch)-1].Version)
	}
}

func testReactions(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "alice", "bob", "carol")
	m := send(t, s, g.ID, "alice", 1)
	other := send(t, s, g.ID, "alice", 2)
	react := func(user, emoji string, on, wantChanged bool) store.Message {
		t.Helper()
		got, err := s.UpdateMessage(ctx, g.ID, m.ID, func(tx store.MessageTx, m *store.Message) error {
			changed, err := tx.SetReaction(ctx, user, emoji, on)
			if err != nil {
				return err
			}
			if changed != wantChanged {
				t.Errorf("SetReaction(%s, %s, %v) changed = %v", user, emoji, on, changed)
			}
			if !changed {
				return store.ErrUnchanged
			}
			m.Meta.Reactions, err = tx.Reactions(ctx)
			return err
		})
		if err != nil && !errors.Is(err, store.ErrUnchanged) {
			t.Fatal(err)
		}
		return got
	}
	react("bob", "👍", true, true)
	react("bob", "👍", true, false) // twice: harmless
	react("carol", "👍", true, true)
	got := react("carol", "❤️", true, true)
	want := []store.Reaction{{Emoji: "👍", Count: 2, Users: []string{"bob", "carol"}}, {Emoji: "❤️", Count: 1, Users: []string{"carol"}}}
	if fmt.Sprint(got.Meta.Reactions) != fmt.Sprint(want) || got.Version != 3 {
		t.Fatalf("reactions %v version %d, want %v version 3", got.Meta.Reactions, got.Version, want)
	}
	if stored := messageByID(t, s, g.ID, m.ID); fmt.Sprint(stored.Meta.Reactions) != fmt.Sprint(want) {
		t.Fatalf("stored reactions %v", stored.Meta.Reactions)
	}
	r, err := s.Reacted(ctx, g.ID, "carol", []int64{m.Seq, other.Seq})
	if err != nil || fmt.Sprint(r) != fmt.Sprint(map[int64][]string{m.Seq: {"👍", "❤️"}}) {
		t.Fatalf("Reacted(carol) = %v, %v", r, err)
	}
	got = react("bob", "👍", false, true)
	react("bob", "👍", false, false)
	if want := "[{👍 1 [carol]} {❤️ 1 [carol]}]"; fmt.Sprint(got.Meta.Reactions) != want {
		t.Fatalf("after unreact %v, want %v", got.Meta.Reactions, want)
	}
	if r, _ := s.Reacted(ctx, g.ID, "bob", []int64{m.Seq}); len(r) != 0 {
		t.Fatalf("Reacted(bob) = %v", r)
	}
}

// testReactionsSampleAndOrder: the aggregate a reaction stores equals the
// one its rows give, also when a removal moves an emoji's place or must
// bring a user into a full sample (backends may derive it from the previous
// aggregate: store.NextReactions).
func testReactionsSampleAndOrder(t *testing.T, s store.Store) {
	app := newApp(t, s)
	users := []string{"alice"}
	for i := range store.ReactionSample + 2 {
		users = append(users, fmt.Sprintf("u%02d", i))
	}
	g := upsertGroup(t, s, app, "g", users...)
	m := send(t, s, g.ID, "alice", 1)
	var rows [][2]string // the reactions in the order they were made
	react := func(user, emoji string, on bool) {
		t.Helper()
		got, err := s.UpdateMessage(ctx, g.ID, m.ID, func(tx store.MessageTx, m *store.Message) error {
			if _, err := tx.SetReaction(ctx, user, emoji, on); err != nil {
				return err
			}
			var err error
			m.Meta.Reactions, err = tx.Reactions(ctx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.Index(rows, [2]string{emoji, user}); on {
			rows = append(rows, [2]string{emoji, user})
		} else {
			rows = slices.Delete(rows, i, i+1)
		}
		want := store.AggregateReactions(rows)
		if fmt.Sprint(got.Meta.Reactions) != fmt.Sprint(want) {
			t.Fatalf("after %s %s %v: %v, want %v", user, emoji, on, got.Meta.Reactions, want)
		}
		if stored := messageByID(t, s, g.ID, m.ID); fmt.Sprint(stored.Meta.Reactions) != fmt.Sprint(want) {
			t.Fatalf("after %s %s %v: stored %v, want %v", user, emoji, on, stored.Meta.Reactions, want)
		}
	}
	for _, u := range users[1:] {
		react(u, "👍", true) // past the sample: the count grows, the sample not
	}
	react("alice", "❤️", true)
	react("u03", "👍", false) // a sampled user leaves a full sample: the next comes in
	react(users[len(users)-1], "👍", false)
	react("alice", "😂", true)
	react("u00", "👍", false) // 👍's first user: its place stays (u01 is still before ❤️)
	react("alice", "❤️", false)
	react("alice", "❤️", true) // back, now last
	for _, u := range users[3:] {
		if u != "u03" && u != users[len(users)-1] {
			react(u, "👍", false)
		}
	}
	react("u01", "👍", false)
	react("alice", "👍", true) // 👍 again, after ❤️ and 😂
}

func testHide(t *testing.T, s store.Store) {
	_, c, msgs := seed(t, s, 5)
	aliceRead := session(t, s, c.ID, "alice").ReadSeq
	if _, err := s.UpdateMessage(ctx, c.ID, msgs[0].ID, edit("e")); err != nil {
		t.Fatal(err)
	}
	h, err := s.Hide(ctx, c.ID, "bob", 3, 3)
	if err != nil || h.Version != 2 || h.FromSeq != 3 || h.ToSeq != 3 {
		t.Fatalf("Hide one = %+v, %v", h, err)
	}
	if got := session(t, s, c.ID, "bob"); got.LastHidden {
		t.Fatal("hiding seq 3 hid the last message")
	}
	if got := session(t, s, c.ID, "bob"); got.ReadSeq != msgs[2].Seq { // bob sent seq 3: read up to it
		t.Fatalf("hiding one message moved the read mark to %d", got.ReadSeq)
	}
	all, err := s.Hide(ctx, c.ID, "bob", 1, -1)
	if err != nil || all.Version != 3 || all.ToSeq != 5 {
		t.Fatalf("Hide all = %+v, %v", all, err)
	}
	if got := session(t, s, c.ID, "bob"); got.ReadSeq != 5 || got.Unread() != 0 || !got.LastHidden {
		t.Fatalf("clear left read %d, last hidden %v", got.ReadSeq, got.LastHidden)
	}
	if ss, err := s.Sessions(ctx, c.AppID, "alice"); err != nil || ss[0].LastHidden {
		t.Fatalf("bob's clear hid alice's last message: %+v, %v", ss, err)
	}
	if got := session(t, s, c.ID, "alice"); got.ReadSeq != aliceRead {
		t.Fatalf("bob's clear moved alice's read mark to %d", got.ReadSeq)
	}
	for _, tc := range []struct {
		user  string
		after int64
		want  []int64
	}{{"bob", 0, []int64{2, 3}}, {"bob", 2, []int64{3}}, {"bob", 3, nil}, {"alice", 0, nil}} {
		hs, err := s.HiddenRanges(ctx, c.ID, tc.user, tc.after)
		if err != nil {
			t.Fatal(err)
		}
		var vs []int64
		for _, h := range hs {
			vs = append(vs, h.Version)
		}
		if !slices.Equal(vs, tc.want) {
			t.Errorf("HiddenRanges(%s, %d) versions %v, want %v", tc.user, tc.after, vs, tc.want)
		}
	}
	if m, _ := s.UpdateMessage(ctx, c.ID, msgs[1].ID, edit("f")); m.Version != 4 {
		t.Fatalf("a change after hides got version %d, want 4", m.Version)
	}
	_, err = s.Hide(ctx, c.ID, "mallory", 1, 1)
	wantErr(t, "Hide(non-member)", err, store.ErrNotMember)
	_, err = s.Hide(ctx, store.NewID(), "bob", 1, 1)
	wantErr(t, "Hide(unknown conversation)", err, store.ErrNotMember)
}

func testMessagesBySeq(t *testing.T, s store.Store) {
	app, c, msgs := seed(t, s, 5)
	if id, err := s.MessageConversation(ctx, app, msgs[2].ID); err != nil || id != c.ID {
		t.Fatalf("MessageConversation = %q, %v", id, err)
	}
	_, err := s.MessageConversation(ctx, newApp(t, s), msgs[2].ID)
	wantErr(t, "MessageConversation(other app)", err, store.ErrNotFound)
	_, err = s.MessageConversation(ctx, app, store.NewID())
	wantErr(t, "MessageConversation(unknown)", err, store.ErrNotFound)
	got, err := s.MessagesBySeq(ctx, c.ID, "alice", []int64{4, 2, 99})
	if err != nil || !slices.Equal(seqs(got), []int64{2, 4}) || got[0].SenderName != "Alice" {
		t.Fatalf("MessagesBySeq = %v, %v", seqs(got), err)
	}
	if got, err := s.MessagesBySeq(ctx, c.ID, "alice", nil); err != nil || len(got) != 0 {
		t.Fatalf("MessagesBySeq(none) = %v, %v", got, err)
	}
}
