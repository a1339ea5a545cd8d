// Package postgres is chatd's PostgreSQL store, for several chatd nodes
// sharing one database (CHATD_STORE=postgres://…).
//
// Open migrates the schema (under an advisory lock, so nodes may start
// together). Sends are group-committed: concurrent Send calls are collected
// and stored in one transaction, with one seq allocation per conversation.
//
// Besides pgx's connection parameters (sslmode, connect_timeout, …) the URL
// takes search_path=SCHEMA, to keep chatd's tables in a schema of their own
// (created if missing), and pool_max_conns=N (default 16).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatd/chatd/internal/store"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store on a PostgreSQL connection pool. The pool
// reconnects by itself, so an outage makes methods fail rather than the
// process.
type Store struct {
	pool *pgxpool.Pool

	batching bool            // false: every Send is its own transaction (for comparison)
	sends    []chan *sendReq // one per send worker; a conversation always uses the same one
	mu       sync.RWMutex    // guards closed against sends to a closed channel
	closed   bool
	workers  sync.WaitGroup

	nonceSwept atomic.Int64 // when this node last deleted expired nonces, unix ms
}

// defaultMaxConns is used when the URL sets no pool_max_conns: the send
// workers hold some connections while reads need others.
const defaultMaxConns = 16

// Open connects to url (postgres://… or a libpq key/value string), migrates
// the schema and starts the send workers. A search_path parameter in the URL
// (…?search_path=tenant1) selects the schema; Open creates it if needed.
func Open(ctx context.Context, url string) (*Store, error) {
	return open(ctx, url, true)
}

func open(ctx context.Context, url string, batching bool) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool, schemaOf(cfg.ConnConfig.RuntimeParams["search_path"])); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, batching: batching, sends: make([]chan *sendReq, sendWorkers)}
	for i := range s.sends {
		s.sends[i] = make(chan *sendReq, sendQueue)
		s.workers.Add(1)
		go s.sendWorker(s.sends[i])
	}
	return s, nil
}

// schemaOf returns the first schema of a search_path, the one new tables go
// to, as PostgreSQL reads it (quotes kept literal, unquoted names folded to
// lower case), or "" when that is $user, absent or malformed.
func schemaOf(searchPath string) string {
	sp := strings.TrimSpace(searchPath)
	if strings.HasPrefix(sp, `"`) {
		var b strings.Builder
		for i := 1; i < len(sp); i++ {
			if sp[i] != '"' {
				b.WriteByte(sp[i])
				continue
			}
			if i+1 < len(sp) && sp[i+1] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			if b.String() == "$user" {
				return ""
			}
			return b.String()
		}
		return "" // unterminated: PostgreSQL will say what is wrong
	}
	first, _, _ := strings.Cut(sp, ",")
	first = strings.TrimSpace(first)
	if first == "$user" {
		return ""
	}
	return foldASCII(first)
}

// foldASCII lower-cases A-Z only, as PostgreSQL folds unquoted identifiers
// in a UTF-8 database.
func foldASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// Close finishes the sends already queued, then closes the pool.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, ch := range s.sends {
		close(ch)
	}
	s.mu.Unlock()
	s.workers.Wait()
	s.pool.Close()
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// wrap adds the operation to err and maps PostgreSQL errors onto the store's
// sentinels: a missing row becomes notFound (nil: leave it), bad text (NUL
// bytes, invalid UTF-8) becomes store.ErrInvalid.
func wrap(op string, err error, notFound error) error {
	if err == nil {
		return nil
	}
	if notFound != nil && errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", op, notFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22") {
		return fmt.Errorf("postgres: %s: %w: %w", op, store.ErrInvalid, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// validText rejects what PostgreSQL text cannot hold, before it costs a
// round trip (or, in a send batch, the other sends).
func validText(ss ...string) error {
	for _, s := range ss {
		if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
			return fmt.Errorf("postgres: %w: text with a NUL byte or invalid UTF-8", store.ErrInvalid)
		}
	}
	return nil
}

// ---- apps

func (s *Store) CreateApp(ctx context.Context, a store.App) error {
	if err := validText(a.ID, a.Name, a.Description, a.Secret); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO apps (id, name, description, secret, status, created_at, sign_route)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		a.ID, a.Name, a.Description, a.Secret, a.Status, store.UnixMS(store.NowOr(a.CreatedAt)), a.SignRoute)
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create app %s: %w", a.ID, store.ErrExists)
	}
	return wrap("create app", err, nil)
}

func (s *Store) App(ctx context.Context, id string) (store.App, error) {
	var a store.App
	var created int64
	err := s.pool.QueryRow(ctx, `SELECT id, name, description, secret, status, created_at, sign_route
		FROM apps WHERE id = $1`, id).
		Scan(&a.ID, &a.Name, &a.Description, &a.Secret, &a.Status, &created, &a.SignRoute)
	if err != nil {
		return store.App{}, wrap("app", err, store.ErrNotFound)
	}
	a.CreatedAt = store.FromUnixMS(created)
	return a, nil
}

func (s *Store) SetAppSignRoute(ctx context.Context, appID string, on bool) error {
	return s.updateApp(ctx, "set sign route", `UPDATE apps SET sign_route = $1 WHERE id = $2`, on, appID)
}

func (s *Store) SetAppStatus(ctx context.Context, appID string, status int) error {
	return s.updateApp(ctx, "set app status", `UPDATE apps SET status = $1 WHERE id = $2`, status, appID)
}

// updateApp runs an update of one app row; ErrNotFound when there is none.
func (s *Store) updateApp(ctx context.Context, op, q string, args ...any) error {
	tag, err := s.pool.Exec(ctx, q, args...)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap(op, err, store.ErrNotFound)
}

// ---- users

const userCols = `app_id, user_id, name, avatar_uri, token_version, created_at`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	var created int64
	if err := row.Scan(&u.AppID, &u.UserID, &u.Name, &u.AvatarURI, &u.TokenVersion, &created); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = store.FromUnixMS(created)
	return u, nil
}

func (s *Store) UpsertUser(ctx context.Context, u store.User) (store.User, error) {
	if err := validText(u.AppID, u.UserID, u.Name, u.AvatarURI); err != nil {
		return store.User{}, err
	}
	got, err := scanUser(s.pool.QueryRow(ctx, `INSERT INTO users (app_id, user_id, name, avatar_uri, token_version, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (app_id, user_id) DO UPDATE SET name = excluded.name, avatar_uri = excluded.avatar_uri, deleted_at = 0
		RETURNING `+userCols,
		u.AppID, u.UserID, u.Name, u.AvatarURI, u.TokenVersion, store.UnixMS(store.NowOr(u.CreatedAt))))
	return got, wrap("upsert user", err, nil)
}

func (s *Store) User(ctx context.Context, appID, userID string) (store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE app_id = $1 AND user_id = $2 AND deleted_at = 0`, appID, userID))
	return u, wrap("user", err, store.ErrNotFound)
}

func (s *Store) BumpTokenVersion(ctx context.Context, appID, userID string) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `UPDATE users SET token_version = token_version + 1
		WHERE app_id = $1 AND user_id = $2 RETURNING token_version`, appID, userID).Scan(&v)
	return v, wrap("bump token version", err, store.ErrNotFound)
}

// ---- conversations and members

const convCols = `id, app_id, type, key, name, avatar_uri, last_seq, last_msg_at, created_at, change_seq`

func scanConv(row pgx.Row) (store.Conversation, error) {
	var c store.Conversation
	var key []byte
	var lastAt, created int64
	if err := row.Scan(&c.ID, &c.AppID, &c.Type, &key, &c.Name, &c.AvatarURI, &c.LastSeq, &lastAt, &created, &c.ChangeSeq); err != nil {
		return store.Conversation{}, err
	}
	c.Key = string(key)
	c.LastMsgAt = store.FromUnixMS(lastAt)
	c.CreatedAt = store.FromUnixMS(created)
	return c, nil
}

func (s *Store) OpenPrivate(ctx context.Context, appID, a, b string) (store.Conversation, error) {
	key := store.PrivateKey(a, b)
	// Most calls find an existing conversation: one indexed read.
	c, err := scanConv(s.pool.QueryRow(ctx, `SELECT `+convCols+` FROM conversations
		WHERE app_id = $1 AND type = $2 AND key = $3`, appID, store.Private, []byte(key)))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Conversation{}, wrap("open private", err, nil)
	}
	if err := validText(appID, a, b); err != nil {
		return store.Conversation{}, err
	}

	// Create it. Two callers racing on the same pair meet at the unique key:
	// the loser's INSERT waits for the winner's commit, does nothing, and its
	// next statement sees the winner's row.
	var out store.Conversation
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := store.UnixMS(time.Now())
		if _, err := tx.Exec(ctx, `INSERT INTO conversations (id, app_id, type, key, created_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, type, key) DO NOTHING`,
			store.NewID(), appID, store.Private, []byte(key), now); err != nil {
			return err
		}
		// FOR UPDATE: membership changes lock the conversation row before
		// the members rows, as sends do (see bumpMembersVersion).
		c, err := scanConv(tx.QueryRow(ctx, `SELECT `+convCols+` FROM conversations
			WHERE app_id = $1 AND type = $2 AND key = $3 FOR UPDATE`, appID, store.Private, []byte(key)))
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO members (conversation_id, app_id, user_id, sid, peer_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $7), ($1, $2, $5, $6, $3, $7)
			ON CONFLICT (conversation_id, user_id) DO NOTHING`,
			c.ID, appID, a, store.NewID(), b, store.NewID(), now)
		if err != nil {
			return err
		}
		if err := bumpMembersVersion(ctx, tx, c.ID, tag.RowsAffected()); err != nil {
			return err
		}
		out = c
		return nil
	})
	return out, wrap("open private", err, nil)
}

func (s *Store) UpsertGroup(ctx context.Context, appID, groupID, name, avatarURI string, userIDs []string) (store.Conversation, error) {
	if err := validText(append([]string{appID, groupID, name, avatarURI}, userIDs...)...); err != nil {
		return store.Conversation{}, err
	}
	var out store.Conversation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := scanConv(tx.QueryRow(ctx, `INSERT INTO conversations (id, app_id, type, key, name, avatar_uri, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (app_id, type, key) DO UPDATE SET name = excluded.name, avatar_uri = excluded.avatar_uri
			RETURNING `+convCols,
			store.NewID(), appID, store.Group, []byte(groupID), name, avatarURI, store.UnixMS(time.Now())))
		if err != nil {
			return err
		}
		// The upsert has locked the conversation row.
		if err := addMembers(ctx, tx, c, userIDs); err != nil {
			return err
		}
		out = c
		return nil
	})
	return out, wrap("upsert group", err, nil)
}

// bumpMembersVersion records, in the transaction that changed them, that
// the conversation's members changed (changed rows > 0): member lists
// cached at an older version are stale from this commit on. The caller
// locks the conversation row before touching members rows, the order sends
// take them in (a send locks the row, checks the membership and then
// updates the sender's read mark), so the two cannot deadlock, and a send
// either commits before the change and reads the old version or waits for
// it and reads the new one.
func bumpMembersVersion(ctx context.Context, tx pgx.Tx, convID string, changed int64) error {
	if changed == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE conversations SET members_version = members_version + 1 WHERE id = $1`, convID)
	return err
}

// lockGroup returns the group with its row locked until tx ends.
func lockGroup(ctx context.Context, tx pgx.Tx, appID, groupID string) (store.Conversation, error) {
	c, err := scanConv(tx.QueryRow(ctx, `SELECT `+convCols+` FROM conversations
		WHERE app_id = $1 AND type = $2 AND key = $3 FOR UPDATE`, appID, store.Group, []byte(groupID)))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("group: %w", store.ErrNotFound)
	}
	return c, err
}

// addMembers inserts memberships that do not exist yet, in tx, and bumps
// the members version when it added someone. A new member starts at the
// conversation's current seq: earlier messages are history, not unread.
func addMembers(ctx context.Context, tx pgx.Tx, c store.Conversation, userIDs []string) error {
	users := make([]string, 0, len(userIDs))
	seen := make(map[string]bool, len(userIDs))
	for _, u := range userIDs {
		if !seen[u] {
			seen[u] = true
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		return nil
	}
	sids := make([]string, len(users))
	for i := range sids {
		sids[i] = store.NewID()
	}
	tag, err := tx.Exec(ctx, `INSERT INTO members (conversation_id, app_id, user_id, sid, read_seq, joined_seq, created_at)
		SELECT c.id, c.app_id, v.user_id, v.sid, c.last_seq, c.last_seq, $4
		FROM conversations c, unnest($2::text[], $3::text[]) AS v(user_id, sid)
		WHERE c.id = $1
		ON CONFLICT (conversation_id, user_id) DO NOTHING`,
		c.ID, users, sids, store.UnixMS(time.Now()))
	if err != nil {
		return err
	}
	return bumpMembersVersion(ctx, tx, c.ID, tag.RowsAffected())
}

func (s *Store) ConversationByKey(ctx context.Context, appID string, typ int, key string) (store.Conversation, error) {
	c, err := scanConv(s.pool.QueryRow(ctx, `SELECT `+convCols+` FROM conversations
		WHERE app_id = $1 AND type = $2 AND key = $3`, appID, typ, []byte(key)))
	return c, wrap("conversation by key", err, store.ErrNotFound)
}

func (s *Store) Conversation(ctx context.Context, id string) (store.Conversation, error) {
	c, err := scanConv(s.pool.QueryRow(ctx, `SELECT `+convCols+` FROM conversations WHERE id = $1`, id))
	return c, wrap("conversation", err, store.ErrNotFound)
}

func (s *Store) AddMembers(ctx context.Context, appID, groupID string, userIDs []string) error {
	if err := validText(userIDs...); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := lockGroup(ctx, tx, appID, groupID)
		if err != nil {
			return err
		}
		return addMembers(ctx, tx, c, userIDs)
	})
	return wrap("add members", err, nil)
}

func (s *Store) RemoveMembers(ctx context.Context, appID, groupID string, userIDs []string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := lockGroup(ctx, tx, appID, groupID)
		if err != nil || len(userIDs) == 0 {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM members WHERE conversation_id = $1 AND user_id = ANY($2::text[])`, c.ID, userIDs)
		if err != nil {
			return err
		}
		return bumpMembersVersion(ctx, tx, c.ID, tag.RowsAffected())
	})
	return wrap("remove members", err, nil)
}

const memberCols = `conversation_id, app_id, user_id, sid, read_seq, joined_seq, created_at, hid_messages`

func scanMember(row pgx.Row) (store.Member, error) {
	var m store.Member
	var created int64
	if err := row.Scan(&m.ConversationID, &m.AppID, &m.UserID, &m.SID, &m.ReadSeq, &m.JoinedSeq, &created, &m.HidMessages); err != nil {
		return store.Member{}, err
	}
	m.CreatedAt = store.FromUnixMS(created)
	return m, nil
}

func (s *Store) Member(ctx context.Context, conversationID, userID string) (store.Member, error) {
	m, err := scanMember(s.pool.QueryRow(ctx, `SELECT `+memberCols+` FROM members
		WHERE conversation_id = $1 AND user_id = $2`, conversationID, userID))
	return m, wrap("member", err, store.ErrNotMember)
}

func (s *Store) MemberBySID(ctx context.Context, appID, userID, sid string) (store.Member, error) {
	m, err := scanMember(s.pool.QueryRow(ctx, `SELECT `+memberCols+` FROM members
		WHERE sid = $1 AND app_id = $2 AND user_id = $3`, sid, appID, userID))
	return m, wrap("member by sid", err, store.ErrNotFound)
}

// membersQuery reads the members and the version in one statement, so from
// one snapshot. The LEFT JOIN keeps the conversation's row (and so its
// version) when it has no members.
const membersQuery = `SELECT c.members_version, m.user_id IS NOT NULL,
	coalesce(m.conversation_id, ''), coalesce(m.app_id, ''), coalesce(m.user_id, ''), coalesce(m.sid, ''),
	coalesce(m.read_seq, 0), coalesce(m.joined_seq, 0), coalesce(m.created_at, 0)
FROM conversations c LEFT JOIN members m ON m.conversation_id = c.id
WHERE c.id = $1 ORDER BY m.user_id`

func (s *Store) Members(ctx context.Context, conversationID string) ([]store.Member, int64, error) {
	rows, err := s.pool.Query(ctx, membersQuery, conversationID)
	if err != nil {
		return nil, 0, wrap("members", err, nil)
	}
	out := []store.Member{}
	var version, created int64
	var m store.Member
	var some bool
	_, err = pgx.ForEachRow(rows, []any{&version, &some, &m.ConversationID, &m.AppID, &m.UserID, &m.SID, &m.ReadSeq, &m.JoinedSeq, &created}, func() error {
		if some {
			m.CreatedAt = store.FromUnixMS(created)
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, 0, wrap("members", err, nil)
	}
	return out, version, nil
}

// ---- messages

// msgSelect reads messages with their sender's profile; callers add WHERE.
const msgSelect = `SELECT m.msg_id, m.conversation_id, m.seq, m.sender_id, m.type, m.content,
	coalesce(m.client_msg_id, ''), m.created_at, coalesce(u.name, ''), coalesce(u.avatar_uri, ''),
	m.version, m.reply_seq, m.meta
	FROM messages m
	JOIN conversations c ON c.id = m.conversation_id
	LEFT JOIN users u ON u.app_id = c.app_id AND u.user_id = m.sender_id `

func scanMessage(row pgx.Row) (store.Message, error) {
	var m store.Message
	var content string
	var created int64
	var meta *string
	if err := row.Scan(&m.ID, &m.ConversationID, &m.Seq, &m.SenderID, &m.Type, &content,
		&m.ClientMsgID, &created, &m.SenderName, &m.SenderAvatar, &m.Version, &m.ReplySeq, &meta); err != nil {
		return store.Message{}, err
	}
	m.Content = []byte(content)
	m.CreatedAt = store.FromUnixMS(created)
	var err error
	if m.Meta, err = store.DecodeMeta(meta); err != nil {
		return store.Message{}, fmt.Errorf("message %s meta: %w", m.ID, err)
	}
	return m, nil
}

func (s *Store) queryMessages(ctx context.Context, op, sql string, args ...any) ([]store.Message, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrap(op, err, nil)
	}
	msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Message, error) { return scanMessage(r) })
	return msgs, wrap(op, err, nil)
}

// visibleFrom joins the reader's membership (alias v, user $1) and keeps
// the messages of conversation $2 after the seq from which they may see
// them, as a range on the messages primary key (see Visibility in package
// store). A reader who is not a member has no row: the join leaves nothing.
const visibleFrom = `JOIN members v ON v.conversation_id = m.conversation_id AND v.user_id = $1
	WHERE m.conversation_id = $2 AND m.seq > CASE WHEN c.full_history OR v.full_history THEN 0 ELSE v.joined_seq END `

func (s *Store) History(ctx context.Context, conversationID, userID string, beforeSeq int64, limit int) ([]store.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	if beforeSeq <= 0 {
		beforeSeq = 1<<63 - 1
	}
	return s.queryMessages(ctx, "history", msgSelect+visibleFrom+`AND m.seq < $3
		ORDER BY m.seq DESC LIMIT $4`, userID, conversationID, beforeSeq, limit)
}

func (s *Store) After(ctx context.Context, conversationID, userID string, afterSeq int64, limit int) ([]store.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.queryMessages(ctx, "after", msgSelect+visibleFrom+`AND m.seq > $3
		ORDER BY m.seq LIMIT $4`, userID, conversationID, afterSeq, limit)
}

func (s *Store) MessageByID(ctx context.Context, conversationID, msgID string) (store.Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, msgSelect+`WHERE m.msg_id = $1 AND m.conversation_id = $2`, msgID, conversationID))
	return m, wrap("message by id", err, store.ErrNotFound)
}

// MessageSeq resolves a history cursor from the msg_id index, without
// reading the message or its sender (store.CursorReader).
func (s *Store) MessageSeq(ctx context.Context, conversationID, msgID string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM messages WHERE msg_id = $1 AND conversation_id = $2`, msgID, conversationID).Scan(&seq)
	return seq, wrap("message seq", err, store.ErrNotFound)
}

func (s *Store) MarkRead(ctx context.Context, conversationID, userID string, seq int64) (int64, error) {
	var read int64
	err := s.pool.QueryRow(ctx, `UPDATE members m
		SET read_seq = greatest(m.read_seq, CASE WHEN $3 < 0 THEN c.last_seq ELSE least($3, c.last_seq) END)
		FROM conversations c
		WHERE c.id = m.conversation_id AND m.conversation_id = $1 AND m.user_id = $2
		RETURNING m.read_seq`, conversationID, userID, seq).Scan(&read)
	return read, wrap("mark read", err, store.ErrNotMember)
}

// ---- sessions

// sessionSelect is the session list in one query: the user's memberships
// (members_by_user, or the primary key for one session), each joined by
// primary keys to its conversation, the private peer's profile, the last
// message (conversation_id, last_seq) and that message's sender.
const sessionSelect = `SELECT m.sid, c.id, c.type, c.key, m.peer_id, c.name, c.avatar_uri,
	coalesce(pu.name, ''), coalesce(pu.avatar_uri, ''), c.last_seq, m.read_seq, c.last_msg_at,
	lm.msg_id, lm.seq, lm.sender_id, lm.type, lm.content, lm.client_msg_id, lm.created_at,
	su.name, su.avatar_uri,
	(SELECT count(*) FROM mentions x WHERE x.conversation_id = m.conversation_id
		AND x.user_id IN (m.user_id, '') AND x.seq > m.read_seq), c.change_seq,
	EXISTS (SELECT 1 FROM hidden h WHERE h.conversation_id = m.conversation_id AND h.user_id = m.user_id
		AND h.from_seq <= c.last_seq AND h.to_seq >= c.last_seq)
	FROM members m
	JOIN conversations c ON c.id = m.conversation_id
	LEFT JOIN users pu ON c.type = 1 AND pu.app_id = m.app_id AND pu.user_id = m.peer_id
	LEFT JOIN messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq
		AND (lm.seq > m.joined_seq OR c.full_history OR m.full_history)
	LEFT JOIN users su ON su.app_id = c.app_id AND su.user_id = lm.sender_id `

// sessionOrder selects one user's sessions, most recent message first and
// silent conversations last, newest first.
const sessionOrder = `WHERE m.app_id = $1 AND m.user_id = $2
	ORDER BY c.last_msg_at DESC, c.created_at DESC, c.id DESC`

func scanSession(row pgx.Row) (store.SessionRow, error) {
	var (
		s                       store.SessionRow
		key                     []byte
		peer, gName, gAvatar    string
		pName, pAvatar          string
		lastAt                  int64
		msgID, sender, cmid     *string
		content, sName, sAvatar *string
		seq, created            *int64
		typ                     *int
	)
	if err := row.Scan(&s.SID, &s.ConversationID, &s.Type, &key, &peer, &gName, &gAvatar,
		&pName, &pAvatar, &s.LastSeq, &s.ReadSeq, &lastAt,
		&msgID, &seq, &sender, &typ, &content, &cmid, &created, &sName, &sAvatar, &s.MentionedUnread, &s.ChangeSeq, &s.LastHidden); err != nil {
		return store.SessionRow{}, err
	}
	s.LastMsgAt = store.FromUnixMS(lastAt)
	if s.Type == store.Private {
		s.TargetID, s.Title, s.Avatar = peer, pName, pAvatar
	} else {
		s.TargetID, s.Title, s.Avatar = string(key), gName, gAvatar
	}
	if msgID != nil {
		s.LastMsg = &store.Message{
			ID:             *msgID,
			ConversationID: s.ConversationID,
			Seq:            *seq,
			SenderID:       *sender,
			Type:           *typ,
			Content:        []byte(*content),
			ClientMsgID:    deref(cmid),
			CreatedAt:      store.FromUnixMS(*created),
			SenderName:     deref(sName),
			SenderAvatar:   deref(sAvatar),
		}
	}
	return s, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Store) Sessions(ctx context.Context, appID, userID string) ([]store.SessionRow, error) {
	rows, err := s.pool.Query(ctx, sessionSelect+sessionOrder, appID, userID)
	if err != nil {
		return nil, wrap("sessions", err, nil)
	}
	ss, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SessionRow, error) { return scanSession(r) })
	return ss, wrap("sessions", err, nil)
}

func (s *Store) Session(ctx context.Context, conversationID, userID string) (store.SessionRow, error) {
	ss, err := scanSession(s.pool.QueryRow(ctx, sessionSelect+`WHERE m.conversation_id = $1 AND m.user_id = $2`,
		conversationID, userID))
	return ss, wrap("session", err, store.ErrNotMember)
}

// ---- files

func (s *Store) CreateFile(ctx context.Context, f store.File) error {
	return s.CreateFileWithin(ctx, f, 0)
}

func (s *Store) File(ctx context.Context, appID, id string) (store.File, error) {
	var f store.File
	var created int64
	err := s.pool.QueryRow(ctx, `SELECT id, app_id, user_id, key, name, size, content_type, created_at
		FROM files WHERE id = $1 AND app_id = $2`, id, appID).
		Scan(&f.ID, &f.AppID, &f.UserID, &f.Key, &f.Name, &f.Size, &f.ContentType, &created)
	if err != nil {
		return store.File{}, wrap("file", err, store.ErrNotFound)
	}
	f.CreatedAt = store.FromUnixMS(created)
	return f, nil
}
