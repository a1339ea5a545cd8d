package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/chatd/chatd/internal/store"
)

func (s *Store) PeerReadSeqs(ctx context.Context, appID, userID string) (map[string]int64, error) {
	rows, err := s.query(ctx, `SELECT p.conversation_id, p.read_seq FROM members m
		JOIN conversations c ON c.id = m.conversation_id AND c.type = 1
		JOIN members p ON p.conversation_id = m.conversation_id AND p.user_id <> m.user_id
		WHERE m.app_id = ? AND m.user_id = ?`, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: peer read seqs: %w", err)
	}
	defer rows.Close()
	out := make(map[string]int64)
	for rows.Next() {
		var conv string
		var seq int64
		if err := rows.Scan(&conv, &seq); err != nil {
			return nil, fmt.Errorf("sqlite: peer read seqs: %w", err)
		}
		out[conv] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: peer read seqs: %w", err)
	}
	return out, nil
}

func (s *Store) MessageReaders(ctx context.Context, conversationID string, seq int64, senderID string) ([]store.Member, int, error) {
	rows, err := s.query(ctx, `SELECT m.conversation_id, m.app_id, m.user_id, m.sid, m.read_seq, m.joined_seq, m.created_at, m.hid_messages
		FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.conversation_id = ? AND m.user_id <> ?
		AND (? > m.joined_seq OR c.full_history OR m.full_history)
		ORDER BY m.user_id`, conversationID, senderID, seq)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: message readers: %w", err)
	}
	defer rows.Close()
	var readers []store.Member
	audience := 0
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: message readers: %w", err)
		}
		audience++
		if m.ReadSeq >= seq {
			readers = append(readers, m)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: message readers: %w", err)
	}
	return readers, audience, nil
}

func (s *Store) SharedWith(ctx context.Context, appID, userID string, others []string) ([]string, error) {
	if len(others) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(others)+3)
	args = append(args, appID, userID, appID)
	for _, o := range others {
		args = append(args, o)
	}
	// Not a cached statement: the IN list's length varies.
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT p.user_id FROM members m
		JOIN members p ON p.conversation_id = m.conversation_id
		WHERE m.app_id = ? AND m.user_id = ? AND p.app_id = ? AND p.user_id IN (?`+strings.Repeat(",?", len(others)-1)+`)
		ORDER BY p.user_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: shared with: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("sqlite: shared with: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: shared with: %w", err)
	}
	return out, nil
}
