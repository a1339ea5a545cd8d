package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/store"
)

const settingsCols = `conversation_id, pinned_at, muted, hidden, hidden_seq, draft, updated_at`

func scanSettings(row scanner) (store.SessionSettings, error) {
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
	rows, err := s.query(ctx, `SELECT `+settingsCols+` FROM session_settings WHERE app_id = ? AND user_id = ?`, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: session settings of %s: %w", userID, err)
	}
	defer rows.Close()
	out := map[string]store.SessionSettings{}
	for rows.Next() {
		st, err := scanSettings(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: session settings of %s: %w", userID, err)
		}
		out[st.ConversationID] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: session settings of %s: %w", userID, err)
	}
	return out, nil
}

// settingsArgs are the nullable parameters of an update: NULL keeps the
// stored value.
func settingsArgs(p store.SettingsPatch) (pinned, muted, draft any) {
	if p.Pinned != nil {
		pinned = int64(0)
		if *p.Pinned {
			pinned = store.UnixMS(p.At)
		}
	}
	if p.Muted != nil {
		muted = *p.Muted
	}
	if p.Draft != nil {
		draft = *p.Draft
	}
	return
}

func (s *Store) UpdateSessionSettings(ctx context.Context, appID, userID, conversationID string, p store.SettingsPatch) (store.SessionSettings, error) {
	pinned, muted, draft := settingsArgs(p)
	// One statement: a hide records the conversation's last seq as it is
	// now, so the next message brings the session back.
	st, err := scanSettings(s.w.QueryRowContext(ctx, `INSERT INTO session_settings
		(conversation_id, user_id, app_id, pinned_at, muted, hidden, hidden_seq, draft, updated_at)
		VALUES (?1, ?2, ?3, COALESCE(?4, 0), COALESCE(?5, 0), ?6,
			CASE WHEN ?6 THEN (SELECT last_seq FROM conversations WHERE id = ?1) ELSE 0 END, COALESCE(?7, ''), ?8)
		ON CONFLICT (conversation_id, user_id) DO UPDATE SET
			pinned_at = COALESCE(?4, pinned_at), muted = COALESCE(?5, muted),
			hidden = CASE WHEN ?6 THEN 1 ELSE hidden END,
			hidden_seq = CASE WHEN ?6 THEN excluded.hidden_seq ELSE hidden_seq END,
			draft = COALESCE(?7, draft), updated_at = ?8
		RETURNING `+settingsCols,
		conversationID, userID, appID, pinned, muted, p.Hide, draft, store.UnixMS(p.At)))
	if err != nil {
		return st, fmt.Errorf("sqlite: update session settings of %s in %s: %w", userID, conversationID, err)
	}
	return st, nil
}

func (s *Store) MutedMembers(ctx context.Context, conversationID string) ([]string, error) {
	return s.stringRows(ctx, "muted members", `SELECT user_id FROM session_settings
		WHERE conversation_id = ? AND muted ORDER BY user_id`, conversationID)
}

func (s *Store) Block(ctx context.Context, appID, userID string, blocked []string, at time.Time) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		for _, b := range blocked {
			if _, err := tx.ExecContext(ctx, `INSERT INTO blocks (app_id, user_id, blocked_id, created_at)
				VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, appID, userID, b, store.UnixMS(at)); err != nil {
				return fmt.Errorf("sqlite: block: %w", err)
			}
		}
		return nil
	})
}

func (s *Store) Unblock(ctx context.Context, appID, userID string, blocked []string) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		for _, b := range blocked {
			if _, err := tx.ExecContext(ctx, `DELETE FROM blocks WHERE app_id = ? AND user_id = ? AND blocked_id = ?`,
				appID, userID, b); err != nil {
				return fmt.Errorf("sqlite: unblock: %w", err)
			}
		}
		return nil
	})
}

func (s *Store) Blocked(ctx context.Context, appID, userID string) ([]string, error) {
	return s.stringRows(ctx, "blocked", `SELECT blocked_id FROM blocks WHERE app_id = ? AND user_id = ? ORDER BY blocked_id`,
		appID, userID)
}

func (s *Store) SaveLastSeen(ctx context.Context, seen []store.LastSeen) error {
	if len(seen) == 0 {
		return nil
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		for _, l := range seen {
			// A deleted user's last sockets close after the deletion: their
			// time is not kept (DeleteUser removed the row).
			if _, err := tx.ExecContext(ctx, `INSERT INTO last_seen (app_id, user_id, seen_at) SELECT ?1, ?2, ?3
				WHERE NOT EXISTS (SELECT 1 FROM users WHERE app_id = ?1 AND user_id = ?2 AND deleted_at > 0)
				ON CONFLICT (app_id, user_id) DO UPDATE SET seen_at = MAX(seen_at, excluded.seen_at)`,
				l.AppID, l.UserID, store.UnixMS(l.At)); err != nil {
				return fmt.Errorf("sqlite: save last seen: %w", err)
			}
		}
		return nil
	})
}

func (s *Store) LastSeen(ctx context.Context, appID string, userIDs []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(userIDs) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(userIDs)+1)
	args = append(args, appID)
	for _, u := range userIDs {
		args = append(args, u)
	}
	// Not a cached statement: the IN list's length varies.
	rows, err := s.r.QueryContext(ctx, `SELECT user_id, seen_at FROM last_seen
		WHERE app_id = ? AND user_id IN (?`+strings.Repeat(",?", len(userIDs)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: last seen: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		var at int64
		if err := rows.Scan(&u, &at); err != nil {
			return nil, fmt.Errorf("sqlite: last seen: %w", err)
		}
		out[u] = store.FromUnixMS(at)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: last seen: %w", err)
	}
	return out, nil
}

// stringRows runs a read whose rows are one string each.
func (s *Store) stringRows(ctx context.Context, what, q string, args ...any) ([]string, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}
