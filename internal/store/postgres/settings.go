package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
)

const settingsCols = `conversation_id, pinned_at, muted, hidden, hidden_seq, draft, updated_at`

func scanSettings(row pgx.Row) (store.SessionSettings, error) {
	var st store.SessionSettings
	var pinned, updated int64
	if err := row.Scan(&st.ConversationID, &pinned, &st.Muted, &st.Hidden, &st.HiddenSeq, &st.Draft, &updated); err != nil {
		return st, err
	}
	if pinned != 0 {
		st.PinnedAt = store.FromUnixMS(pinned)
	}
	st.UpdatedAt = store.FromUnixMS(updated)
	return st, nil
}

func (s *Store) SessionSettings(ctx context.Context, appID, userID string) (map[string]store.SessionSettings, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+settingsCols+` FROM session_settings WHERE app_id = $1 AND user_id = $2`, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: session settings of %s: %w", userID, err)
	}
	defer rows.Close()
	out := map[string]store.SessionSettings{}
	for rows.Next() {
		st, err := scanSettings(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: session settings of %s: %w", userID, err)
		}
		out[st.ConversationID] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: session settings of %s: %w", userID, err)
	}
	return out, nil
}

func (s *Store) UpdateSessionSettings(ctx context.Context, appID, userID, conversationID string, p store.SettingsPatch) (store.SessionSettings, error) {
	var pinned *int64
	if p.Pinned != nil {
		v := int64(0)
		if *p.Pinned {
			v = store.UnixMS(p.At)
		}
		pinned = &v
	}
	// One statement: a hide records the conversation's last seq as it is
	// now, so the next message brings the session back.
	st, err := scanSettings(s.pool.QueryRow(ctx, `INSERT INTO session_settings AS s
		(conversation_id, user_id, app_id, pinned_at, muted, hidden, hidden_seq, draft, updated_at)
		VALUES ($1, $2, $3, COALESCE($4::bigint, 0), COALESCE($5::boolean, false), $6::boolean,
			CASE WHEN $6::boolean THEN (SELECT last_seq FROM conversations WHERE id = $1) ELSE 0 END,
			COALESCE($7::text, ''), $8)
		ON CONFLICT (conversation_id, user_id) DO UPDATE SET
			pinned_at = COALESCE($4::bigint, s.pinned_at), muted = COALESCE($5::boolean, s.muted),
			hidden = s.hidden OR $6::boolean,
			hidden_seq = CASE WHEN $6::boolean THEN excluded.hidden_seq ELSE s.hidden_seq END,
			draft = COALESCE($7::text, s.draft), updated_at = $8
		RETURNING `+settingsCols,
		conversationID, userID, appID, pinned, p.Muted, p.Hide, p.Draft, store.UnixMS(p.At)))
	if err != nil {
		return st, fmt.Errorf("postgres: update session settings of %s in %s: %w", userID, conversationID, err)
	}
	return st, nil
}

func (s *Store) MutedMembers(ctx context.Context, conversationID string) ([]string, error) {
	return s.stringRows(ctx, "muted members", `SELECT user_id FROM session_settings
		WHERE conversation_id = $1 AND muted ORDER BY user_id`, conversationID)
}

func (s *Store) Block(ctx context.Context, appID, userID string, blocked []string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO blocks (app_id, user_id, blocked_id, created_at)
		SELECT $1, $2, b, $4 FROM unnest($3::text[]) AS b ON CONFLICT DO NOTHING`,
		appID, userID, blocked, store.UnixMS(at))
	if err != nil {
		return fmt.Errorf("postgres: block: %w", err)
	}
	return nil
}

func (s *Store) Unblock(ctx context.Context, appID, userID string, blocked []string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM blocks WHERE app_id = $1 AND user_id = $2 AND blocked_id = ANY($3::text[])`,
		appID, userID, blocked)
	if err != nil {
		return fmt.Errorf("postgres: unblock: %w", err)
	}
	return nil
}

func (s *Store) Blocked(ctx context.Context, appID, userID string) ([]string, error) {
	return s.stringRows(ctx, "blocked", `SELECT blocked_id FROM blocks WHERE app_id = $1 AND user_id = $2 ORDER BY blocked_id`,
		appID, userID)
}

func (s *Store) SaveLastSeen(ctx context.Context, seen []store.LastSeen) error {
	// One statement for the batch; a user twice in it would be updated
	// twice, which PostgreSQL refuses: keep each user's latest.
	latest := map[[2]string]int64{}
	for _, l := range seen {
		k := [2]string{l.AppID, l.UserID}
		if at := store.UnixMS(l.At); at > latest[k] {
			latest[k] = at
		}
	}
	if len(latest) == 0 {
		return nil
	}
	apps, users, ats := make([]string, 0, len(latest)), make([]string, 0, len(latest)), make([]int64, 0, len(latest))
	for k, at := range latest {
		apps, users, ats = append(apps, k[0]), append(users, k[1]), append(ats, at)
	}
	// A deleted user's last sockets close after the deletion: their time is
	// not kept (DeleteUser removed the row).
	_, err := s.pool.Exec(ctx, `INSERT INTO last_seen AS l (app_id, user_id, seen_at)
		SELECT n.* FROM unnest($1::text[], $2::text[], $3::bigint[]) AS n (app_id, user_id, seen_at)
		WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.app_id = n.app_id AND u.user_id = n.user_id AND u.deleted_at > 0)
		ON CONFLICT (app_id, user_id) DO UPDATE SET seen_at = GREATEST(l.seen_at, excluded.seen_at)`,
		apps, users, ats)
	if err != nil {
		return fmt.Errorf("postgres: save last seen: %w", err)
	}
	return nil
}

func (s *Store) LastSeen(ctx context.Context, appID string, userIDs []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(userIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT user_id, seen_at FROM last_seen WHERE app_id = $1 AND user_id = ANY($2::text[])`,
		appID, userIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: last seen: %w", err)
	}
	var u string
	var at int64
	_, err = pgx.ForEachRow(rows, []any{&u, &at}, func() error {
		out[u] = store.FromUnixMS(at)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: last seen: %w", err)
	}
	return out, nil
}

// stringRows runs a read whose rows are one string each.
func (s *Store) stringRows(ctx context.Context, what, q string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}
