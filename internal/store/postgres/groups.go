package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
)

// Group management and profiles (store.GroupStore). Changes lock the
// conversation row before member rows, the order sends take them in (see
// bumpMembersVersion).

const groupSelect = `SELECT c.id, c.app_id, c.type, c.key, c.name, c.avatar_uri, c.last_seq, c.last_msg_at, c.created_at,
	c.notice, c.extra, c.mute_all, c.dismissed_at,
	coalesce((SELECT o.user_id FROM members o WHERE o.conversation_id = c.id AND o.role = 2 LIMIT 1), ''),
	(SELECT count(*) FROM members n WHERE n.conversation_id = c.id)`

func scanGroup(row pgx.Row, extra ...any) (store.GroupInfo, error) {
	var g store.GroupInfo
	var key []byte
	var lastAt, created, dismissed, count int64
	var ex string
	dst := []any{&g.ID, &g.AppID, &g.Type, &key, &g.Name, &g.AvatarURI, &g.LastSeq, &lastAt, &created,
		&g.Notice, &ex, &g.MuteAll, &dismissed, &g.OwnerID, &count}
	if err := row.Scan(append(dst, extra...)...); err != nil {
		return store.GroupInfo{}, err
	}
	g.Key, g.MemberCount = string(key), int(count)
	g.LastMsgAt, g.CreatedAt, g.DismissedAt = store.FromUnixMS(lastAt), store.FromUnixMS(created), store.FromUnixMS(dismissed)
	if ex != "" {
		g.Extra = []byte(ex)
	}
	return g, nil
}

func (s *Store) GroupInfo(ctx context.Context, appID, groupID string) (store.GroupInfo, error) {
	g, err := scanGroup(s.pool.QueryRow(ctx, groupSelect+` FROM conversations c
		WHERE c.app_id = $1 AND c.type = 2 AND c.key = $2`, appID, []byte(groupID)))
	return g, wrap("group", err, store.ErrNotFound)
}

func (s *Store) UpdateGroup(ctx context.Context, appID, groupID string, u store.GroupUpdate) (store.GroupInfo, error) {
	a := assignments{args: []any{nil}}
	a.text("name", u.Name)
	a.text("avatar_uri", u.AvatarURI)
	a.text("notice", u.Notice)
	a.extra(u.Extra)
	if u.MuteAll != nil {
		a.add("mute_all", *u.MuteAll)
	}
	if err := validText(a.texts...); err != nil {
		return store.GroupInfo{}, err
	}
	var g store.GroupInfo
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := lockGroup(ctx, tx, appID, groupID)
		if err != nil {
			return err
		}
		a.args[0] = c.ID
		if len(a.set) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE conversations SET `+strings.Join(a.set, ", ")+` WHERE id = $1`, a.args...); err != nil {
				return err
			}
		}
		g, err = scanGroup(tx.QueryRow(ctx, groupSelect+` FROM conversations c WHERE c.id = $1`, c.ID))
		return err
	})
	return g, wrap("update group", err, nil)
}

// assignments builds the SET list of an UPDATE whose first placeholders are
// args' initial values, and collects the text it sets for validText.
type assignments struct {
	set   []string
	args  []any
	texts []string
}

func (a *assignments) add(col string, v any) {
	a.args = append(a.args, v)
	a.set = append(a.set, col+" = $"+strconv.Itoa(len(a.args)))
}

func (a *assignments) text(col string, v *string) {
	if v != nil {
		a.add(col, *v)
		a.texts = append(a.texts, *v)
	}
}

func (a *assignments) extra(v []byte) {
	if v != nil {
		a.add("extra", string(v))
		a.texts = append(a.texts, string(v))
	}
}

// lockConv locks a conversation row by id until tx ends.
func lockConv(ctx context.Context, tx pgx.Tx, id string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("conversation %s: %w", id, store.ErrNotFound)
	}
	return err
}

func (s *Store) SetRole(ctx context.Context, conversationID string, userIDs []string, role int) ([]string, error) {
	if role != store.RoleMember && role != store.RoleAdmin {
		return nil, fmt.Errorf("postgres: set role %d: %w", role, store.ErrInvalid)
	}
	if err := validText(userIDs...); err != nil {
		return nil, err
	}
	changed := []string{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockConv(ctx, tx, conversationID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE members SET role = $3
			WHERE conversation_id = $1 AND user_id = ANY($2::text[]) AND role <> $3 AND role <> 2
			RETURNING user_id`, conversationID, userIDs, role)
		if err != nil {
			return err
		}
		changed, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, wrap("set role", err, nil)
	}
	return orderLike(changed, userIDs), nil
}

// orderLike returns got in the order of want (RETURNING order is unspecified).
func orderLike(got, want []string) []string {
	in := make(map[string]bool, len(got))
	for _, g := range got {
		in[g] = true
	}
	out := make([]string, 0, len(got))
	for _, w := range want {
		if in[w] {
			out = append(out, w)
			delete(in, w)
		}
	}
	return out
}

func (s *Store) TransferOwner(ctx context.Context, conversationID, userID string) (string, error) {
	if err := validText(userID); err != nil {
		return "", err
	}
	var prev string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockConv(ctx, tx, conversationID); err != nil {
			return err
		}
		var role int
		err := tx.QueryRow(ctx, `SELECT role FROM members WHERE conversation_id = $1 AND user_id = $2`, conversationID, userID).Scan(&role)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotMember
		} else if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT user_id FROM members WHERE conversation_id = $1 AND role = 2 LIMIT 1`, conversationID).Scan(&prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if prev == userID {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE members SET role = CASE WHEN user_id = $2 THEN 2 ELSE 0 END
			WHERE conversation_id = $1 AND (role = 2 OR user_id = $2)`, conversationID, userID)
		return err
	})
	return prev, wrap("transfer owner", err, nil)
}

func (s *Store) GroupMembers(ctx context.Context, conversationID, afterUserID string, limit int) ([]store.GroupMember, error) {
	if limit <= 0 {
		return []store.GroupMember{}, nil
	}
	if err := validText(afterUserID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT m.user_id, m.role, m.created_at, m.muted_until, coalesce(u.name, ''), coalesce(u.avatar_uri, '')
		FROM members m LEFT JOIN users u ON u.app_id = m.app_id AND u.user_id = m.user_id
		WHERE m.conversation_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3`, conversationID, afterUserID, limit)
	if err != nil {
		return nil, wrap("group members", err, nil)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.GroupMember, error) {
		var m store.GroupMember
		var joined, muted int64
		err := r.Scan(&m.UserID, &m.Role, &joined, &muted, &m.Name, &m.AvatarURI)
		m.JoinedAt, m.MutedUntil = store.FromUnixMS(joined), store.FromUnixMS(muted)
		return m, err
	})
	if out == nil {
		out = []store.GroupMember{}
	}
	return out, wrap("group members", err, nil)
}

func (s *Store) UserGroups(ctx context.Context, appID, userID string) ([]store.UserGroup, error) {
	rows, err := s.pool.Query(ctx, groupSelect+`, m.role, m.created_at, m.sid
		FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.app_id = $1 AND m.user_id = $2 AND c.type = 2 ORDER BY c.key`, appID, userID)
	if err != nil {
		return nil, wrap("user groups", err, nil)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.UserGroup, error) {
		var ug store.UserGroup
		var joined int64
		g, err := scanGroup(r, &ug.Role, &joined, &ug.SID)
		ug.GroupInfo, ug.JoinedAt = g, store.FromUnixMS(joined)
		return ug, err
	})
	if out == nil {
		out = []store.UserGroup{}
	}
	return out, wrap("user groups", err, nil)
}

func (s *Store) MemberState(ctx context.Context, conversationID, userID string) (store.MemberState, error) {
	var st store.MemberState
	var muted, joined, dismissed int64
	err := s.pool.QueryRow(ctx, `SELECT m.role, m.muted_until, m.created_at, c.mute_all, c.dismissed_at
		FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.conversation_id = $1 AND m.user_id = $2`, conversationID, userID).
		Scan(&st.Role, &muted, &joined, &st.MuteAll, &dismissed)
	if err != nil {
		return store.MemberState{}, wrap("member state", err, store.ErrNotMember)
	}
	st.MutedUntil, st.JoinedAt, st.DismissedAt = store.FromUnixMS(muted), store.FromUnixMS(joined), store.FromUnixMS(dismissed)
	return st, nil
}

func (s *Store) MuteMembers(ctx context.Context, conversationID string, userIDs []string, until time.Time) ([]string, error) {
	if err := validText(userIDs...); err != nil {
		return nil, err
	}
	var out []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockConv(ctx, tx, conversationID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE members SET muted_until = $3
			WHERE conversation_id = $1 AND user_id = ANY($2::text[]) RETURNING user_id`, conversationID, userIDs, store.UnixMS(until))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, wrap("mute members", err, nil)
	}
	return orderLike(out, userIDs), nil
}

func (s *Store) AppendNotice(ctx context.Context, n store.NewMessage) (store.Message, error) {
	if len(n.Content) == 0 {
		return store.Message{}, fmt.Errorf("postgres: append notice: empty content: %w", store.ErrInvalid)
	}
	if err := validText(n.SenderID, string(n.Content)); err != nil {
		return store.Message{}, err
	}
	at := store.NowOr(n.At)
	msg := store.Message{ID: store.NewID(), ConversationID: n.ConversationID, SenderID: n.SenderID, Type: n.Type,
		Content: n.Content, CreatedAt: at}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE conversations SET last_seq = last_seq + 1, last_msg_at = greatest(last_msg_at, $2)
			WHERE id = $1 RETURNING last_seq, members_version`, n.ConversationID, store.UnixMS(at)).Scan(&msg.Seq, &msg.MembersVersion)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, msg.ConversationID, msg.Seq, msg.ID, msg.SenderID, msg.Type, string(msg.Content), store.UnixMS(at))
		return err
	})
	if err != nil {
		return store.Message{}, wrap("append notice", err, nil)
	}
	return msg, nil
}

func (s *Store) DismissGroup(ctx context.Context, appID, groupID string, at time.Time) ([]store.Member, error) {
	var out []store.Member
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := lockGroup(ctx, tx, appID, groupID)
		if err != nil {
			return err
		}
		if out, err = deleteMembers(ctx, tx, `WHERE conversation_id = $1`, c.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE conversations SET dismissed_at = $2 WHERE id = $1 AND dismissed_at = 0`, c.ID, store.UnixMS(store.NowOr(at))); err != nil {
			return err
		}
		return bumpMembersVersion(ctx, tx, c.ID, int64(len(out)))
	})
	return out, wrap("dismiss group", err, nil)
}

// deleteMembers deletes the memberships matching where and returns them.
func deleteMembers(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]store.Member, error) {
	rows, err := tx.Query(ctx, `DELETE FROM members `+where+` RETURNING `+memberCols, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Member, error) { return scanMember(r) })
	if out == nil {
		out = []store.Member{}
	}
	return out, err
}

// ---- profiles

func scanProfile(row pgx.Row) (store.Profile, error) {
	var p store.Profile
	var ex string
	var created int64
	if err := row.Scan(&p.UserID, &p.Name, &p.AvatarURI, &ex, &created); err != nil {
		return store.Profile{}, err
	}
	if ex != "" {
		p.Extra = []byte(ex)
	}
	p.CreatedAt = store.FromUnixMS(created)
	return p, nil
}

func (s *Store) Profiles(ctx context.Context, appID string, userIDs []string) ([]store.Profile, error) {
	if err := validText(userIDs...); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT user_id, name, avatar_uri, extra, created_at FROM users
		WHERE app_id = $1 AND user_id = ANY($2::text[]) AND deleted_at = 0`, appID, userIDs)
	if err != nil {
		return nil, wrap("profiles", err, nil)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Profile, error) { return scanProfile(r) })
	if out == nil {
		out = []store.Profile{}
	}
	return out, wrap("profiles", err, nil)
}

func (s *Store) UpdateProfile(ctx context.Context, appID, userID string, u store.ProfileUpdate) (store.Profile, error) {
	a := assignments{set: []string{"deleted_at = deleted_at"}, args: []any{appID, userID}, texts: []string{userID}}
	a.text("name", u.Name)
	a.text("avatar_uri", u.AvatarURI)
	a.extra(u.Extra)
	if err := validText(a.texts...); err != nil {
		return store.Profile{}, err
	}
	p, err := scanProfile(s.pool.QueryRow(ctx, `UPDATE users SET `+strings.Join(a.set, ", ")+`
		WHERE app_id = $1 AND user_id = $2 AND deleted_at = 0 RETURNING user_id, name, avatar_uri, extra, created_at`, a.args...))
	return p, wrap("update profile", err, store.ErrNotFound)
}

func (s *Store) DeleteUser(ctx context.Context, appID, userID string, removeMessages bool) ([]store.Member, error) {
	var out []store.Member
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The row stays, with a bumped token version, so that tokens issued
		// before stay void if the user is created again.
		tag, err := tx.Exec(ctx, `UPDATE users SET token_version = token_version + 1, name = '', avatar_uri = '',
			extra = '', deleted_at = $3 WHERE app_id = $1 AND user_id = $2`, appID, userID, store.UnixMS(time.Now()))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		// Lock the conversations first, in id order, as sends do.
		rows, err := tx.Query(ctx, `SELECT c.id FROM conversations c JOIN members m ON m.conversation_id = c.id
			WHERE m.app_id = $1 AND m.user_id = $2 ORDER BY c.id FOR UPDATE OF c`, appID, userID)
		if err != nil {
			return err
		}
		convs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if out, err = deleteMembers(ctx, tx, `WHERE app_id = $1 AND user_id = $2`, appID, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE conversations SET members_version = members_version + 1 WHERE id = ANY($1::text[])`, convs); err != nil {
			return err
		}
		// The user's settings, blocks either way and last seen go with them.
		for _, q := range []string{
			`DELETE FROM session_settings WHERE app_id = $1 AND user_id = $2`,
			`DELETE FROM blocks WHERE app_id = $1 AND (user_id = $2 OR blocked_id = $2)`,
			`DELETE FROM last_seen WHERE app_id = $1 AND user_id = $2`,
		} {
			if _, err := tx.Exec(ctx, q, appID, userID); err != nil {
				return err
			}
		}
		if removeMessages {
			_, err = tx.Exec(ctx, `DELETE FROM messages WHERE sender_id = $2 AND conversation_id IN
				(SELECT id FROM conversations WHERE app_id = $1)`, appID, userID)
		}
		return err
	})
	return out, wrap("delete user", err, store.ErrNotFound)
}

func (s *Store) ShareConversation(ctx context.Context, appID, a, b string) (bool, error) {
	var one int
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM members x JOIN members y ON y.conversation_id = x.conversation_id
		WHERE x.app_id = $1 AND x.user_id = $2 AND y.user_id = $3 LIMIT 1`, appID, a, b).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, wrap("share conversation", err, nil)
}
