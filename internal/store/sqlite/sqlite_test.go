package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/storetest"
)

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "data", "chatd.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// The suite must also pass when every send commits alone.
func TestConformanceNoBatching(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := open(context.Background(), filepath.Join(t.TempDir(), "chatd.db"), 1)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "chatd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Name: "a", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.OpenPrivate(ctx, app, "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`{"t":"é"}`), ClientMsgID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`1`)}); err == nil {
		t.Fatal("Send after Close succeeded")
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.App(ctx, app); err != nil {
		t.Fatalf("app lost: %v", err)
	}
	got, err := s.MessageByID(ctx, c.ID, m.ID)
	if err != nil || string(got.Content) != `{"t":"é"}` || got.Seq != 1 {
		t.Fatalf("message after reopen = %+v, %v", got, err)
	}
	again, dup, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`2`), ClientMsgID: "x"})
	if err != nil || !dup || again.ID != m.ID {
		t.Fatalf("client id forgotten after reopen: %+v, %v, %v", again, dup, err)
	}
	next, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "bob", Type: 1, Content: json.RawMessage(`3`)})
	if err != nil || next.Seq != 2 {
		t.Fatalf("seq after reopen = %d, %v; want 2", next.Seq, err)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTemp(t)
	version := func() int {
		var v int
		if err := s.r.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version(); v != len(migrations) {
		t.Fatalf("user_version = %d, want %d", v, len(migrations))
	}
	for range 2 {
		if err := migrate(ctx, s.w); err != nil {
			t.Fatalf("migrate again: %v", err)
		}
	}
	if v := version(); v != len(migrations) {
		t.Fatalf("user_version = %d after re-running, want %d", v, len(migrations))
	}
	// A file from a newer chatd is refused rather than misread.
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, s.w); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("migrate on a newer schema: %v", err)
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTemp(t)
	for _, db := range []struct {
		name      string
		queryOnly int
	}{{"writer", 0}, {"reader", 1}} {
		h := s.w
		if db.name == "reader" {
			h = s.r
		}
		var mode string
		var sync, fk, busy, qo int
		if err := h.QueryRowContext(ctx, `SELECT * FROM pragma_journal_mode, pragma_synchronous, pragma_foreign_keys, pragma_busy_timeout, pragma_query_only`).
			Scan(&mode, &sync, &fk, &busy, &qo); err != nil {
			t.Fatalf("%s: %v", db.name, err)
		}
		if mode != "wal" || sync != 1 || fk != 1 || busy != busyTimeoutMS || qo != db.queryOnly {
			t.Fatalf("%s: journal_mode=%s synchronous=%d foreign_keys=%d busy_timeout=%d query_only=%d",
				db.name, mode, sync, fk, busy, qo)
		}
	}
	if _, err := s.r.ExecContext(ctx, `DELETE FROM apps`); err == nil {
		t.Fatal("a reader connection could write")
	}
	if got := s.w.Stats().MaxOpenConnections; got != 1 {
		t.Fatalf("writer MaxOpenConnections = %d, want 1", got)
	}
}

// The hot reads must stay index lookups as the tables grow.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTemp(t)
	for _, tc := range []struct {
		name  string
		query string
		args  []any
		want  []string
	}{
		{"sessions", sessionsQuery, []any{"a", "u"}, []string{
			"SEARCH m USING INDEX members_by_user (app_id=? AND user_id=?)",
			"SEARCH c USING INDEX sqlite_autoindex_conversations_1 (id=?)",
			"SEARCH lm USING PRIMARY KEY (conversation_id=? AND seq=?)",
			"SEARCH pm USING PRIMARY KEY (conversation_id=?)",
			"SEARCH pu USING PRIMARY KEY (app_id=? AND user_id=?)",
		}},
		{"history", `SELECT ` + msgCols + `, u.name, u.avatar_uri` + msgFrom + `
			WHERE m.conversation_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?`, []any{"c", 10, 50}, []string{
			"SEARCH m USING PRIMARY KEY (conversation_id=? AND seq<?)",
		}},
		{"member by sid", `SELECT ` + memberCols + ` FROM members WHERE sid = ? AND app_id = ? AND user_id = ?`, []any{"s", "a", "u"}, []string{
			"(sid=?)",
		}},
		{"session by sid", sessionBySIDQuery, []any{"s", "a", "u"}, []string{
			"(sid=?)",
			"SEARCH c USING INDEX sqlite_autoindex_conversations_1 (id=?)",
		}},
		{"history page", `SELECT ` + pageCols + msgFrom + visibleFrom + ` AND m.seq < ? ORDER BY m.seq DESC LIMIT ?`,
			[]any{"u", "c", 10, 50}, []string{
				"SEARCH m USING PRIMARY KEY (conversation_id=? AND seq>? AND seq<?)",
			}},
		{"seq allocation of a batch", qAllocRows(4), make([]any, 16), []string{
			"SEARCH conversations USING INDEX sqlite_autoindex_conversations_1 (id=?)",
			"SEARCH members USING PRIMARY KEY (conversation_id=? AND user_id=?)",
		}},
		{"read marks of a batch", qOwnReadRows(4), make([]any, 12), []string{
			"SEARCH members USING PRIMARY KEY (conversation_id=? AND user_id=?)",
		}},
		{"client id of a send", qDup, []any{"c", "u", "k"}, []string{
			"SEARCH m USING INDEX messages_client_msg_id (conversation_id=? AND sender_id=? AND client_msg_id=?)",
			"SEARCH c USING INDEX sqlite_autoindex_conversations_1 (id=?)",
		}},
		{"members with their version", membersQuery, []any{"c"}, []string{
			"SEARCH c USING INDEX sqlite_autoindex_conversations_1 (id=?)",
			"SEARCH m USING PRIMARY KEY (conversation_id=?)",
		}},
	} {
		rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+tc.query, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "\n")
		for _, w := range tc.want {
			if !strings.Contains(joined, w) {
				t.Errorf("%s plan lacks %q:\n%s", tc.name, w, joined)
			}
		}
		if tc.query == membersQuery && strings.Contains(joined, "TEMP B-TREE") { // the primary key gives the order
			t.Errorf("%s plan sorts:\n%s", tc.name, joined)
		}
		for _, step := range plan {
			// Scanning the rows given in a VALUES clause is the point.
			if strings.Contains(step, "SCAN ") && !strings.HasSuffix(step, "VALUES CLAUSE") {
				t.Errorf("%s plan has a full scan:\n%s", tc.name, joined)
			}
		}
	}
}

// One failing send must not fail the others committed in the same batch.
func TestBatchIsolatesFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTemp(t)
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Name: "a", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.UpsertGroup(ctx, app, "g", "g", "", []string{"in"})
	if err != nil {
		t.Fatal(err)
	}
	// Build one batch by hand so the mix is committed together.
	type result struct {
		sender string
		seq    int64
		err    error
	}
	var batch []*sendReq
	for i := range 20 {
		sender := "in"
		if i%2 == 1 {
			sender = "out"
		}
		batch = append(batch, &sendReq{ctx: ctx, res: make(chan sendRes, 1),
			m: store.NewMessage{ConversationID: c.ID, SenderID: sender, Type: 1, Content: json.RawMessage(`1`), At: time.Now()}})
	}
	s.commitBatch(batch, nil)
	results := make(chan result, len(batch))
	for _, r := range batch {
		res := <-r.res
		results <- result{r.m.SenderID, res.msg.Seq, res.err}
	}
	close(results)
	var got []int64
	for r := range results {
		switch {
		case r.sender == "in" && r.err != nil:
			t.Fatalf("member's send failed: %v", r.err)
		case r.sender == "out" && !errors.Is(r.err, store.ErrNotMember):
			t.Fatalf("non-member's send: %v, want ErrNotMember", r.err)
		case r.sender == "in":
			got = append(got, r.seq)
		}
	}
	slices.Sort(got)
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(got, want) {
		t.Fatalf("seqs %v, want %v", got, want)
	}
}

func TestSendCanceledContext(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := s.Send(ctx, store.NewMessage{ConversationID: store.NewID(), SenderID: "a", Type: 1, Content: json.RawMessage(`1`)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a canceled context: %v", err)
	}
}

// Closing while senders are busy: every Send returns, and every message
// reported as stored is in the file afterwards.
func TestCloseDuringSends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Name: "a", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.UpsertGroup(ctx, app, "g", "g", "", []string{"u"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stored []int64
	var wg sync.WaitGroup
	started := make(chan struct{})
	var once sync.Once
	for range 16 {
		wg.Go(func() {
			for {
				m, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "u", Type: 1, Content: json.RawMessage(`1`)})
				if err != nil {
					if !errors.Is(err, errClosed) {
						t.Errorf("Send: %v", err)
					}
					return
				}
				mu.Lock()
				stored = append(stored, m.Seq)
				mu.Unlock()
				once.Do(func() { close(started) })
			}
		})
	}
	<-started
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Conversation(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(stored)
	if int64(len(stored)) != got.LastSeq || stored[len(stored)-1] != got.LastSeq {
		t.Fatalf("%d sends reported stored (last seq %d), file has last_seq %d", len(stored), stored[len(stored)-1], got.LastSeq)
	}
}

func TestOpenRejectsNonFiles(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", ":memory:", filepath.Join(t.TempDir(), "x.db?mode=ro")} {
		if s, err := Open(context.Background(), path); !errors.Is(err, store.ErrInvalid) {
			if err == nil {
				s.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrInvalid", path, err)
		}
	}
}

// TestBackgroundCheckpoint: the writer never checkpoints (no stall on the
// send path), and the background checkpointer copies committed pages into
// the database file, so the WAL does not keep everything.
func TestBackgroundCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before := fi.Size()
	if err := s.CreateApp(ctx, store.App{ID: store.NewID(), Name: "a", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 4000)
	for i := range 300 {
		if _, err := s.UpsertUser(ctx, store.User{AppID: "app", UserID: fmt.Sprint("u", i), Name: big, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > before+1<<20 {
			return // about 1.2 MB of users reached the database file
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes (was %d): nothing was checkpointed", fi.Size(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// batchCase is one request of a hand-built batch: conversation index,
// sender, client id.
type batchCase struct {
	conv   int
	sender string
	client string
}

// runBatch builds the conversations of TestGroupedBatchMatchesSavepoints in
// a new store (conversation 0: a group of a and b; 1: a group of c; 2: the
// private pair a–b with one message already sent by a with client id "old"),
// commits cases as one batch with commit, and returns the results and the
// stored state.
func runBatch(t *testing.T, cases []batchCase, commit func(s *Store, batch []*sendReq)) ([]sendRes, string) {
	t.Helper()
	ctx := context.Background()
	s := openTemp(t)
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Name: "a", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	g1, err := s.UpsertGroup(ctx, app, "g1", "g1", "", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	g2, err := s.UpsertGroup(ctx, app, "g2", "g2", "", []string{"c"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.OpenPrivate(ctx, app, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: p.ID, SenderID: "a", Type: 1, Content: json.RawMessage(`{"n":"old"}`), ClientMsgID: "old", At: time.UnixMilli(1_700_000_000_000)}); err != nil {
		t.Fatal(err)
	}
	convs := []store.Conversation{g1, g2, p}
	var batch []*sendReq
	for i, c := range cases {
		batch = append(batch, &sendReq{ctx: ctx, res: make(chan sendRes, 1), m: store.NewMessage{
			ConversationID: convs[c.conv].ID, SenderID: c.sender, Type: 1 + i%6,
			Content: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), ClientMsgID: c.client,
			At: time.UnixMilli(1_800_000_000_000 + int64(i%3)*1000)}})
	}
	commit(s, batch)
	res := make([]sendRes, len(batch))
	for i, r := range batch {
		res[i] = <-r.res
	}
	// The stored state, message ids left out (they are random).
	var b strings.Builder
	for _, c := range convs {
		got, err := s.Conversation(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "conv %s last_seq %d last_msg_at %d\n", c.Key, got.LastSeq, got.LastMsgAt.UnixMilli())
		ms, _, err := s.Members(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			fmt.Fprintf(&b, "  member %s read_seq %d\n", m.UserID, m.ReadSeq)
		}
		msgs, err := s.After(ctx, c.ID, ms[0].UserID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			fmt.Fprintf(&b, "  msg %d %s type %d %s client %q at %d\n", m.Seq, m.SenderID, m.Type, m.Content, m.ClientMsgID, m.CreatedAt.UnixMilli())
		}
	}
	return res, b.String()
}

// manyCases mixes every kind of request, n of them, in three conversations.
func manyCases(n int) []batchCase {
	var cs []batchCase
	for i := range n {
		c := batchCase{conv: i % 3, sender: []string{"a", "b", "c", "x"}[i%4]}
		if i%7 == 0 {
			c.client = fmt.Sprint("k", i%5)
		}
		cs = append(cs, c)
	}
	return cs
}

// TestGroupedBatchMatchesSavepoints: the grouped fast path (no savepoints,
// seqs allocated per conversation) answers every request and leaves the
// file exactly as one savepoint per send does, for batches mixing
// conversations, senders, non-members and client ids repeated within the
// batch or repeating a stored message.
func TestGroupedBatchMatchesSavepoints(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cases []batchCase
	}{
		{"one lone sender", []batchCase{{0, "a", ""}}},
		{"lone senders in several conversations", []batchCase{{0, "a", ""}, {1, "c", ""}, {0, "a", ""}, {2, "b", ""}, {1, "c", ""}}},
		{"two senders in one conversation", []batchCase{{0, "a", ""}, {0, "b", ""}, {0, "a", ""}, {0, "b", ""}}},
		{"lone non-member", []batchCase{{1, "a", ""}, {0, "a", ""}, {1, "a", ""}}},
		{"members and non-members", []batchCase{{0, "a", ""}, {0, "x", ""}, {0, "b", ""}, {0, "x", "k"}, {0, "a", ""}}},
		{"client ids", []batchCase{{0, "a", "k1"}, {0, "a", "k2"}, {0, "a", "k1"}, {0, "b", "k1"}, {0, "a", ""}, {0, "b", "k1"}}},
		{"repeat of a stored message", []batchCase{{2, "a", "old"}, {2, "a", "new"}, {2, "b", "old"}, {2, "a", "old"}}},
		{"non-member with a client id", []batchCase{{1, "a", "k"}, {1, "c", "k"}, {1, "a", "k"}}},
		{"more rows than a chunk", manyCases(150)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grouped, gotState := runBatch(t, tc.cases, func(s *Store, b []*sendReq) { s.commitBatch(b, nil) })
			each, wantState := runBatch(t, tc.cases, func(s *Store, b []*sendReq) {
				res := make([]sendRes, len(b))
				s.commitEach(context.Background(), b, res)
				for i, r := range b {
					r.res <- res[i]
				}
			})
			if gotState != wantState {
				t.Errorf("stored state\n%s\nwant (one savepoint per send)\n%s", gotState, wantState)
			}
			firstID := map[string]string{} // a client id's message id, within each run
			for i := range grouped {
				g, e := grouped[i], each[i]
				if errors.Is(g.err, store.ErrNotMember) != errors.Is(e.err, store.ErrNotMember) || (g.err == nil) != (e.err == nil) {
					t.Errorf("request %d: err %v; want %v", i, g.err, e.err)
					continue
				}
				if g.err != nil {
					continue
				}
				if g.dup != e.dup || g.msg.Seq != e.msg.Seq || g.msg.SenderID != e.msg.SenderID ||
					string(g.msg.Content) != string(e.msg.Content) || g.msg.ClientMsgID != e.msg.ClientMsgID ||
					!g.msg.CreatedAt.Equal(e.msg.CreatedAt) || !store.ValidID(g.msg.ID) {
					t.Errorf("request %d: %+v dup %v; want %+v dup %v", i, g.msg, g.dup, e.msg, e.dup)
				}
				if c := tc.cases[i]; c.client != "" {
					k := fmt.Sprint(c.conv, c.sender, c.client)
					if id, ok := firstID[k]; ok && id != g.msg.ID {
						t.Errorf("request %d repeats client id %q but answers message %s, not %s", i, c.client, g.msg.ID, id)
					}
					firstID[k] = g.msg.ID
				}
			}
		})
	}
}

// TestGroupedBatchFallsBack: when a statement of the grouped path fails,
// the batch is redone one savepoint per send, so only the sends at fault
// fail. Here a stray row takes seq 2 of a conversation, so its second and
// third sends collide; its first and the other conversation's succeed.
func TestGroupedBatchFallsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTemp(t)
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Name: "a", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	x, err := s.UpsertGroup(ctx, app, "x", "x", "", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	y, err := s.UpsertGroup(ctx, app, "y", "y", "", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, created_at)
		VALUES (?, 2, ?, 'a', 1, '{}', 0)`, x.ID, store.NewID()); err != nil {
		t.Fatal(err)
	}
	var batch []*sendReq
	for _, c := range []string{x.ID, x.ID, x.ID, y.ID} {
		batch = append(batch, &sendReq{ctx: ctx, res: make(chan sendRes, 1),
			m: store.NewMessage{ConversationID: c, SenderID: "a", Type: 1, Content: json.RawMessage(`{}`), At: time.Now()}})
	}
	s.commitBatch(batch, nil)
	var got []string
	for _, r := range batch {
		res := <-r.res
		if res.err != nil {
			got = append(got, "failed")
		} else {
			got = append(got, fmt.Sprint(res.msg.Seq))
		}
	}
	if want := []string{"1", "failed", "failed", "1"}; !slices.Equal(got, want) {
		t.Fatalf("results %v; want %v", got, want)
	}
	for _, c := range []store.Conversation{x, y} {
		if got, err := s.Conversation(ctx, c.ID); err != nil || got.LastSeq != 1 {
			t.Fatalf("%s: last_seq %d, %v; want 1", c.Key, got.LastSeq, err)
		}
	}
}

// TestMigrationPartialClientIndex: a file of schema 1 with messages is
// upgraded to the partial client id index, which still finds and guards
// client ids.
func TestMigrationPartialClientIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open(driverName, path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0], `PRAGMA user_version = 1`,
		`INSERT INTO conversations (id, app_id, type, key, last_seq, created_at) VALUES ('c', 'a', 2, 'g', 2, 0)`,
		`INSERT INTO members (conversation_id, app_id, user_id, sid, created_at) VALUES ('c', 'a', 'u', 's', 0)`,
		`INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, client_msg_id, created_at) VALUES
			('c', 1, 'm1', 'u', 1, '{}', 'k', 0), ('c', 2, 'm2', 'u', 1, '{}', NULL, 0)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var def string
	if err := s.r.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = 'messages_client_msg_id'`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(def, "WHERE client_msg_id IS NOT NULL") {
		t.Fatalf("index after the migration: %s", def)
	}
	// Migration 3: conversations start at members version 0.
	if ms, v, err := s.Members(ctx, "c"); err != nil || len(ms) != 1 || v != 0 {
		t.Fatalf("Members after the migrations: %+v at version %d, %v; want u at 0", ms, v, err)
	}
	m, dup, err := s.Send(ctx, store.NewMessage{ConversationID: "c", SenderID: "u", Type: 1, Content: json.RawMessage(`{}`), ClientMsgID: "k"})
	if err != nil || !dup || m.ID != "m1" || m.MembersVersion != 0 {
		t.Fatalf("resend of client id k: %s dup %v, %v; want m1 dup", m.ID, dup, err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, client_msg_id, created_at)
		VALUES ('c', 9, 'm9', 'u', 1, '{}', 'k', 0)`); err == nil {
		t.Fatal("a second message with client id k was accepted")
	}
	for i := range 2 {
		if _, dup, err := s.Send(ctx, store.NewMessage{ConversationID: "c", SenderID: "u", Type: 1, Content: json.RawMessage(`{}`)}); err != nil || dup {
			t.Fatalf("send %d without a client id: dup %v, %v", i, dup, err)
		}
	}
}

// TestWALBoundedUnderSteadySends: with sends committing back to back the WAL
// never starts over by itself; the writer's own checkpoint past walLimit
// keeps its file near the limit instead of growing with every send.
//
// Not parallel: the WAL's size depends on how sends batch, which other
// tests' load changes.
func TestWALBoundedUnderSteadySends(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   int64
		bounded bool
	}{
		{"trimmed past 256 KiB", 256 << 10, true},
		{"never trimmed", 1 << 62, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "chatd.db")
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.walLimit.Store(tc.limit)
			app := store.NewID()
			if err := s.CreateApp(ctx, store.App{ID: app, Name: "a", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			const senders, each = 8, 300
			users := make([]string, senders)
			for i := range users {
				users[i] = fmt.Sprint("u", i)
			}
			conv, err := s.UpsertGroup(ctx, app, "g", "G", "", users)
			if err != nil {
				t.Fatal(err)
			}
			content := []byte(`{"content":"` + strings.Repeat("x", 2000) + `"}`)
			var wg sync.WaitGroup
			for _, u := range users {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: conv.ID, SenderID: u, Type: 1, Content: content, At: time.Now()}); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			fi, err := os.Stat(path + "-wal")
			if err != nil {
				t.Fatal(err)
			}
			// 2,400 messages of 2 KB leave about 50 MB of WAL untrimmed;
			// trimmed, 10-20 MB were seen (with 4,800 messages too: it is
			// the most the WAL grows between two checkpoints).
			const bound = 24 << 20
			t.Logf("WAL file %d bytes", fi.Size())
			if got := fi.Size() <= bound; got != tc.bounded {
				t.Fatalf("WAL file %d bytes after %d sends; want within %d: %v", fi.Size(), senders*each, bound, tc.bounded)
			}
		})
	}
}
