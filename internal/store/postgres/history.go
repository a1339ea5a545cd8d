package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Who sees a group's history: see Visibility in package store.

func (s *Store) SetGroupFullHistory(ctx context.Context, appID, groupID string, full bool) error {
	if err := validText(appID, groupID); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := lockGroup(ctx, tx, appID, groupID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE conversations SET full_history = $1 WHERE id = $2`, full, c.ID)
		return err
	})
	return wrap("set group history", err, nil)
}

func (s *Store) SetMembersFullHistory(ctx context.Context, appID, groupID string, userIDs []string, full bool) error {
	if err := validText(append([]string{appID, groupID}, userIDs...)...); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := lockGroup(ctx, tx, appID, groupID)
		if err != nil || len(userIDs) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE members SET full_history = $1 WHERE conversation_id = $2 AND user_id = ANY($3::text[])`,
			full, c.ID, userIDs)
		return err
	})
	return wrap("set members' history", err, nil)
}
