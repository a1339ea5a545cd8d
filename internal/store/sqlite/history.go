package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/chatd/chatd/internal/store"
)

// Who sees a group's history: see Visibility in package store.

func (s *Store) SetGroupFullHistory(ctx context.Context, appID, groupID string, full bool) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		c, err := groupInTx(ctx, tx, appID, groupID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE conversations SET full_history = ? WHERE id = ?`, full, c.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set history of %s/%s: %w", appID, groupID, err)
	}
	return nil
}

func (s *Store) SetMembersFullHistory(ctx context.Context, appID, groupID string, userIDs []string, full bool) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		c, err := groupInTx(ctx, tx, appID, groupID)
		if err != nil {
			return err
		}
		for _, u := range userIDs {
			if _, err := tx.ExecContext(ctx, `UPDATE members SET full_history = ? WHERE conversation_id = ? AND user_id = ?`,
				full, c.ID, u); err != nil {
				return fmt.Errorf("member %s: %w", u, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set members' history of %s/%s: %w", appID, groupID, err)
	}
	return nil
}

// MessageSeq resolves a history cursor: the msg_id index holds the primary
// key (conversation_id, seq) of the WITHOUT ROWID messages table, so the
// seq comes from the index (SQLite still checks that the row exists), where
// MessageByID also decodes the row and joins its sender (docs/benchmarks.md,
// History).
func (s *Store) MessageSeq(ctx context.Context, conversationID, msgID string) (int64, error) {
	var seq int64
	err := s.queryRow(ctx, `SELECT seq FROM messages WHERE msg_id = ? AND conversation_id = ?`, msgID, conversationID).Scan(&seq)
	if err != nil {
		return 0, notFound(err, store.ErrNotFound, "message %s in %s", msgID, conversationID)
	}
	return seq, nil
}
