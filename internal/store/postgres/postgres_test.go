package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/storetest"
	"github.com/chatd/chatd/internal/testenv"
)

// newSchema creates a uniquely named, empty schema, dropped when the test
// ends, and returns a URL whose search_path selects it.
func newSchema(tb testing.TB) (schemaURL, schema string) {
	tb.Helper()
	base := testenv.URL(tb, "CHATD_TEST_POSTGRES")
	var b [6]byte
	rand.Read(b[:])
	schema = "chatd_t_" + hex.EncodeToString(b[:])

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("connect for cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema: %v", err)
		}
	})
	return withParam(tb, base, "search_path", schema), schema
}

func withParam(tb testing.TB, raw, key, value string) string {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("CHATD_TEST_POSTGRES must be a postgres:// URL: %v", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func openTest(tb testing.TB) *Store { return openMode(tb, true) }

// openMode opens a store on a fresh schema, with or without group commit.
func openMode(tb testing.TB, batching bool) *Store {
	tb.Helper()
	u, _ := newSchema(tb)
	s, err := open(context.Background(), u, batching)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() }) // runs before the schema is dropped
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}

// The suite must also pass when every send commits alone.
func TestConformanceNoBatching(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openMode(t, false) })
}

func TestConcurrentMigration(t *testing.T) {
	t.Parallel()
	u, schema := newSchema(t)
	const nodes = 6
	stores := make([]*Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { stores[i], errs[i] = Open(context.Background(), u) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: Open: %v", i, err)
		}
		defer stores[i].Close()
	}
	ctx := context.Background()
	var versions []int
	rows, err := stores[0].pool.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	if want := seqTo(len(migrations)); !slices.Equal(versions, want) {
		t.Fatalf("schema_migrations = %v, want %v", versions, want)
	}
	// The tables went to the schema named in the URL.
	var n int
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = $1 AND table_name = ANY($2)`, schema,
		[]string{"apps", "users", "conversations", "members", "messages", "files", "schema_migrations"}).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Fatalf("%d chatd tables in schema %s, want 7", n, schema)
	}
	// Every node works on the one schema.
	app := store.NewID()
	if err := stores[1].CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[nodes-1].App(ctx, app); err != nil {
		t.Fatalf("App from another node: %v", err)
	}
}

func seqTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestOpenCreatesSchema(t *testing.T) {
	t.Parallel()
	u, schema := newSchema(t)
	// A schema that does not exist yet is created; drop the test's own
	// first to prove it.
	conn, err := pgx.Connect(context.Background(), testenv.URL(t, "CHATD_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), u)
	if err != nil {
		t.Fatalf("Open on a missing schema: %v", err)
	}
	defer s.Close()
	if err := s.CreateApp(context.Background(), store.App{ID: store.NewID()}); err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _ := newSchema(t)
	s, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Name: "kept", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.OpenPrivate(ctx, app, "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	sent, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1,
		Content: json.RawMessage(`{"text":"still here"}`), ClientMsgID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice"}); !errors.Is(err, errClosed) {
		t.Fatalf("Send after Close: %v, want errClosed", err)
	}

	s2, err := Open(ctx, u)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if a, err := s2.App(ctx, app); err != nil || a.Name != "kept" {
		t.Fatalf("App after reopen = %+v, %v", a, err)
	}
	got, dup, err := s2.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1,
		Content: json.RawMessage(`"retry"`), ClientMsgID: "k1"})
	if err != nil || !dup || got.ID != sent.ID || string(got.Content) != `{"text":"still here"}` {
		t.Fatalf("retry after reopen = %+v, %v, %v", got, dup, err)
	}
	next, _, err := s2.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "bob", Type: 1, Content: json.RawMessage(`2`)})
	if err != nil || next.Seq != 2 {
		t.Fatalf("send after reopen = %+v, %v; want seq 2", next, err)
	}
}

// TestBatchedSend drives 32 senders at one conversation (so batches form)
// with a few strangers and client-id retries mixed in: every good message
// gets its own seq, gapless, and the bad ones fail alone.
func TestBatchedSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	const senders, each = 32, 40
	users := make([]string, senders)
	for i := range users {
		users[i] = fmt.Sprintf("u%02d", i)
	}
	c, err := s.UpsertGroup(ctx, app, "hot", "hot", "", users)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	bySeq := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 3*senders)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				cid := fmt.Sprintf("%d-%d", g, i)
				for try := range 2 { // every message is retried once
					m, dup, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: users[g], Type: 1,
						Content: json.RawMessage(fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)), ClientMsgID: cid})
					if err != nil || dup != (try == 1) {
						errs <- fmt.Errorf("sender %d message %d try %d: dup %v, %v", g, i, try, dup, err)
						return
					}
					mu.Lock()
					if prev, ok := bySeq[m.Seq]; ok && prev != m.ID {
						mu.Unlock()
						errs <- fmt.Errorf("seq %d given to %s and %s", m.Seq, prev, m.ID)
						return
					}
					bySeq[m.Seq] = m.ID
					mu.Unlock()
				}
			}
		})
		// A stranger sending into the same batches.
		wg.Go(func() {
			for range 5 {
				_, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "stranger", Type: 1, Content: json.RawMessage(`0`)})
				if !errors.Is(err, store.ErrNotMember) {
					errs <- fmt.Errorf("stranger: %v, want ErrNotMember", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const n = senders * each
	if len(bySeq) != n {
		t.Fatalf("%d distinct seqs, want %d", len(bySeq), n)
	}
	all, err := s.After(ctx, c.ID, users[0], 0, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range all {
		if m.Seq != int64(i+1) || bySeq[m.Seq] != m.ID {
			t.Fatalf("stored message %d has seq %d id %s; want gapless seqs matching Send results", i, m.Seq, m.ID)
		}
	}
	if len(all) != n {
		t.Fatalf("%d stored messages, want %d", len(all), n)
	}
	if got, err := s.Conversation(ctx, c.ID); err != nil || got.LastSeq != n {
		t.Fatalf("LastSeq = %d, %v; want %d", got.LastSeq, err, n)
	}
}

// TestCloseUnderLoad closes the store while senders are busy: every Send
// reported stored is stored, and the rest fail with errClosed.
func TestCloseUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _ := newSchema(t)
	s, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	const senders = 16
	var convs []store.Conversation
	for i := range 4 {
		c, err := s.UpsertGroup(ctx, app, fmt.Sprint("g", i), "", "", []string{"a", "b", "c", "d"})
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, c)
	}
	var mu sync.Mutex
	var stored []store.Message
	var wg sync.WaitGroup
	started := make(chan struct{}, senders)
	errs := make(chan error, senders)
	for g := range senders {
		wg.Go(func() {
			for i := 0; ; i++ {
				m, _, err := s.Send(ctx, store.NewMessage{ConversationID: convs[g%len(convs)].ID, SenderID: "abcd"[g%4 : g%4+1],
					Type: 1, Content: json.RawMessage(fmt.Sprintf(`[%d,%d]`, g, i))})
				if i == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, errClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				stored = append(stored, m)
				mu.Unlock()
			}
		})
	}
	for range senders {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Send during Close: %v", err)
	}

	s2, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, m := range stored {
		got, err := s2.MessageByID(ctx, m.ConversationID, m.ID)
		if err != nil || got.Seq != m.Seq || string(got.Content) != string(m.Content) {
			t.Fatalf("reported stored %+v, found %+v, %v", m, got, err)
		}
	}
	total := 0
	for _, c := range convs {
		all, err := s2.After(ctx, c.ID, "a", 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range all {
			if m.Seq != int64(i+1) {
				t.Fatalf("conversation %s: seqs not gapless at %d", c.ID, i)
			}
		}
		total += len(all)
	}
	if total != len(stored) {
		t.Fatalf("%d messages stored, %d reported", total, len(stored))
	}
}

// TestSendCanceled: a Send whose context is already done fails and stores
// nothing.
func TestSendCanceled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, batching := range []bool{true, false} {
		s := openMode(t, batching)
		app := store.NewID()
		if err := s.CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
			t.Fatal(err)
		}
		c, err := s.OpenPrivate(ctx, app, "alice", "bob")
		if err != nil {
			t.Fatal(err)
		}
		done, cancel := context.WithCancel(ctx)
		cancel()
		for range 10 {
			_, _, err := s.Send(done, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`1`)})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("batching %v: Send with a canceled context: %v", batching, err)
			}
		}
		if got, err := s.Conversation(ctx, c.ID); err != nil || got.LastSeq != 0 {
			t.Fatalf("batching %v: LastSeq = %d, %v; want 0", batching, got.LastSeq, err)
		}
	}
}

// TestBatchIsolation stores one batch holding good messages, a stranger's,
// an in-batch duplicate and a message the server rejects: each caller gets
// its own answer.
func TestBatchIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	p, err := s.OpenPrivate(ctx, app, "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	q, err := s.OpenPrivate(ctx, app, "alice", "carol")
	if err != nil {
		t.Fatal(err)
	}
	req := func(conv, sender, cid, content string) *sendReq {
		return &sendReq{ctx: ctx, m: store.NewMessage{ConversationID: conv, SenderID: sender, Type: 1,
			Content: json.RawMessage(content), ClientMsgID: cid, At: store.NowOr(ms0)}, done: make(chan sendRes, 1)}
	}
	batch := []*sendReq{
		req(p.ID, "alice", "a1", `1`),
		req(p.ID, "carol", "", `2`), // not a member
		req(q.ID, "carol", "", `3`),
		req(p.ID, "alice", "a1", `4`), // duplicate of the first, same batch
		req(p.ID, "bob", "", `5`),
		req(store.NewID(), "alice", "", `6`), // no such conversation
		req(q.ID, "alice", "", `7`),
	}
	s.sendBatch(batch)
	type want struct {
		seq int64
		dup bool
		err error
	}
	wants := []want{{1, false, nil}, {0, false, store.ErrNotMember}, {1, false, nil}, {1, true, nil},
		{2, false, nil}, {0, false, store.ErrNotMember}, {2, false, nil}}
	var first string
	for i, r := range batch {
		got := <-r.done
		w := wants[i]
		if w.err != nil {
			if !errors.Is(got.err, w.err) {
				t.Fatalf("request %d: err %v, want %v", i, got.err, w.err)
			}
			continue
		}
		if got.err != nil || got.msg.Seq != w.seq || got.dup != w.dup {
			t.Fatalf("request %d: seq %d dup %v err %v; want seq %d dup %v", i, got.msg.Seq, got.dup, got.err, w.seq, w.dup)
		}
		if i == 0 {
			first = got.msg.ID
		}
		if i == 3 && (got.msg.ID != first || string(got.msg.Content) != `1`) {
			t.Fatalf("in-batch duplicate returned %+v, want the first message", got.msg)
		}
	}
	if m, err := s.Member(ctx, p.ID, "alice"); err != nil || m.ReadSeq != 1 {
		t.Fatalf("alice read_seq %d, %v; want 1", m.ReadSeq, err)
	}
	if m, err := s.Member(ctx, q.ID, "alice"); err != nil || m.ReadSeq != 2 {
		t.Fatalf("alice read_seq in q %d, %v; want 2", m.ReadSeq, err)
	}

	// A batch the server rejects as a whole is retried message by message:
	// a content the text column refuses, smuggled past Send's validation,
	// fails alone.
	bad := req(p.ID, "alice", "", "\"\x00\"")
	good := req(p.ID, "bob", "", `8`)
	s.sendBatch([]*sendReq{good, bad})
	if r := <-good.done; r.err != nil || r.msg.Seq != 3 {
		t.Fatalf("good message next to a bad one: %+v", r)
	}
	if r := <-bad.done; !errors.Is(r.err, store.ErrInvalid) {
		t.Fatalf("bad message: %v, want ErrInvalid", r.err)
	}
}

var ms0 = store.FromUnixMS(0)

func TestInvalidText(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.OpenPrivate(ctx, app, "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"user with NUL", func() error { _, err := s.UpsertUser(ctx, store.User{AppID: app, UserID: "a\x00b"}); return err }()},
		{"content with NUL", func() error {
			_, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Content: json.RawMessage("\"\x00\"")})
			return err
		}()},
		{"content not UTF-8", func() error {
			_, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Content: json.RawMessage("\"\xff\"")})
			return err
		}()},
	} {
		if !errors.Is(tc.err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, tc.err)
		}
	}
	// A group id may hold any byte a private key does.
	if _, err := s.UpsertGroup(ctx, app, "g\x00x", "", "", nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("group id with NUL: %v, want ErrInvalid", err)
	}
}

// TestOutage cuts the store off from PostgreSQL (through a TCP proxy it
// controls) and back: meanwhile every method returns an error instead of
// hanging or panicking, and afterwards the pool reconnects by itself.
func TestOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _ := newSchema(t)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	target := pu.Host
	if pu.Port() == "" {
		target = net.JoinHostPort(pu.Hostname(), "5432")
	}
	p := startProxy(t, "127.0.0.1:0", target)
	pu.Host = p.addr
	s, err := Open(ctx, pu.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.OpenPrivate(ctx, app, "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	msg := func() store.NewMessage {
		return store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: 1, Content: json.RawMessage(`1`)}
	}
	if _, _, err := s.Send(ctx, msg()); err != nil {
		t.Fatal(err)
	}

	p.stop()
	// A generous bound only so that a hang fails the test instead of
	// stalling it; the calls fail at once on a refused connection.
	down, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.Ping(down); err == nil {
		t.Fatal("Ping succeeded during the outage")
	}
	for range 3 { // also drains the pool's now dead connections
		if _, _, err := s.Send(down, msg()); err == nil {
			t.Fatal("Send succeeded during the outage")
		}
	}
	if _, err := s.Sessions(down, app, "alice"); err == nil {
		t.Fatal("Sessions succeeded during the outage")
	}
	if _, err := s.History(down, c.ID, "alice", 0, 10); err == nil {
		t.Fatal("History succeeded during the outage")
	}
	if down.Err() != nil {
		t.Fatal("a call hung during the outage")
	}

	p = startProxy(t, p.addr, target)
	defer p.stop()
	var sent store.Message
	for try := 0; ; try++ {
		if sent, _, err = s.Send(ctx, msg()); err == nil {
			break
		}
		if try == 20 {
			t.Fatalf("Send never recovered: %v", err)
		}
	}
	if sent.Seq != 2 {
		t.Fatalf("seq after the outage = %d, want 2 (failed sends store nothing)", sent.Seq)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
}

// proxy forwards TCP connections to target until stopped; stopping it
// drops every connection, as a network outage would.
type proxy struct {
	addr  string
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, addr, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(d, c); d.Close() })
			p.wg.Go(func() { io.Copy(c, d); c.Close() })
		}
	})
	return p
}

func (p *proxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// TestSessionsPlan checks that the session list is index lookups only:
// members_by_user, then primary keys of conversations, users and messages.
func TestSessionsPlan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	app := store.NewID()
	if err := s.CreateApp(ctx, store.App{ID: app, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < 600; i += 4 {
				me, peer := fmt.Sprintf("x%03d", i%100), fmt.Sprintf("y%03d", i)
				c, err := s.OpenPrivate(ctx, app, me, peer)
				if err == nil {
					_, err = s.UpsertUser(ctx, store.User{AppID: app, UserID: peer, Name: peer})
				}
				if err == nil {
					_, _, err = s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: peer, Type: 1, Content: json.RawMessage(`1`)})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	// On a small table the planner rightly prefers hash joins and scans, so
	// take those away and check that every join has an index to run on:
	// the plan a large database gets.
	explain := func(forceIndexes bool) string {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if forceIndexes {
			if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off;
				SET LOCAL enable_mergejoin = off; SET LOCAL enable_bitmapscan = off`); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := tx.Query(ctx, "EXPLAIN "+sessionSelect+sessionOrder, app, "x001")
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	plan := explain(true)
	for _, want := range []string{
		"Index Scan using members_by_user on members m",
		"Index Scan using conversations_pkey on conversations c",
		"Index Scan using users_pkey on users pu",
		"Index Scan using messages_pkey on messages lm",
		"Index Scan using users_pkey on users su",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("session list plan lacks %q", want)
		}
	}
	if strings.Contains(plan, "Seq Scan") {
		t.Errorf("session list plan scans a table")
	}
	if t.Failed() {
		t.Fatalf("plan:\n%s", plan)
	}
	t.Logf("session list plan on a large database:\n%s\nand on this small one:\n%s", plan, explain(false))
}

func TestSchemaOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"xyz", "xyz"},
		{" xyz , public", "xyz"},
		{"XyZ", "xyz"},
		{"ÄB", "Äb"},
		{`"$user", public`, ""},
		{"$user, public", ""},
		{`"My Schema",public`, "My Schema"},
		{`"a,b",c`, "a,b"},
		{`"a""b"`, `a"b`},
		{`"open`, ""},
	} {
		if got := schemaOf(tc.in); got != tc.want {
			t.Errorf("schemaOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSchemaOf: whatever the search_path, the result is a name that
// quotes back into one identifier, never $user, and unquoted input never
// yields a name spanning a comma or with upper case.
func FuzzSchemaOf(f *testing.F) {
	for _, s := range []string{"", "xyz", " a , b", `"$user", public`, `"a""b",c`, `"`, `""`, `","`, "ABC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := schemaOf(in)
		if got == "$user" {
			t.Fatalf("schemaOf(%q) = $user", in)
		}
		if !strings.HasPrefix(strings.TrimSpace(in), `"`) && (strings.Contains(got, ",") || got != foldASCII(got)) {
			t.Fatalf("schemaOf(%q) = %q", in, got)
		}
		q := pgx.Identifier{got}.Sanitize()
		if got != "" && (len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"') {
			t.Fatalf("schemaOf(%q) = %q quotes as %s", in, got, q)
		}
	})
}
