package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
)

func (s *Store) PeerReadSeqs(ctx context.Context, appID, userID string) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.conversation_id, p.read_seq FROM members m
		JOIN conversations c ON c.id = m.conversation_id AND c.type = 1
		JOIN members p ON p.conversation_id = m.conversation_id AND p.user_id <> m.user_id
		WHERE m.app_id = $1 AND m.user_id = $2`, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: peer read seqs: %w", err)
	}
	out := make(map[string]int64)
	var conv string
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&conv, &seq}, func() error {
		out[conv] = seq
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: peer read seqs: %w", err)
	}
	return out, nil
}

func (s *Store) MessageReaders(ctx context.Context, conversationID string, seq int64, senderID string) ([]store.Member, int, error) {
	rows, err := s.pool.Query(ctx, `SELECT m.conversation_id, m.app_id, m.user_id, m.sid, m.read_seq, m.joined_seq, m.created_at, m.hid_messages
		FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.conversation_id = $1 AND m.user_id <> $2
		AND ($3 > m.joined_seq OR c.full_history OR m.full_history)
		ORDER BY m.user_id`, conversationID, senderID, seq)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: message readers: %w", err)
	}
	defer rows.Close()
	var readers []store.Member
	audience := 0
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("postgres: message readers: %w", err)
		}
		audience++
		if m.ReadSeq >= seq {
			readers = append(readers, m)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("postgres: message readers: %w", err)
	}
	return readers, audience, nil
}

func (s *Store) SharedWith(ctx context.Context, appID, userID string, others []string) ([]string, error) {
	if len(others) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT p.user_id FROM members m
		JOIN members p ON p.conversation_id = m.conversation_id
		WHERE m.app_id = $1 AND m.user_id = $2 AND p.app_id = $1 AND p.user_id = ANY($3::text[])
		ORDER BY p.user_id`, appID, userID, others)
	if err != nil {
		return nil, fmt.Errorf("postgres: shared with: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: shared with: %w", err)
	}
	return out, nil
}
