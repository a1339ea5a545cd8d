package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// wstmt returns q prepared on the writer, preparing it on first use, for
// the lifecycle's write transactions (tx.StmtContext): parsing a statement
// costs about what running it does.
func (s *Store) wstmt(ctx context.Context, q string) (*sql.Stmt, error) {
	return prepared(ctx, &s.wstmts, s.w, q)
}

// The statements of the lifecycle's write transactions.
const (
	qLoadMsg     = `SELECT ` + msgCols + `, u.name, u.avatar_uri` + msgFrom + ` WHERE m.msg_id = ? AND m.conversation_id = ?`
	qNextChange  = `UPDATE conversations SET change_seq = change_seq + 1 WHERE id = ? RETURNING change_seq`
	qUpdateMsg   = `UPDATE messages SET content = ?, type = ?, meta = ?, version = ? WHERE conversation_id = ? AND seq = ?`
	qReactOn     = `INSERT OR IGNORE INTO reactions (conversation_id, seq, emoji, user_id, created_at) VALUES (?, ?, ?, ?, ?)`
	qReactOff    = `DELETE FROM reactions WHERE conversation_id = ? AND seq = ? AND emoji = ? AND user_id = ?`
	qReactions   = `SELECT emoji, user_id FROM reactions WHERE conversation_id = ? AND seq = ? ORDER BY created_at, emoji, user_id`
	qForgetReact = `DELETE FROM reactions WHERE conversation_id = ? AND seq = ?`
	qForgetMent  = `DELETE FROM mentions WHERE conversation_id = ? AND seq = ?`
)

var lifeQueries = []string{qLoadMsg, qNextChange, qUpdateMsg, qReactOn, qReactOff, qReactions, qForgetReact, qForgetMent}

// prepareLife prepares the lifecycle statements on the writer. It must run
// before the transaction that uses them: the writer has one connection,
// which the transaction holds.
func (s *Store) prepareLife(ctx context.Context) error {
	for _, q := range lifeQueries {
		if _, err := s.wstmt(ctx, q); err != nil {
			return fmt.Errorf("sqlite: prepare %q: %w", q, err)
		}
	}
	return nil
}

// txStmt is the prepared statement q (one of lifeQueries) bound to tx.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	st, _ := s.wstmts.Load(q)
	return tx.StmtContext(ctx, st.(*sql.Stmt))
}

// withExtras copies a new message's reply and mentions into the stored message.
func withExtras(msg *store.Message, n store.NewMessage) {
	msg.ReplySeq = n.ReplySeq
	msg.Meta = n.SentMeta()
}

// writeExtras stores a just-inserted message's reply and mentions. Plain
// messages have neither and cost nothing here.
func writeExtras(ctx context.Context, tx *sql.Tx, m store.Message) error {
	if m.ReplySeq == 0 && m.Meta.IsZero() {
		return nil
	}
	meta, err := store.EncodeMeta(m.Meta)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET reply_seq = ?, meta = ? WHERE conversation_id = ? AND seq = ?`,
		m.ReplySeq, meta, m.ConversationID, m.Seq); err != nil {
		return err
	}
	for _, u := range store.MentionRows(m) {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO mentions (conversation_id, user_id, seq) VALUES (?, ?, ?)`,
			m.ConversationID, u, m.Seq); err != nil {
			return err
		}
	}
	return nil
}

// msgTx is the store.MessageTx of one UpdateMessage.
type msgTx struct {
	s    *Store
	tx   *sql.Tx
	conv string
	seq  int64
	now  int64 // ns: reactions keep the order they were made in

	// before is the message's aggregate as loaded; after one reaction
	// change (set) Reactions derives the new one from it when it can
	// (store.NextReactions) instead of reading the rows again.
	before []store.Reaction
	set    int
	change struct {
		user, emoji string
		on          bool
	}
}

func (t *msgTx) SetReaction(ctx context.Context, userID, emoji string, on bool) (bool, error) {
	var res sql.Result
	var err error
	if on {
		res, err = t.s.txStmt(ctx, t.tx, qReactOn).ExecContext(ctx, t.conv, t.seq, emoji, userID, t.now)
	} else {
		res, err = t.s.txStmt(ctx, t.tx, qReactOff).ExecContext(ctx, t.conv, t.seq, emoji, userID)
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if n > 0 {
		t.changed(userID, emoji, on)
	}
	return n > 0, err
}

func (t *msgTx) changed(userID, emoji string, on bool) {
	t.set++
	t.change.user, t.change.emoji, t.change.on = userID, emoji, on
}

func (t *msgTx) Reactions(ctx context.Context) ([]store.Reaction, error) {
	if t.set == 1 {
		if rs, ok := store.NextReactions(t.before, t.change.user, t.change.emoji, t.change.on); ok {
			return rs, nil
		}
	}
	rows, err := t.s.txStmt(ctx, t.tx, qReactions).QueryContext(ctx, t.conv, t.seq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var pairs [][2]string
	for rows.Next() {
		var p [2]string
		if err := rows.Scan(&p[0], &p[1]); err != nil {
			return nil, err
		}
		pairs = append(pairs, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return store.AggregateReactions(pairs), nil
}

func (t *msgTx) Forget(ctx context.Context) error {
	if _, err := t.s.txStmt(ctx, t.tx, qForgetReact).ExecContext(ctx, t.conv, t.seq); err != nil {
		return err
	}
	_, err := t.s.txStmt(ctx, t.tx, qForgetMent).ExecContext(ctx, t.conv, t.seq)
	return err
}

func (s *Store) UpdateMessage(ctx context.Context, conversationID, msgID string, fn func(tx store.MessageTx, m *store.Message) error) (store.Message, error) {
	if err := s.prepareLife(ctx); err != nil {
		return store.Message{}, err
	}
	var out store.Message
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		m, err := scanMsg(s.txStmt(ctx, tx, qLoadMsg).QueryRowContext(ctx, msgID, conversationID), true, false)
		if err != nil {
			return notFound(err, store.ErrNotFound, "message %s in %s", msgID, conversationID)
		}
		cur := m // fn's changes are kept only if it succeeds
		cur.Meta.Mentions = slices.Clone(m.Meta.Mentions)
		cur.Meta.Reactions = slices.Clone(m.Meta.Reactions)
		if err := fn(&msgTx{s: s, tx: tx, conv: conversationID, seq: m.Seq, now: time.Now().UnixNano(), before: m.Meta.Reactions}, &cur); err != nil {
			out = m
			return err
		}
		m = cur
		meta, err := store.EncodeMeta(m.Meta)
		if err != nil {
			return fmt.Errorf("sqlite: encode meta: %w", err)
		}
		if err := s.txStmt(ctx, tx, qNextChange).QueryRowContext(ctx, conversationID).Scan(&m.Version); err != nil {
			return fmt.Errorf("sqlite: next change version of %s: %w", conversationID, err)
		}
		if _, err := s.txStmt(ctx, tx, qUpdateMsg).ExecContext(ctx,
			string(m.Content), m.Type, meta, m.Version, conversationID, m.Seq); err != nil {
			return fmt.Errorf("sqlite: update message %s: %w", msgID, err)
		}
		out = m
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrUnchanged) {
		return store.Message{}, err
	}
	return out, err
}

func (s *Store) Changes(ctx context.Context, conversationID, userID string, afterVersion int64, limit int) ([]store.Message, error) {
	if limit <= 0 {
		return []store.Message{}, nil
	}
	return s.queryMsgs(ctx, "changes of "+conversationID, limit,
		`SELECT `+msgCols+`, u.name, u.avatar_uri`+msgFrom+visibleFrom+`
		AND m.version > ? ORDER BY m.version ASC LIMIT ?`,
		userID, conversationID, max(afterVersion, 0), limit)
}

func (s *Store) MessagesBySeq(ctx context.Context, conversationID, userID string, seqs []int64) ([]store.Message, error) {
	if len(seqs) == 0 {
		return []store.Message{}, nil
	}
	args := []any{userID, conversationID}
	for _, q := range seqs {
		args = append(args, q)
	}
	return s.queryMsgs(ctx, "messages by seq of "+conversationID, len(seqs),
		`SELECT `+msgCols+`, u.name, u.avatar_uri`+msgFrom+visibleFrom+`
		AND m.seq IN (?`+strings.Repeat(", ?", len(seqs)-1)+`) ORDER BY m.seq`, args...)
}

func (s *Store) Reacted(ctx context.Context, conversationID, userID string, seqs []int64) (map[int64][]string, error) {
	out := map[int64][]string{}
	if len(seqs) == 0 {
		return out, nil
	}
	args := []any{conversationID, userID}
	for _, q := range seqs {
		args = append(args, q)
	}
	rows, err := s.query(ctx, `SELECT seq, emoji FROM reactions WHERE conversation_id = ? AND user_id = ?
		AND seq IN (?`+strings.Repeat(", ?", len(seqs)-1)+`) ORDER BY seq, created_at`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reactions of %s: %w", userID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var emoji string
		if err := rows.Scan(&seq, &emoji); err != nil {
			return nil, fmt.Errorf("sqlite: reactions of %s: %w", userID, err)
		}
		out[seq] = append(out[seq], emoji)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: reactions of %s: %w", userID, err)
	}
	return out, nil
}

func (s *Store) Hide(ctx context.Context, conversationID, userID string, fromSeq, toSeq int64) (store.Hidden, error) {
	h := store.Hidden{FromSeq: fromSeq, ToSeq: toSeq, At: time.UnixMilli(time.Now().UnixMilli())}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var last int64
		err := tx.QueryRowContext(ctx, `SELECT c.last_seq FROM members m JOIN conversations c ON c.id = m.conversation_id
			WHERE m.conversation_id = ? AND m.user_id = ?`, conversationID, userID).Scan(&last)
		if err != nil {
			return notFound(err, store.ErrNotMember, "hide for %s in %s", userID, conversationID)
		}
		if toSeq < 0 {
			h.ToSeq = last
			if _, err := tx.ExecContext(ctx, `UPDATE members SET read_seq = MAX(read_seq, ?) WHERE conversation_id = ? AND user_id = ?`,
				last, conversationID, userID); err != nil {
				return fmt.Errorf("sqlite: mark read: %w", err)
			}
		}
		if err := tx.QueryRowContext(ctx, `UPDATE conversations SET change_seq = change_seq + 1 WHERE id = ? RETURNING change_seq`,
			conversationID).Scan(&h.Version); err != nil {
			return fmt.Errorf("sqlite: next change version of %s: %w", conversationID, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO hidden (conversation_id, user_id, version, from_seq, to_seq, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, conversationID, userID, h.Version, h.FromSeq, h.ToSeq, h.At.UnixMilli())
		return err
	})
	if err != nil {
		return store.Hidden{}, fmt.Errorf("sqlite: hide: %w", err)
	}
	return h, nil
}

func (s *Store) HiddenRanges(ctx context.Context, conversationID, userID string, afterVersion int64) ([]store.Hidden, error) {
	rows, err := s.query(ctx, `SELECT from_seq, to_seq, version, created_at FROM hidden
		WHERE conversation_id = ? AND user_id = ? AND version > ? ORDER BY version`, conversationID, userID, afterVersion)
	if err != nil {
		return nil, fmt.Errorf("sqlite: hidden of %s: %w", userID, err)
	}
	defer rows.Close()
	out := []store.Hidden{}
	for rows.Next() {
		var h store.Hidden
		var at int64
		if err := rows.Scan(&h.FromSeq, &h.ToSeq, &h.Version, &at); err != nil {
			return nil, fmt.Errorf("sqlite: hidden of %s: %w", userID, err)
		}
		h.At = store.FromUnixMS(at)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: hidden of %s: %w", userID, err)
	}
	return out, nil
}

func (s *Store) MessageConversation(ctx context.Context, appID, msgID string) (string, error) {
	var id string
	err := s.queryRow(ctx, `SELECT c.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.msg_id = ? AND c.app_id = ?`, msgID, appID).Scan(&id)
	if err != nil {
		return "", notFound(err, store.ErrNotFound, "message %s", msgID)
	}
	return id, nil
}
