package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/chatd/chatd/internal/store"
)

// CreateFileWithin implements store.Store. The writer's transaction is
// exclusive, so the usage read and the insert cannot interleave with
// another upload's.
func (s *Store) CreateFileWithin(ctx context.Context, f store.File, maxAppBytes int64) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var used int64
		err := tx.QueryRowContext(ctx, `INSERT INTO file_usage (app_id, bytes, files) VALUES (?, ?, 1)
			ON CONFLICT (app_id) DO UPDATE SET bytes = bytes + excluded.bytes, files = files + 1
			RETURNING bytes`, f.AppID, f.Size).Scan(&used)
		if err != nil {
			return err
		}
		if maxAppBytes > 0 && used > maxAppBytes {
			return fmt.Errorf("%w: app %s would use %d of %d bytes", store.ErrQuota, f.AppID, used, maxAppBytes)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO files (id, app_id, user_id, key, name, size, content_type, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			f.ID, f.AppID, f.UserID, f.Key, f.Name, f.Size, f.ContentType, store.UnixMS(store.NowOr(f.CreatedAt)))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrExists
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: create file %s: %w", f.ID, err)
	}
	return nil
}

// FileUsage implements store.Store.
func (s *Store) FileUsage(ctx context.Context, appID string) (store.FileUsage, error) {
	var u store.FileUsage
	err := s.queryRow(ctx, `SELECT bytes, files FROM file_usage WHERE app_id = ?`, appID).Scan(&u.Bytes, &u.Files)
	if errors.Is(err, sql.ErrNoRows) {
		return store.FileUsage{}, nil
	}
	if err != nil {
		return store.FileUsage{}, fmt.Errorf("sqlite: file usage of %s: %w", appID, err)
	}
	return u, nil
}
