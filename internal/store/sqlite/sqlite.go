// Package sqlite is chatd's embedded store: one SQLite file in WAL mode, one
// writer connection (every write transaction is BEGIN IMMEDIATE) plus a pool
// of read-only connections, and group commit of concurrent sends.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatd/chatd/internal/store"
)

var _ store.Store = (*Store)(nil)

// errClosed is returned by Send once the store is closing.
var errClosed = errors.New("sqlite: store closed")

const (
	busyTimeoutMS = 10000
	// defaultMaxBatch bounds how many sends share one commit, so one batch
	// cannot hold the writer for long.
	defaultMaxBatch = 256
)

// Store is the SQLite backend. Create it with Open.
type Store struct {
	w *sql.DB // exactly one connection; all writes go through it
	r *sql.DB // read-only pool
	c *sql.DB // one connection that checkpoints the WAL into the database

	stmts    *sendStmts
	batches  atomic.Int64 // send transactions committed, to measure batching
	rstmts   sync.Map     // query text → *sql.Stmt on the reader pool
	wstmts   sync.Map     // query text → *sql.Stmt on the writer (see wstmt)
	maxBatch int
	sends    chan *sendReq
	results  chan *resultsReq // webhook results for the writer loop (webhooks.go)
	alone    atomic.Int64     // results written in a transaction of their own
	done     chan struct{}    // closed by Close: the writer loop should stop
	exited   chan struct{}    // closed by the writer loop when it has stopped
	ckptDone chan struct{}    // closed by the checkpoint loop when it has stopped
	once     sync.Once

	walPath  string       // the WAL file, watched by the writer loop (trimWAL)
	walLimit atomic.Int64 // WAL size past which the writer checkpoints itself

	nonces     nonceBatcher // signed requests' nonces, committed in batches
	nonceSwept atomic.Int64 // when expired nonces were last deleted, unix ms
	ckpt       ckptLog      // reports failed WAL checkpoints

	outbox *outboxMem // pending webhook deliveries (outboxmem.go)
}

// Open opens (creating when absent) the database at path, creating its parent
// directory, and migrates the schema to the current version.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, defaultMaxBatch)
}

func open(ctx context.Context, path string, maxBatch int) (*Store, error) {
	// The writer and the readers are separate connections, so they must
	// share a file; '?' would be taken for the start of the driver's options.
	if path == "" || path == ":memory:" || strings.Contains(path, "?") {
		return nil, fmt.Errorf("sqlite: path %q: need a plain file path: %w", path, store.ErrInvalid)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sqlite: create data dir: %w", err)
		}
	}
	common := []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS),
		"foreign_keys(1)",
		"synchronous(NORMAL)",
	}

	// The writer never checkpoints: a checkpoint run by the commit that
	// crosses the threshold stalls every send queued behind it for
	// milliseconds. A separate connection checkpoints in the background.
	// A deferred transaction that reads then writes fails with SQLITE_BUSY
	// when another writer got in between; IMMEDIATE takes the lock up front.
	// Statement journals (a multi-row INSERT or UPDATE in a transaction
	// keeps one, to undo itself on a constraint error) in memory: in a
	// temporary file they were a write syscall per page, 14 % of the CPU
	// of sends with webhooks on (docs/benchmarks.md, "Webhooks").
	w, err := openDB(path, append(common[:len(common):len(common)], "journal_mode(WAL)", "wal_autocheckpoint(0)", "temp_store(MEMORY)"), true)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}

	r, err := openDB(path, append(common[:len(common):len(common)], "query_only(1)"), false)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: ping readers: %w", err)
	}

	c, err := openDB(path, common, false)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: open checkpointer: %w", err)
	}
	c.SetMaxOpenConns(1)

	stmts, err := prepareSend(ctx, w)
	if err != nil {
		w.Close()
		r.Close()
		c.Close()
		return nil, err
	}
	if maxBatch < 1 {
		maxBatch = 1
	}
	s := &Store{
		w:        w,
		r:        r,
		c:        c,
		stmts:    stmts,
		maxBatch: maxBatch,
		sends:    make(chan *sendReq, 4*maxBatch),
		results:  make(chan *resultsReq, 16),
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
		ckptDone: make(chan struct{}),
		walPath:  path + "-wal",
		outbox:   newOutboxMem(),
	}
	s.walLimit.Store(defaultWALLimit)
	go s.writeLoop()
	go s.checkpointLoop()
	return s, nil
}

const (
	// checkpointInterval is how often the WAL is copied back into the database.
	checkpointInterval = 250 * time.Millisecond
	// defaultWALLimit bounds the WAL under sustained writes (see trimWAL).
	defaultWALLimit = 64 << 20
	// walCheckBatches is how many send batches go by between two looks at
	// the WAL's size.
	walCheckBatches = 64
)

// trimWAL keeps the WAL from growing without bound under a steady stream of
// sends. The background checkpoint copies frames back, but the WAL only
// starts over when a write begins with every frame copied, and with sends
// committing every millisecond new frames always arrive first: the WAL grew
// to 800 MB in a minute of benchmark load. Every walCheckBatches batches the
// writer looks at the WAL's size; past walLimit it checkpoints itself between
// two batches, when nothing can be appended, so the next batch restarts the
// WAL from the start of its file, which then stops growing. The background
// checkpoint has copied most frames by then, so this costs the queue behind
// it little. (The file is not cut back at each restart: under load it would
// only grow again.)
func (s *Store) trimWAL() {
	fi, err := os.Stat(s.walPath)
	if err != nil || fi.Size() <= s.walLimit.Load() {
		return
	}
	s.checkpoint(s.w, "writer")
}

// checkpointLoop copies committed WAL frames into the database file now and
// then, off the send path. PASSIVE never waits for readers or the writer; the
// WAL is reused from its start once a checkpoint has caught up.
func (s *Store) checkpointLoop() {
	defer close(s.ckptDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.checkpoint(s.c, "background")
		}
	}
}

// Ping checks both the writer and the reader pool.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping readers: %w", err)
	}
	return nil
}

// Close finishes the send batch in flight, fails queued sends and closes the
// database.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.done) })
	<-s.exited
	<-s.ckptDone
	s.stmts.close()
	for _, m := range []*sync.Map{&s.rstmts, &s.wstmts} {
		m.Range(func(_, v any) bool {
			v.(*sql.Stmt).Close()
			return true
		})
	}
	return errors.Join(s.r.Close(), s.c.Close(), s.w.Close())
}

// rstmt returns the reader statement for q, preparing it on first use:
// parsing the session and history queries costs as much as running them.
func (s *Store) rstmt(ctx context.Context, q string) (*sql.Stmt, error) {
	return prepared(ctx, &s.rstmts, s.r, q)
}

// prepared returns q prepared on db, from cache (query text → *sql.Stmt)
// or prepared now and kept there.
func prepared(ctx context.Context, cache *sync.Map, db *sql.DB, q string) (*sql.Stmt, error) {
	if st, ok := cache.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := cache.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// errRow carries a prepare error to the caller's Scan, like *sql.Row does.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type scanner interface{ Scan(...any) error }

// queryRow runs a single-row read on the reader pool.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) scanner {
	st, err := s.rstmt(ctx, q)
	if err != nil {
		return errRow{fmt.Errorf("prepare: %w", err)}
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a multi-row read on the reader pool.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.rstmt(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return st.QueryContext(ctx, args...)
}

// withTx runs fn in a write transaction (BEGIN IMMEDIATE on the writer).
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	// The webhook events the caller bound to this call (store.WithEvents)
	// commit with its change.
	evs := store.PendingEvents(ctx)
	otx := s.outboxTx()
	if evs != nil {
		if err := insertOutbox(ctx, tx, evs.List, nil, otx); err != nil {
			tx.Rollback()
			otx.done(false)
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		otx.done(false)
		return fmt.Errorf("commit: %w", err)
	}
	otx.done(true)
	evs.Written()
	return nil
}

// ---- apps ----

func (s *Store) CreateApp(ctx context.Context, a store.App) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO apps (id, name, description, secret, status, created_at, sign_route)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		a.ID, a.Name, a.Description, a.Secret, a.Status, store.UnixMS(store.NowOr(a.CreatedAt)), a.SignRoute)
	if err != nil {
		return fmt.Errorf("sqlite: create app %s: %w", a.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: create app %s: %w", a.ID, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: create app %s: %w", a.ID, store.ErrExists)
	}
	return nil
}

func (s *Store) App(ctx context.Context, id string) (store.App, error) {
	var a store.App
	var created int64
	err := s.queryRow(ctx, `SELECT id, name, description, secret, status, created_at, sign_route FROM apps WHERE id = ?`, id).
		Scan(&a.ID, &a.Name, &a.Description, &a.Secret, &a.Status, &created, &a.SignRoute)
	if err != nil {
		return store.App{}, notFound(err, store.ErrNotFound, "app %s", id)
	}
	a.CreatedAt = store.FromUnixMS(created)
	return a, nil
}

func (s *Store) SetAppSignRoute(ctx context.Context, appID string, on bool) error {
	return s.updateApp(ctx, "set sign route of "+appID, `UPDATE apps SET sign_route = ? WHERE id = ?`, on, appID)
}

func (s *Store) SetAppStatus(ctx context.Context, appID string, status int) error {
	return s.updateApp(ctx, "set status of "+appID, `UPDATE apps SET status = ? WHERE id = ?`, status, appID)
}

// updateApp runs an update of one app row; ErrNotFound when there is none.
func (s *Store) updateApp(ctx context.Context, what, q string, args ...any) error {
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	return nil
}

// notFound maps sql.ErrNoRows to sentinel and wraps everything with context.
func notFound(err, sentinel error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", what, sentinel)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// ---- users ----

const userCols = `app_id, user_id, name, avatar_uri, token_version, created_at`

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var created int64
	if err := row.Scan(&u.AppID, &u.UserID, &u.Name, &u.AvatarURI, &u.TokenVersion, &created); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = store.FromUnixMS(created)
	return u, nil
}

func (s *Store) UpsertUser(ctx context.Context, u store.User) (store.User, error) {
	row := s.w.QueryRowContext(ctx, `INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (app_id, user_id) DO UPDATE SET name = excluded.name, avatar_uri = excluded.avatar_uri, deleted_at = 0
		RETURNING `+userCols,
		u.AppID, u.UserID, u.Name, u.AvatarURI, u.TokenVersion, store.UnixMS(store.NowOr(u.CreatedAt)))
	got, err := scanUser(row)
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: upsert user %s/%s: %w", u.AppID, u.UserID, err)
	}
	return got, nil
}

func (s *Store) User(ctx context.Context, appID, userID string) (store.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE app_id = ? AND user_id = ? AND deleted_at = 0`, appID, userID))
	if err != nil {
		return store.User{}, notFound(err, store.ErrNotFound, "user %s/%s", appID, userID)
	}
	return u, nil
}

func (s *Store) BumpTokenVersion(ctx context.Context, appID, userID string) (int64, error) {
	var v int64
	err := s.w.QueryRowContext(ctx, `UPDATE users SET token_version = token_version + 1
		WHERE app_id = ? AND user_id = ? RETURNING token_version`, appID, userID).Scan(&v)
	if err != nil {
		return 0, notFound(err, store.ErrNotFound, "bump token version %s/%s", appID, userID)
	}
	return v, nil
}

// ---- conversations and members ----

const convCols = `id, app_id, type, key, name, avatar_uri, last_seq, last_msg_at, created_at, change_seq`

func scanConv(row interface{ Scan(...any) error }) (store.Conversation, error) {
	var c store.Conversation
	var lastAt, created int64
	if err := row.Scan(&c.ID, &c.AppID, &c.Type, &c.Key, &c.Name, &c.AvatarURI, &c.LastSeq, &lastAt, &created, &c.ChangeSeq); err != nil {
		return store.Conversation{}, err
	}
	c.LastMsgAt = store.FromUnixMS(lastAt)
	c.CreatedAt = store.FromUnixMS(created)
	return c, nil
}

const memberCols = `conversation_id, app_id, user_id, sid, read_seq, joined_seq, created_at, hid_messages`

func scanMember(row interface{ Scan(...any) error }) (store.Member, error) {
	var m store.Member
	var created int64
	if err := row.Scan(&m.ConversationID, &m.AppID, &m.UserID, &m.SID, &m.ReadSeq, &m.JoinedSeq, &created, &m.HidMessages); err != nil {
		return store.Member{}, err
	}
	m.CreatedAt = store.FromUnixMS(created)
	return m, nil
}

func (s *Store) OpenPrivate(ctx context.Context, appID, a, b string) (store.Conversation, error) {
	if a == "" || b == "" {
		return store.Conversation{}, fmt.Errorf("sqlite: open private: empty user id: %w", store.ErrInvalid)
	}
	key := store.PrivateKey(a, b)
	// Fast path on a reader: the pair usually exists already.
	if c, err := s.ConversationByKey(ctx, appID, store.Private, key); err == nil {
		return c, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Conversation{}, err
	}
	var c store.Conversation
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		// BEGIN IMMEDIATE serialises this with every other writer, so two
		// concurrent opens of the same pair see each other's row.
		now := store.UnixMS(time.Now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, app_id, type, key, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, type, key) DO NOTHING`,
			store.NewID(), appID, store.Private, key, now); err != nil {
			return err
		}
		var err error
		c, err = scanConv(tx.QueryRowContext(ctx, `SELECT `+convCols+` FROM conversations
			WHERE app_id = ? AND type = ? AND key = ?`, appID, store.Private, key))
		if err != nil {
			return err
		}
		users := []string{a}
		if b != a { // a conversation with oneself has one member
			users = append(users, b)
		}
		n, err := insertMembers(ctx, tx, c, users, 0)
		if err != nil {
			return err
		}
		return bumpMembersVersion(ctx, tx, c.ID, n)
	})
	if err != nil {
		return store.Conversation{}, fmt.Errorf("sqlite: open private %s %q: %w", appID, key, err)
	}
	return c, nil
}

// insertMembers adds users as members of c with new sids; existing members
// are left untouched. It returns how many were added.
func insertMembers(ctx context.Context, tx *sql.Tx, c store.Conversation, users []string, seq int64) (int64, error) {
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO members
		(conversation_id, app_id, user_id, sid, read_seq, joined_seq, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, user_id) DO NOTHING`)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	now := store.UnixMS(time.Now())
	var added int64
	for _, u := range users {
		if u == "" {
			return 0, fmt.Errorf("empty user id: %w", store.ErrInvalid)
		}
		res, err := stmt.ExecContext(ctx, c.ID, c.AppID, u, store.NewID(), seq, seq, now)
		if err != nil {
			return 0, fmt.Errorf("add member %s: %w", u, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("add member %s: %w", u, err)
		}
		added += n
	}
	return added, nil
}

// bumpMembersVersion records, in the transaction that changed them, that
// the conversation's members changed (changed rows > 0): member lists
// cached at an older version are stale from this commit on.
func bumpMembersVersion(ctx context.Context, tx *sql.Tx, convID string, changed int64) error {
	if changed == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET members_version = members_version + 1 WHERE id = ?`, convID); err != nil {
		return fmt.Errorf("bump members version: %w", err)
	}
	return nil
}

func (s *Store) UpsertGroup(ctx context.Context, appID, groupID, name, avatarURI string, userIDs []string) (store.Conversation, error) {
	if groupID == "" {
		return store.Conversation{}, fmt.Errorf("sqlite: upsert group: empty group id: %w", store.ErrInvalid)
	}
	var c store.Conversation
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanConv(tx.QueryRowContext(ctx, `INSERT INTO conversations (id, app_id, type, key, name, avatar_uri, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (app_id, type, key) DO UPDATE SET name = excluded.name, avatar_uri = excluded.avatar_uri
			RETURNING `+convCols,
			store.NewID(), appID, store.Group, groupID, name, avatarURI, store.UnixMS(time.Now())))
		if err != nil {
			return err
		}
		// New members start with nothing unread: they join at the current seq.
		n, err := insertMembers(ctx, tx, c, userIDs, c.LastSeq)
		if err != nil {
			return err
		}
		return bumpMembersVersion(ctx, tx, c.ID, n)
	})
	if err != nil {
		return store.Conversation{}, fmt.Errorf("sqlite: upsert group %s/%s: %w", appID, groupID, err)
	}
	return c, nil
}

func (s *Store) ConversationByKey(ctx context.Context, appID string, typ int, key string) (store.Conversation, error) {
	c, err := scanConv(s.queryRow(ctx, `SELECT `+convCols+` FROM conversations
		WHERE app_id = ? AND type = ? AND key = ?`, appID, typ, key))
	if err != nil {
		return store.Conversation{}, notFound(err, store.ErrNotFound, "conversation %s/%d/%q", appID, typ, key)
	}
	return c, nil
}

func (s *Store) Conversation(ctx context.Context, id string) (store.Conversation, error) {
	c, err := scanConv(s.queryRow(ctx, `SELECT `+convCols+` FROM conversations WHERE id = ?`, id))
	if err != nil {
		return store.Conversation{}, notFound(err, store.ErrNotFound, "conversation %s", id)
	}
	return c, nil
}

func groupInTx(ctx context.Context, tx *sql.Tx, appID, groupID string) (store.Conversation, error) {
	c, err := scanConv(tx.QueryRowContext(ctx, `SELECT `+convCols+` FROM conversations
		WHERE app_id = ? AND type = ? AND key = ?`, appID, store.Group, groupID))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("group: %w", store.ErrNotFound)
	}
	return c, err
}

func (s *Store) AddMembers(ctx context.Context, appID, groupID string, userIDs []string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		c, err := groupInTx(ctx, tx, appID, groupID)
		if err != nil {
			return err
		}
		n, err := insertMembers(ctx, tx, c, userIDs, c.LastSeq)
		if err != nil {
			return err
		}
		return bumpMembersVersion(ctx, tx, c.ID, n)
	})
	if err != nil {
		return fmt.Errorf("sqlite: add members to %s/%s: %w", appID, groupID, err)
	}
	return nil
}

func (s *Store) RemoveMembers(ctx context.Context, appID, groupID string, userIDs []string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		c, err := groupInTx(ctx, tx, appID, groupID)
		if err != nil {
			return err
		}
		var removed int64
		for _, u := range userIDs {
			res, err := tx.ExecContext(ctx, `DELETE FROM members WHERE conversation_id = ? AND user_id = ?`, c.ID, u)
			if err != nil {
				return fmt.Errorf("remove member %s: %w", u, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("remove member %s: %w", u, err)
			}
			removed += n
		}
		return bumpMembersVersion(ctx, tx, c.ID, removed)
	})
	if err != nil {
		return fmt.Errorf("sqlite: remove members from %s/%s: %w", appID, groupID, err)
	}
	return nil
}

func (s *Store) Member(ctx context.Context, conversationID, userID string) (store.Member, error) {
	m, err := scanMember(s.queryRow(ctx, `SELECT `+memberCols+` FROM members
		WHERE conversation_id = ? AND user_id = ?`, conversationID, userID))
	if err != nil {
		return store.Member{}, notFound(err, store.ErrNotMember, "member %s of %s", userID, conversationID)
	}
	return m, nil
}

func (s *Store) MemberBySID(ctx context.Context, appID, userID, sid string) (store.Member, error) {
	m, err := scanMember(s.queryRow(ctx, `SELECT `+memberCols+` FROM members
		WHERE sid = ? AND app_id = ? AND user_id = ?`, sid, appID, userID))
	if err != nil {
		return store.Member{}, notFound(err, store.ErrNotFound, "session %s of %s/%s", sid, appID, userID)
	}
	return m, nil
}

// membersQuery reads the members and the version in one statement, so from
// one snapshot. The LEFT JOIN keeps the conversation's row (and so its
// version) when it has no members; ORDER BY follows the primary key.
const membersQuery = `SELECT c.members_version, m.user_id IS NOT NULL,
	COALESCE(m.conversation_id, ''), COALESCE(m.app_id, ''), COALESCE(m.user_id, ''), COALESCE(m.sid, ''),
	COALESCE(m.read_seq, 0), COALESCE(m.joined_seq, 0), COALESCE(m.created_at, 0)
FROM conversations c LEFT JOIN members m ON m.conversation_id = c.id
WHERE c.id = ? ORDER BY m.user_id`

func (s *Store) Members(ctx context.Context, conversationID string) ([]store.Member, int64, error) {
	rows, err := s.query(ctx, membersQuery, conversationID)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: members of %s: %w", conversationID, err)
	}
	defer rows.Close()
	out := []store.Member{}
	var version int64
	for rows.Next() {
		var m store.Member
		var some bool
		var created int64
		if err := rows.Scan(&version, &some, &m.ConversationID, &m.AppID, &m.UserID, &m.SID, &m.ReadSeq, &m.JoinedSeq, &created); err != nil {
			return nil, 0, fmt.Errorf("sqlite: members of %s: %w", conversationID, err)
		}
		if some {
			m.CreatedAt = store.FromUnixMS(created)
			out = append(out, m)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: members of %s: %w", conversationID, err)
	}
	return out, version, nil
}

// ---- files ----

func (s *Store) CreateFile(ctx context.Context, f store.File) error {
	return s.CreateFileWithin(ctx, f, 0)
}

func (s *Store) File(ctx context.Context, appID, id string) (store.File, error) {
	var f store.File
	var created int64
	err := s.queryRow(ctx, `SELECT id, app_id, user_id, key, name, size, content_type, created_at
		FROM files WHERE id = ? AND app_id = ?`, id, appID).
		Scan(&f.ID, &f.AppID, &f.UserID, &f.Key, &f.Name, &f.Size, &f.ContentType, &created)
	if err != nil {
		return store.File{}, notFound(err, store.ErrNotFound, "file %s/%s", appID, id)
	}
	f.CreatedAt = store.FromUnixMS(created)
	return f, nil
}

// SQLDriver is the database/sql driver name this build's SQLite driver
// registers, for tools that open a chatd file directly (cmd/chatbench).
const SQLDriver = driverName
