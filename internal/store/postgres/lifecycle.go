package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
)

// extraRows collects the replies and mentions of a send batch, so that a
// batch of plain messages queues no statement for them.
type extraRows struct {
	conv, meta    []string
	hasMeta       []bool
	seq, replySeq []int64
	mConv, mUser  []string
	mSeq          []int64
}

func (e *extraRows) add(m store.Message) {
	if m.ReplySeq == 0 && m.Meta.IsZero() {
		return
	}
	meta, _ := store.EncodeMeta(m.Meta) // plain strings and bools: cannot fail
	e.conv, e.seq, e.replySeq = append(e.conv, m.ConversationID), append(e.seq, m.Seq), append(e.replySeq, m.ReplySeq)
	e.meta, e.hasMeta = append(e.meta, deref(meta)), append(e.hasMeta, meta != nil)
	for _, u := range store.MentionRows(m) {
		e.mConv, e.mUser, e.mSeq = append(e.mConv, m.ConversationID), append(e.mUser, u), append(e.mSeq, m.Seq)
	}
}

// queue adds the batch's statements and returns how many.
func (e *extraRows) queue(b *pgx.Batch) int {
	n := 0
	if len(e.conv) > 0 {
		b.Queue(`UPDATE messages m SET reply_seq = v.r, meta = CASE WHEN v.h THEN v.meta END
			FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bool[]) AS v(c, s, r, meta, h)
			WHERE m.conversation_id = v.c AND m.seq = v.s`, e.conv, e.seq, e.replySeq, e.meta, e.hasMeta)
		n++
	}
	if len(e.mConv) > 0 {
		b.Queue(`INSERT INTO mentions (conversation_id, user_id, seq)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING`, e.mConv, e.mUser, e.mSeq)
		n++
	}
	return n
}

// msgTx is the store.MessageTx of one UpdateMessage.
type msgTx struct {
	tx   pgx.Tx
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
	if err := validText(userID, emoji); err != nil {
		return false, err
	}
	var err error
	var n int64
	if on {
		tag, e := t.tx.Exec(ctx, `INSERT INTO reactions (conversation_id, seq, emoji, user_id, created_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, t.conv, t.seq, emoji, userID, t.now)
		n, err = tag.RowsAffected(), e
	} else {
		tag, e := t.tx.Exec(ctx, `DELETE FROM reactions WHERE conversation_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4`,
			t.conv, t.seq, emoji, userID)
		n, err = tag.RowsAffected(), e
	}
	if err == nil && n > 0 {
		t.set++
		t.change.user, t.change.emoji, t.change.on = userID, emoji, on
	}
	return n > 0, err
}

func (t *msgTx) Reactions(ctx context.Context) ([]store.Reaction, error) {
	if t.set == 1 {
		if rs, ok := store.NextReactions(t.before, t.change.user, t.change.emoji, t.change.on); ok {
			return rs, nil
		}
	}
	rows, err := t.tx.Query(ctx, `SELECT emoji, user_id FROM reactions WHERE conversation_id = $1 AND seq = $2
		ORDER BY created_at, emoji, user_id`, t.conv, t.seq)
	if err != nil {
		return nil, err
	}
	var pairs [][2]string
	var p [2]string
	if _, err := pgx.ForEachRow(rows, []any{&p[0], &p[1]}, func() error { pairs = append(pairs, p); return nil }); err != nil {
		return nil, err
	}
	return store.AggregateReactions(pairs), nil
}

func (t *msgTx) Forget(ctx context.Context) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM reactions WHERE conversation_id = $1 AND seq = $2`, t.conv, t.seq); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `DELETE FROM mentions WHERE conversation_id = $1 AND seq = $2`, t.conv, t.seq)
	return err
}

// UpdateMessage locks the conversation row first, as Send does, so that
// changes and sends of one conversation queue in one order and change
// versions commit in order.
func (s *Store) UpdateMessage(ctx context.Context, conversationID, msgID string, fn func(tx store.MessageTx, m *store.Message) error) (store.Message, error) {
	if err := validText(conversationID, msgID); err != nil {
		return store.Message{}, err
	}
	var out store.Message
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The lock and the load share a round trip; the load is a statement
		// of its own, run once the lock is held, so it reads the message as
		// the last change committed it.
		var b pgx.Batch
		b.Queue(`SELECT change_seq FROM conversations WHERE id = $1 FOR UPDATE`, conversationID)
		b.Queue(msgSelect+`WHERE m.msg_id = $1 AND m.conversation_id = $2`, msgID, conversationID)
		br := tx.SendBatch(ctx, &b)
		var version int64
		err := br.QueryRow().Scan(&version)
		var m store.Message
		if err == nil {
			m, err = scanMessage(br.QueryRow())
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return wrap("update message", err, store.ErrNotFound)
		}
		cur := m // fn's changes are kept only if it succeeds
		cur.Meta.Mentions = slices.Clone(m.Meta.Mentions)
		cur.Meta.Reactions = slices.Clone(m.Meta.Reactions)
		if err := fn(&msgTx{tx: tx, conv: conversationID, seq: m.Seq, now: time.Now().UnixNano(), before: m.Meta.Reactions}, &cur); err != nil {
			out = m
			return err
		}
		m = cur
		if err := validText(m.SenderID); err != nil {
			return err
		}
		meta, err := store.EncodeMeta(m.Meta)
		if err != nil {
			return fmt.Errorf("postgres: encode meta: %w", err)
		}
		m.Version = version + 1
		// The version bump and the message in one statement.
		if _, err := tx.Exec(ctx, `WITH c AS (UPDATE conversations SET change_seq = $6 WHERE id = $1)
			UPDATE messages SET content = $3, type = $4, meta = $5, version = $6
			WHERE conversation_id = $1 AND seq = $2`, conversationID, m.Seq, string(m.Content), m.Type, meta, m.Version); err != nil {
			return wrap("update message", err, nil)
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
	return s.queryMessages(ctx, "changes", msgSelect+visibleFrom+`AND m.version > $3
		ORDER BY m.version LIMIT $4`, userID, conversationID, max(afterVersion, 0), limit)
}

func (s *Store) MessagesBySeq(ctx context.Context, conversationID, userID string, seqs []int64) ([]store.Message, error) {
	if len(seqs) == 0 {
		return []store.Message{}, nil
	}
	return s.queryMessages(ctx, "messages by seq", msgSelect+visibleFrom+`AND m.seq = ANY($3::bigint[])
		ORDER BY m.seq`, userID, conversationID, seqs)
}

func (s *Store) Reacted(ctx context.Context, conversationID, userID string, seqs []int64) (map[int64][]string, error) {
	out := map[int64][]string{}
	if len(seqs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, emoji FROM reactions WHERE conversation_id = $1 AND user_id = $2
		AND seq = ANY($3::bigint[]) ORDER BY seq, created_at`, conversationID, userID, seqs)
	if err != nil {
		return nil, wrap("reacted", err, nil)
	}
	var seq int64
	var emoji string
	_, err = pgx.ForEachRow(rows, []any{&seq, &emoji}, func() error { out[seq] = append(out[seq], emoji); return nil })
	if err != nil {
		return nil, wrap("reacted", err, nil)
	}
	return out, nil
}

func (s *Store) Hide(ctx context.Context, conversationID, userID string, fromSeq, toSeq int64) (store.Hidden, error) {
	if err := validText(conversationID, userID); err != nil {
		return store.Hidden{}, err
	}
	h := store.Hidden{FromSeq: fromSeq, ToSeq: toSeq, At: time.UnixMilli(time.Now().UnixMilli())}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var last int64
		err := tx.QueryRow(ctx, `SELECT last_seq, change_seq FROM conversations WHERE id = $1 FOR UPDATE`, conversationID).Scan(&last, &h.Version)
		if err != nil {
			return wrap("hide", err, store.ErrNotMember)
		}
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM members WHERE conversation_id = $1 AND user_id = $2`, conversationID, userID).Scan(&one); err != nil {
			return wrap("hide", err, store.ErrNotMember)
		}
		if toSeq < 0 {
			h.ToSeq = last
			if _, err := tx.Exec(ctx, `UPDATE members SET read_seq = greatest(read_seq, $3) WHERE conversation_id = $1 AND user_id = $2`,
				conversationID, userID, last); err != nil {
				return wrap("hide", err, nil)
			}
		}
		h.Version++
		if _, err := tx.Exec(ctx, `UPDATE conversations SET change_seq = $2 WHERE id = $1`, conversationID, h.Version); err != nil {
			return wrap("hide", err, nil)
		}
		_, err = tx.Exec(ctx, `INSERT INTO hidden (conversation_id, user_id, version, from_seq, to_seq, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, conversationID, userID, h.Version, h.FromSeq, h.ToSeq, h.At.UnixMilli())
		return wrap("hide", err, nil)
	})
	if err != nil {
		return store.Hidden{}, err
	}
	return h, nil
}

func (s *Store) HiddenRanges(ctx context.Context, conversationID, userID string, afterVersion int64) ([]store.Hidden, error) {
	rows, err := s.pool.Query(ctx, `SELECT from_seq, to_seq, version, created_at FROM hidden
		WHERE conversation_id = $1 AND user_id = $2 AND version > $3 ORDER BY version`, conversationID, userID, afterVersion)
	if err != nil {
		return nil, wrap("hidden", err, nil)
	}
	out := []store.Hidden{}
	var h store.Hidden
	var at int64
	_, err = pgx.ForEachRow(rows, []any{&h.FromSeq, &h.ToSeq, &h.Version, &at}, func() error {
		h.At = store.FromUnixMS(at)
		out = append(out, h)
		return nil
	})
	if err != nil {
		return nil, wrap("hidden", err, nil)
	}
	return out, nil
}

func (s *Store) MessageConversation(ctx context.Context, appID, msgID string) (string, error) {
	if err := validText(appID, msgID); err != nil {
		return "", err
	}
	var id string
	err := s.pool.QueryRow(ctx, `SELECT c.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.msg_id = $1 AND c.app_id = $2`, msgID, appID).Scan(&id)
	return id, wrap("message conversation", err, store.ErrNotFound)
}
