package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
)

// CreateFileWithin implements store.Store. The usage row stays locked from
// its update to the commit, so concurrent uploads of one app (on any node)
// are checked against the quota one after the other.
func (s *Store) CreateFileWithin(ctx context.Context, f store.File, maxAppBytes int64) error {
	if err := validText(f.ID, f.AppID, f.UserID, f.Key, f.Name, f.ContentType); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var used int64
		err := tx.QueryRow(ctx, `INSERT INTO file_usage (app_id, bytes, files) VALUES ($1, $2, 1)
			ON CONFLICT (app_id) DO UPDATE SET bytes = file_usage.bytes + excluded.bytes, files = file_usage.files + 1
			RETURNING bytes`, f.AppID, f.Size).Scan(&used)
		if err != nil {
			return err
		}
		if maxAppBytes > 0 && used > maxAppBytes {
			return fmt.Errorf("%w: app %s would use %d of %d bytes", store.ErrQuota, f.AppID, used, maxAppBytes)
		}
		_, err = tx.Exec(ctx, `INSERT INTO files (id, app_id, user_id, key, name, size, content_type, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			f.ID, f.AppID, f.UserID, f.Key, f.Name, f.Size, f.ContentType, store.UnixMS(store.NowOr(f.CreatedAt)))
		if isUniqueViolation(err) {
			return store.ErrExists
		}
		return err
	})
	return wrap("create file "+f.ID, err, nil)
}

// FileUsage implements store.Store.
func (s *Store) FileUsage(ctx context.Context, appID string) (store.FileUsage, error) {
	var u store.FileUsage
	err := s.pool.QueryRow(ctx, `SELECT bytes, files FROM file_usage WHERE app_id = $1`, appID).Scan(&u.Bytes, &u.Files)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.FileUsage{}, nil
	}
	return u, wrap("file usage", err, nil)
}
