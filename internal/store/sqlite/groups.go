package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// Group management and profiles (store.GroupStore).

const groupSelect = `SELECT c.id, c.app_id, c.type, c.key, c.name, c.avatar_uri, c.last_seq, c.last_msg_at, c.created_at,
	c.notice, c.extra, c.mute_all, c.dismissed_at,
	COALESCE((SELECT o.user_id FROM members o WHERE o.conversation_id = c.id AND o.role = 2 LIMIT 1), ''),
	(SELECT COUNT(*) FROM members n WHERE n.conversation_id = c.id)`

func scanGroup(row scanner, extra ...any) (store.GroupInfo, error) {
	var g store.GroupInfo
	var lastAt, created, dismissed int64
	var ex string
	dst := []any{&g.ID, &g.AppID, &g.Type, &g.Key, &g.Name, &g.AvatarURI, &g.LastSeq, &lastAt, &created,
		&g.Notice, &ex, &g.MuteAll, &dismissed, &g.OwnerID, &g.MemberCount}
	if err := row.Scan(append(dst, extra...)...); err != nil {
		return store.GroupInfo{}, err
	}
	g.LastMsgAt, g.CreatedAt, g.DismissedAt = store.FromUnixMS(lastAt), store.FromUnixMS(created), store.FromUnixMS(dismissed)
	if ex != "" {
		g.Extra = json.RawMessage(ex)
	}
	return g, nil
}

func (s *Store) GroupInfo(ctx context.Context, appID, groupID string) (store.GroupInfo, error) {
	g, err := scanGroup(s.queryRow(ctx, groupSelect+` FROM conversations c WHERE c.app_id = ? AND c.type = 2 AND c.key = ?`, appID, groupID))
	if err != nil {
		return store.GroupInfo{}, notFound(err, store.ErrNotFound, "group %s/%s", appID, groupID)
	}
	return g, nil
}

func (s *Store) UpdateGroup(ctx context.Context, appID, groupID string, u store.GroupUpdate) (store.GroupInfo, error) {
	var g store.GroupInfo
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		c, err := groupInTx(ctx, tx, appID, groupID)
		if err != nil {
			return err
		}
		set, args := []string{}, []any{}
		add := func(col string, v any) { set = append(set, col+" = ?"); args = append(args, v) }
		if u.Name != nil {
			add("name", *u.Name)
		}
		if u.AvatarURI != nil {
			add("avatar_uri", *u.AvatarURI)
		}
		if u.Notice != nil {
			add("notice", *u.Notice)
		}
		if u.Extra != nil {
			add("extra", string(u.Extra))
		}
		if u.MuteAll != nil {
			add("mute_all", *u.MuteAll)
		}
		if len(set) > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE conversations SET `+strings.Join(set, ", ")+` WHERE id = ?`, append(args, c.ID)...); err != nil {
				return err
			}
		}
		g, err = scanGroup(tx.QueryRowContext(ctx, groupSelect+` FROM conversations c WHERE c.id = ?`, c.ID))
		return err
	})
	if err != nil {
		return store.GroupInfo{}, fmt.Errorf("sqlite: update group %s/%s: %w", appID, groupID, err)
	}
	return g, nil
}

func (s *Store) SetRole(ctx context.Context, conversationID string, userIDs []string, role int) ([]string, error) {
	if role != store.RoleMember && role != store.RoleAdmin {
		return nil, fmt.Errorf("sqlite: set role %d: %w", role, store.ErrInvalid)
	}
	changed := []string{}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		for _, u := range userIDs {
			res, err := tx.ExecContext(ctx, `UPDATE members SET role = ?
				WHERE conversation_id = ? AND user_id = ? AND role <> ? AND role <> 2`, role, conversationID, u, role)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				changed = append(changed, u)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: set role in %s: %w", conversationID, err)
	}
	return changed, nil
}

func (s *Store) TransferOwner(ctx context.Context, conversationID, userID string) (string, error) {
	var prev string
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var role int
		err := tx.QueryRowContext(ctx, `SELECT role FROM members WHERE conversation_id = ? AND user_id = ?`, conversationID, userID).Scan(&role)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotMember
		} else if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT user_id FROM members WHERE conversation_id = ? AND role = 2 LIMIT 1`, conversationID).Scan(&prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if prev == userID {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE members SET role = 0 WHERE conversation_id = ? AND role = 2`, conversationID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE members SET role = 2 WHERE conversation_id = ? AND user_id = ?`, conversationID, userID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("sqlite: transfer owner of %s: %w", conversationID, err)
	}
	return prev, nil
}

func (s *Store) GroupMembers(ctx context.Context, conversationID, afterUserID string, limit int) ([]store.GroupMember, error) {
	out := []store.GroupMember{}
	if limit <= 0 {
		return out, nil
	}
	rows, err := s.query(ctx, `SELECT m.user_id, m.role, m.created_at, m.muted_until, COALESCE(u.name, ''), COALESCE(u.avatar_uri, '')
		FROM members m LEFT JOIN users u ON u.app_id = m.app_id AND u.user_id = m.user_id
		WHERE m.conversation_id = ? AND m.user_id > ? ORDER BY m.user_id LIMIT ?`, conversationID, afterUserID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: group members of %s: %w", conversationID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m store.GroupMember
		var joined, muted int64
		if err := rows.Scan(&m.UserID, &m.Role, &joined, &muted, &m.Name, &m.AvatarURI); err != nil {
			return nil, fmt.Errorf("sqlite: group members of %s: %w", conversationID, err)
		}
		m.JoinedAt, m.MutedUntil = store.FromUnixMS(joined), store.FromUnixMS(muted)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: group members of %s: %w", conversationID, err)
	}
	return out, nil
}

func (s *Store) UserGroups(ctx context.Context, appID, userID string) ([]store.UserGroup, error) {
	rows, err := s.query(ctx, groupSelect+`, m.role, m.created_at, m.sid
		FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.app_id = ? AND m.user_id = ? AND c.type = 2 ORDER BY c.key`, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: groups of %s/%s: %w", appID, userID, err)
	}
	defer rows.Close()
	out := []store.UserGroup{}
	for rows.Next() {
		var ug store.UserGroup
		var joined int64
		g, err := scanGroup(rows, &ug.Role, &joined, &ug.SID)
		if err != nil {
			return nil, fmt.Errorf("sqlite: groups of %s/%s: %w", appID, userID, err)
		}
		ug.GroupInfo, ug.JoinedAt = g, store.FromUnixMS(joined)
		out = append(out, ug)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: groups of %s/%s: %w", appID, userID, err)
	}
	return out, nil
}

func (s *Store) MemberState(ctx context.Context, conversationID, userID string) (store.MemberState, error) {
	var st store.MemberState
	var muted, joined, dismissed int64
	err := s.queryRow(ctx, `SELECT m.role, m.muted_until, m.created_at, c.mute_all, c.dismissed_at
		FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.conversation_id = ? AND m.user_id = ?`, conversationID, userID).
		Scan(&st.Role, &muted, &joined, &st.MuteAll, &dismissed)
	if err != nil {
		return store.MemberState{}, notFound(err, store.ErrNotMember, "member %s of %s", userID, conversationID)
	}
	st.MutedUntil, st.JoinedAt, st.DismissedAt = store.FromUnixMS(muted), store.FromUnixMS(joined), store.FromUnixMS(dismissed)
	return st, nil
}

func (s *Store) MuteMembers(ctx context.Context, conversationID string, userIDs []string, until time.Time) ([]string, error) {
	out := []string{}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		for _, u := range userIDs {
			res, err := tx.ExecContext(ctx, `UPDATE members SET muted_until = ? WHERE conversation_id = ? AND user_id = ?`, store.UnixMS(until), conversationID, u)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				out = append(out, u)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: mute in %s: %w", conversationID, err)
	}
	return out, nil
}

func (s *Store) AppendNotice(ctx context.Context, n store.NewMessage) (store.Message, error) {
	if len(n.Content) == 0 {
		return store.Message{}, fmt.Errorf("sqlite: append notice: empty content: %w", store.ErrInvalid)
	}
	at := store.NowOr(n.At).UnixMilli()
	msg := store.Message{ID: store.NewID(), ConversationID: n.ConversationID, SenderID: n.SenderID, Type: n.Type,
		Content: n.Content, CreatedAt: time.UnixMilli(at)}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, qNextSeq, at, n.ConversationID).Scan(&msg.Seq, &msg.MembersVersion)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, qInsert, msg.ConversationID, msg.Seq, msg.ID, msg.SenderID, msg.Type, string(msg.Content), nil, at)
		return err
	})
	if err != nil {
		return store.Message{}, fmt.Errorf("sqlite: append notice to %s: %w", n.ConversationID, err)
	}
	return msg, nil
}

func (s *Store) DismissGroup(ctx context.Context, appID, groupID string, at time.Time) ([]store.Member, error) {
	var out []store.Member
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		c, err := groupInTx(ctx, tx, appID, groupID)
		if err != nil {
			return err
		}
		if out, err = deleteMembers(ctx, tx, `WHERE conversation_id = ?`, c.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET dismissed_at = ? WHERE id = ? AND dismissed_at = 0`, store.UnixMS(store.NowOr(at)), c.ID); err != nil {
			return err
		}
		return bumpMembersVersion(ctx, tx, c.ID, int64(len(out)))
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: dismiss %s/%s: %w", appID, groupID, err)
	}
	return out, nil
}

// deleteMembers deletes the memberships matching where and returns them.
func deleteMembers(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]store.Member, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM members `+where+` RETURNING `+memberCols, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Member{}
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ---- profiles ----

func (s *Store) Profiles(ctx context.Context, appID string, userIDs []string) ([]store.Profile, error) {
	out := []store.Profile{}
	for _, id := range userIDs {
		var p store.Profile
		var ex string
		var created int64
		err := s.queryRow(ctx, `SELECT user_id, name, avatar_uri, extra, created_at FROM users
			WHERE app_id = ? AND user_id = ? AND deleted_at = 0`, appID, id).Scan(&p.UserID, &p.Name, &p.AvatarURI, &ex, &created)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("sqlite: profiles in %s: %w", appID, err)
		}
		if ex != "" {
			p.Extra = json.RawMessage(ex)
		}
		p.CreatedAt = store.FromUnixMS(created)
		out = append(out, p)
	}
	return out, nil
}

func (s *Store) UpdateProfile(ctx context.Context, appID, userID string, u store.ProfileUpdate) (store.Profile, error) {
	var p store.Profile
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		set, args := []string{"deleted_at = deleted_at"}, []any{}
		if u.Name != nil {
			set, args = append(set, "name = ?"), append(args, *u.Name)
		}
		if u.AvatarURI != nil {
			set, args = append(set, "avatar_uri = ?"), append(args, *u.AvatarURI)
		}
		if u.Extra != nil {
			set, args = append(set, "extra = ?"), append(args, string(u.Extra))
		}
		var ex string
		var created int64
		err := tx.QueryRowContext(ctx, `UPDATE users SET `+strings.Join(set, ", ")+`
			WHERE app_id = ? AND user_id = ? AND deleted_at = 0 RETURNING user_id, name, avatar_uri, extra, created_at`,
			append(args, appID, userID)...).Scan(&p.UserID, &p.Name, &p.AvatarURI, &ex, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if ex != "" {
			p.Extra = json.RawMessage(ex)
		}
		p.CreatedAt = store.FromUnixMS(created)
		return err
	})
	if err != nil {
		return store.Profile{}, fmt.Errorf("sqlite: update profile %s/%s: %w", appID, userID, err)
	}
	return p, nil
}

func (s *Store) DeleteUser(ctx context.Context, appID, userID string, removeMessages bool) ([]store.Member, error) {
	var out []store.Member
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		// The row stays, with a bumped token version, so that tokens issued
		// before stay void if the user is created again.
		res, err := tx.ExecContext(ctx, `UPDATE users SET token_version = token_version + 1, name = '', avatar_uri = '',
			extra = '', deleted_at = ? WHERE app_id = ? AND user_id = ?`, store.UnixMS(time.Now()), appID, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		if out, err = deleteMembers(ctx, tx, `WHERE app_id = ? AND user_id = ?`, appID, userID); err != nil {
			return err
		}
		for _, m := range out {
			if err := bumpMembersVersion(ctx, tx, m.ConversationID, 1); err != nil {
				return err
			}
		}
		// The user's settings, blocks either way and last seen go with them.
		for _, q := range []string{
			`DELETE FROM session_settings WHERE app_id = ? AND user_id = ?`,
			`DELETE FROM blocks WHERE app_id = ? AND user_id = ?`,
			`DELETE FROM blocks WHERE app_id = ? AND blocked_id = ?`,
			`DELETE FROM last_seen WHERE app_id = ? AND user_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, appID, userID); err != nil {
				return err
			}
		}
		if removeMessages {
			if _, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE sender_id = ? AND conversation_id IN
				(SELECT id FROM conversations WHERE app_id = ?)`, userID, appID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: delete user %s/%s: %w", appID, userID, err)
	}
	return out, nil
}

func (s *Store) ShareConversation(ctx context.Context, appID, a, b string) (bool, error) {
	var one int
	err := s.queryRow(ctx, `SELECT 1 FROM members x JOIN members y ON y.conversation_id = x.conversation_id
		WHERE x.app_id = ? AND x.user_id = ? AND y.user_id = ? LIMIT 1`, appID, a, b).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: share conversation %s/%s: %w", appID, a, err)
	}
	return true, nil
}
