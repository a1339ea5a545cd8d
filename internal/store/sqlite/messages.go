package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/groupcommit"
)

// sendReq is one Send waiting for the writer loop.
type sendReq struct {
	ctx context.Context
	m   store.NewMessage
	res chan sendRes // buffered: the loop never blocks on a caller that left
}

type sendRes struct {
	msg store.Message
	dup bool
	err error
}

// Send queues the message for the writer loop, which commits every send
// waiting at that moment in one transaction (group commit): much of SQLite's
// write cost is per transaction (locks, WAL frames, the page writes of the hot
// conversation row), so concurrent senders share it.
func (s *Store) Send(ctx context.Context, m store.NewMessage) (store.Message, bool, error) {
	if len(m.Content) == 0 {
		return store.Message{}, false, fmt.Errorf("sqlite: send: empty content: %w", store.ErrInvalid)
	}
	m.At = store.NowOr(m.At)
	r := &sendReq{ctx: ctx, m: m, res: make(chan sendRes, 1)}
	select {
	case <-s.done:
		return store.Message{}, false, errClosed
	default:
	}
	select {
	case s.sends <- r:
	case <-s.exited:
		return store.Message{}, false, errClosed
	case <-ctx.Done():
		return store.Message{}, false, fmt.Errorf("sqlite: send: %w", ctx.Err())
	}
	select {
	case res := <-r.res:
		return res.msg, res.dup, res.err
	case <-ctx.Done():
		// The message may still be committed; a retry with the same
		// ClientMsgID finds it.
		return store.Message{}, false, fmt.Errorf("sqlite: send: %w", ctx.Err())
	case <-s.exited:
		select {
		case res := <-r.res:
			return res.msg, res.dup, res.err
		default:
			return store.Message{}, false, errClosed
		}
	}
}

// writeLoop is the only goroutine that writes messages. It takes whatever
// sends are queued (up to maxBatch) and commits them together.
func (s *Store) writeLoop() {
	defer close(s.exited)
	batch := make([]*sendReq, 0, s.maxBatch)
	sinceWALCheck := 0
	for {
		var carried *resultsReq // results taken before the send they ride
		// Closing wins over a busy queue, so Close returns promptly.
		select {
		case <-s.done:
			s.failQueued()
			return
		default:
		}
		select {
		case <-s.done:
			s.failQueued()
			return
		case rr := <-s.results:
			// Webhook results ride the next batch of sends if one is
			// queued (select chose among ready cases at random); alone
			// when none is.
			select {
			case r := <-s.sends:
				batch = append(batch[:0], r)
				carried = rr
			default:
				s.writeResults([]*resultsReq{rr})
				continue
			}
		case r := <-s.sends:
			batch = append(batch[:0], r)
		}
		// A sender's channel send wakes this loop before the other senders
		// that are ready to run get to queue theirs; on one CPU every batch
		// would hold one message. Yielding lets them queue first, and costs
		// next to nothing when nobody else is runnable.
		yielded := 0
	fill:
		for len(batch) < s.maxBatch {
			select {
			case r := <-s.sends:
				batch = append(batch, r)
				continue
			default:
			}
			if yielded == len(batch) {
				break fill // the last yield brought nothing more
			}
			yielded = len(batch)
			runtime.Gosched()
		}
		rrs := s.queuedResults()
		if carried != nil {
			rrs = append(rrs, carried)
			carried = nil
		}
		s.commitBatch(batch, rrs)
		clear(batch) // drop references to finished requests
		if sinceWALCheck++; sinceWALCheck >= walCheckBatches {
			sinceWALCheck = 0
			s.trimWAL()
		}
	}
}

func (s *Store) failQueued() {
	for {
		select {
		case rr := <-s.results:
			rr.err = errClosed
			close(rr.done)
		case r := <-s.sends:
			r.res <- sendRes{err: errClosed}
		default:
			return
		}
	}
}

// commitBatch commits the batch in one transaction and answers every
// request. The sends are grouped by conversation with no savepoints, every
// check made before the first write; should a statement fail anyway, the
// batch is redone one savepoint per send, so that only the send at fault
// fails.
//
// Webhook results queued meanwhile (rrs) are written in the same
// transaction after the sends, behind a savepoint so that they cannot fail
// a send; those that could not ride it are written alone after.
func (s *Store) commitBatch(batch []*sendReq, rrs []*resultsReq) {
	// The batch outlives any single caller's context: one caller giving up
	// must not abort everyone else's messages.
	ctx := context.Background()
	res := make([]sendRes, len(batch))
	live := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			res[i].err = fmt.Errorf("sqlite: send: %w", err)
		} else {
			live++
		}
	}
	rode := false
	if live > 0 {
		var redo bool
		if redo, rode = s.commitGrouped(ctx, batch, res, rrs); redo {
			s.commitEach(ctx, batch, res)
		}
	}
	for i, r := range batch {
		r.res <- res[i]
	}
	if rode {
		for _, rr := range rrs {
			close(rr.done)
		}
	} else if len(rrs) > 0 {
		s.writeResults(rrs)
	}
}

// commitGrouped runs the grouped fast path. It fills res and returns false
// when the transaction committed or could not be committed; true when a
// statement failed and the batch must be redone with commitEach (res is
// then untouched).
func (s *Store) commitGrouped(ctx context.Context, batch []*sendReq, res []sendRes, rrs []*resultsReq) (redo, rode bool) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		failAll(res, fmt.Errorf("sqlite: send: begin: %w", err))
		return false, false
	}
	out := slices.Clone(res)
	otx := s.outboxTx()
	if err := s.stmts.sendGrouped(ctx, tx, batch, out, otx); err != nil {
		tx.Rollback()
		otx.done(false)
		pending := 0
		for _, r := range res {
			if r.err == nil {
				pending++
			}
		}
		if groupcommit.Redo(pending, true) {
			return true, false
		}
		failAll(res, fmt.Errorf("sqlite: send: %w", err))
		return false, false
	}
	rode = s.stmts.rideResults(ctx, tx, rrs)
	s.batches.Add(1)
	if err := tx.Commit(); err != nil {
		otx.done(false)
		failAll(res, fmt.Errorf("sqlite: send: commit: %w", err))
		return false, false
	}
	otx.done(true)
	copy(res, out)
	return false, rode
}

// failAll fails every request that has no error yet.
func failAll(res []sendRes, err error) {
	for i := range res {
		if res[i].err == nil {
			res[i] = sendRes{err: err}
		}
	}
}

// commitEach stores each pending request inside its own SAVEPOINT, so one
// failing send is rolled back alone, and commits them all at once.
func (s *Store) commitEach(ctx context.Context, batch []*sendReq, res []sendRes) {
	st := s.stmts
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		failAll(res, fmt.Errorf("sqlite: send: begin: %w", err))
		return
	}
	otx := s.outboxTx()
	fail := func(err error) {
		tx.Rollback()
		otx.done(false)
		for i := range res {
			if res[i].err == nil {
				res[i] = sendRes{err: err}
			}
		}
	}
	for i, r := range batch {
		if res[i].err != nil {
			continue
		}
		if _, err := tx.StmtContext(ctx, st.save).ExecContext(ctx); err != nil {
			fail(fmt.Errorf("sqlite: send: savepoint: %w", err))
			return
		}
		msg, dup, err := st.sendTx(ctx, tx, r.m, otx)
		if err != nil {
			res[i].err = fmt.Errorf("sqlite: send to %s: %w", r.m.ConversationID, err)
			if _, rerr := tx.StmtContext(ctx, st.rollback).ExecContext(ctx); rerr != nil {
				fail(fmt.Errorf("sqlite: send: rollback to savepoint: %w", rerr))
				return
			}
		} else {
			res[i] = sendRes{msg: msg, dup: dup}
		}
		if _, err := tx.StmtContext(ctx, st.release).ExecContext(ctx); err != nil {
			fail(fmt.Errorf("sqlite: send: release savepoint: %w", err))
			return
		}
	}
	s.batches.Add(1)
	if err := tx.Commit(); err != nil {
		otx.done(false)
		failAll(res, fmt.Errorf("sqlite: send: commit: %w", err))
		return
	}
	otx.done(true)
}

const msgCols = `m.msg_id, m.conversation_id, m.seq, m.sender_id, m.type, m.content, m.client_msg_id, m.created_at, m.version, m.reply_seq, m.meta`

// scanMsg reads msgCols, followed by the sender's name and avatar when
// withNames, or else by the conversation's members version when withVersion.
func scanMsg(row interface{ Scan(...any) error }, withNames, withVersion bool) (store.Message, error) {
	var m store.Message
	var content string
	var client, name, avatar sql.NullString
	var created int64
	var meta *string
	dst := []any{&m.ID, &m.ConversationID, &m.Seq, &m.SenderID, &m.Type, &content, &client, &created, &m.Version, &m.ReplySeq, &meta}
	switch {
	case withNames:
		dst = append(dst, &name, &avatar)
	case withVersion:
		dst = append(dst, &m.MembersVersion)
	}
	if err := row.Scan(dst...); err != nil {
		return store.Message{}, err
	}
	m.Content = json.RawMessage(content)
	m.ClientMsgID = client.String
	m.CreatedAt = store.FromUnixMS(created)
	m.SenderName = name.String
	m.SenderAvatar = avatar.String
	var err error
	if m.Meta, err = store.DecodeMeta(meta); err != nil {
		return store.Message{}, fmt.Errorf("message %s meta: %w", m.ID, err)
	}
	return m, nil
}

// Statements of the send path, prepared once on the writer connection:
// parsing them costs more than running them. qDup and qNextSeq return the
// conversation's members version too (a duplicate reports the one current
// at the retry).
const (
	qMember   = `SELECT 1 FROM members WHERE conversation_id = ? AND user_id = ?`
	qDup      = `SELECT ` + msgCols + `, c.members_version FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.conversation_id = ? AND m.sender_id = ? AND m.client_msg_id = ?`
	qNextSeq  = `UPDATE conversations SET last_seq = last_seq + 1, last_msg_at = MAX(last_msg_at, ?) WHERE id = ? RETURNING last_seq, members_version`
	qInsert   = `INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, client_msg_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qOwnRead  = `UPDATE members SET read_seq = ? WHERE conversation_id = ? AND user_id = ? AND read_seq < ?`
	qSave     = `SAVEPOINT send`
	qRollback = `ROLLBACK TO send`
	qRelease  = `RELEASE send`
)

// The grouped path's statements take many rows at once, in chunks of
// these sizes, so that a batch costs a few statements rather than a few
// per message; each size is prepared once.
var chunkSizes = []int{64, 16, 4, 1}

// qAllocRows allocates column2 seqs in each conversation column1 and
// returns the last, with the members version; with column4 set (a lone
// sender), only if column4 is a member, which saves that sender's
// membership query.
func qAllocRows(n int) string {
	return `UPDATE conversations SET last_seq = last_seq + v.column2, last_msg_at = MAX(last_msg_at, v.column3)
	FROM (VALUES ` + placeholders(n, 4) + `) AS v
	WHERE conversations.id = v.column1 AND (v.column4 IS NULL OR
		EXISTS (SELECT 1 FROM members WHERE conversation_id = v.column1 AND user_id = v.column4))
	RETURNING id, last_seq, members_version`
}

func qInsertRows(n int) string {
	return `INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, client_msg_id, created_at) VALUES ` + placeholders(n, 8)
}

// qOwnReadRows advances each sender's read mark (one's own messages are
// never unread).
func qOwnReadRows(n int) string {
	return `UPDATE members SET read_seq = v.column3 FROM (VALUES ` + placeholders(n, 3) + `) AS v
	WHERE members.conversation_id = v.column1 AND members.user_id = v.column2 AND members.read_seq < v.column3`
}

// placeholders returns n rows of cols parameters: (?, ?), (?, ?).
func placeholders(n, cols int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return row + strings.Repeat(", "+row, n-1)
}

type sendStmts struct {
	member, dup, nextSeq, insert, ownRead, save, rollback, release *sql.Stmt
	// By chunk size.
	allocRows, insertRows, ownReadRows map[int]*sql.Stmt
	outboxRows                         map[int]*sql.Stmt // webhooks.go
}

func prepareSend(ctx context.Context, db *sql.DB) (*sendStmts, error) {
	var st sendStmts
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&st.member, qMember}, {&st.dup, qDup}, {&st.nextSeq, qNextSeq}, {&st.insert, qInsert},
		{&st.ownRead, qOwnRead}, {&st.save, qSave}, {&st.rollback, qRollback}, {&st.release, qRelease},
	} {
		stmt, err := db.PrepareContext(ctx, p.q)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", p.q, err)
		}
		*p.dst = stmt
	}
	st.allocRows, st.insertRows, st.ownReadRows = map[int]*sql.Stmt{}, map[int]*sql.Stmt{}, map[int]*sql.Stmt{}
	st.outboxRows = map[int]*sql.Stmt{}
	for _, n := range chunkSizes {
		for _, p := range []struct {
			dst map[int]*sql.Stmt
			q   string
		}{{st.allocRows, qAllocRows(n)}, {st.insertRows, qInsertRows(n)}, {st.ownReadRows, qOwnReadRows(n)}, {st.outboxRows, qOutboxRows(n)}} {
			stmt, err := db.PrepareContext(ctx, p.q)
			if err != nil {
				st.close()
				return nil, fmt.Errorf("sqlite: prepare %q: %w", p.q, err)
			}
			p.dst[n] = stmt
		}
	}
	return &st, nil
}

func (st *sendStmts) close() {
	for _, s := range []*sql.Stmt{st.member, st.dup, st.nextSeq, st.insert, st.ownRead, st.save, st.rollback, st.release} {
		if s != nil {
			s.Close()
		}
	}
	for _, m := range []map[int]*sql.Stmt{st.allocRows, st.insertRows, st.ownReadRows, st.outboxRows} {
		for _, s := range m {
			s.Close()
		}
	}
}

// sendGrouped stores the batch's pending sends (res[i].err == nil) in tx,
// as a groupcommit plan decides: the memberships and client ids of a
// conversation with several senders or any client id are checked first,
// while a lone sender's membership is checked by the allocation itself.
// Then one statement (per chunk of rows) allocates every conversation's
// seqs, one inserts every message and one advances every sender's read
// mark. Any error is returned as is: the caller rolls back and redoes the
// batch with savepoints.
func (st *sendStmts) sendGrouped(ctx context.Context, tx *sql.Tx, batch []*sendReq, res []sendRes, otx *outboxTx) error {
	msgs := make([]store.NewMessage, len(batch))
	for i, r := range batch {
		msgs[i] = r.m
	}
	plan, err := groupcommit.Make(msgs, func(i int) bool { return res[i].err != nil }, groupcommit.Lookup{
		DeferLone: true,
		Member: func(conv, sender string) (bool, error) {
			var one int
			err := tx.StmtContext(ctx, st.member).QueryRowContext(ctx, conv, sender).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return false, nil
			}
			return err == nil, err
		},
		Original: func(conv, sender, clientID string) (store.Message, bool, error) {
			orig, err := scanMsg(tx.StmtContext(ctx, st.dup).QueryRowContext(ctx, conv, sender, clientID), false, true)
			if errors.Is(err, sql.ErrNoRows) {
				return store.Message{}, false, nil
			}
			return orig, err == nil, err
		},
	})
	if err != nil {
		return err
	}

	var allocs []any
	for _, a := range plan.Allocs {
		var lone any // NULL: memberships already checked
		if a.Lone != "" {
			lone = a.Lone
		}
		allocs = append(allocs, a.Conv, a.N, a.At, lone)
	}
	type allocated struct{ last, version int64 }
	got := make(map[string]allocated, len(plan.Allocs))
	err = chunked(allocs, 4, func(n int, args []any) error {
		rows, err := tx.StmtContext(ctx, st.allocRows[n]).QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var a allocated
			if err := rows.Scan(&id, &a.last, &a.version); err != nil {
				return err
			}
			got[id] = a
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("allocate seqs: %w", err)
	}
	for _, a := range slices.Clone(plan.Allocs) {
		g, ok := got[a.Conv]
		switch {
		case ok:
			plan.Assign(a.Conv, g.last-a.N, g.version)
		case a.Lone == "": // checked members, yet no conversation
			return fmt.Errorf("allocate seqs: conversation %s: %w", a.Conv, store.ErrNotFound)
		default:
			plan.Refuse(a.Conv)
		}
	}

	var inserts, reads []any
	for _, m := range plan.Inserts() {
		var client any // NULL when absent, so messages without a client id never collide
		if m.ClientMsgID != "" {
			client = m.ClientMsgID
		}
		inserts = append(inserts, m.ConversationID, m.Seq, m.ID, m.SenderID, m.Type, string(m.Content), client, store.UnixMS(m.CreatedAt))
	}
	for _, rm := range plan.ReadMarks() {
		reads = append(reads, rm.Conv, rm.User, rm.Seq)
	}
	if err := chunked(inserts, 8, func(n int, args []any) error {
		_, err := tx.StmtContext(ctx, st.insertRows[n]).ExecContext(ctx, args...)
		return err
	}); err != nil {
		return fmt.Errorf("insert messages: %w", err)
	}
	for _, m := range plan.Inserts() {
		if err := writeExtras(ctx, tx, m); err != nil {
			return fmt.Errorf("store reply and mentions: %w", err)
		}
	}
	if err := chunked(reads, 3, func(n int, args []any) error {
		_, err := tx.StmtContext(ctx, st.ownReadRows[n]).ExecContext(ctx, args...)
		return err
	}); err != nil {
		return fmt.Errorf("advance read_seq: %w", err)
	}
	if err := insertOutbox(ctx, tx, plan.Events(), st.outboxRows, otx); err != nil {
		return err
	}
	for i, r := range plan.Results() {
		switch {
		case res[i].err != nil: // answered before the plan
		case r.Refused:
			res[i].err = fmt.Errorf("sqlite: send to %s: %w", batch[i].m.ConversationID, store.ErrNotMember)
		default:
			res[i] = sendRes{msg: r.Msg, dup: r.Dup}
		}
	}
	return nil
}

// chunked calls fn on args, rows of cols values each, in chunks of the
// largest chunkSizes that fit, with the number of rows of each chunk.
func chunked(args []any, cols int, fn func(n int, args []any) error) error {
	for rows := len(args) / cols; rows > 0; {
		n := chunkSizes[len(chunkSizes)-1]
		for _, size := range chunkSizes {
			if size <= rows {
				n = size
				break
			}
		}
		if err := fn(n, args[:n*cols]); err != nil {
			return err
		}
		args, rows = args[n*cols:], rows-n
	}
	return nil
}

// sendTx is one send inside the batch transaction. Everything that can reject
// the message is checked before the first write.
// Its outbox rows are its last statement: a send that fails is rolled back
// to its savepoint with none of them in otx.
func (st *sendStmts) sendTx(ctx context.Context, tx *sql.Tx, n store.NewMessage, otx *outboxTx) (store.Message, bool, error) {
	var one int
	err := tx.StmtContext(ctx, st.member).QueryRowContext(ctx, n.ConversationID, n.SenderID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Message{}, false, store.ErrNotMember
	} else if err != nil {
		return store.Message{}, false, fmt.Errorf("check member: %w", err)
	}
	var client any // NULL when absent, so messages without a client id never collide
	if n.ClientMsgID != "" {
		client = n.ClientMsgID
		orig, err := scanMsg(tx.StmtContext(ctx, st.dup).QueryRowContext(ctx, n.ConversationID, n.SenderID, n.ClientMsgID), false, true)
		if err == nil {
			return orig, true, nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return store.Message{}, false, fmt.Errorf("check client msg id: %w", err)
		}
	}
	at := n.At.UnixMilli()
	var seq, version int64
	if err := tx.StmtContext(ctx, st.nextSeq).QueryRowContext(ctx, at, n.ConversationID).Scan(&seq, &version); err != nil {
		return store.Message{}, false, fmt.Errorf("allocate seq: %w", err)
	}
	msg := store.Message{
		ID:             store.NewID(),
		ConversationID: n.ConversationID,
		Seq:            seq,
		SenderID:       n.SenderID,
		Type:           n.Type,
		Content:        n.Content,
		ClientMsgID:    n.ClientMsgID,
		CreatedAt:      time.UnixMilli(at),
		MembersVersion: version,
	}
	withExtras(&msg, n)
	if _, err := tx.StmtContext(ctx, st.insert).ExecContext(ctx,
		msg.ConversationID, seq, msg.ID, msg.SenderID, msg.Type, string(msg.Content), client, at); err != nil {
		return store.Message{}, false, fmt.Errorf("insert message: %w", err)
	}
	if err := writeExtras(ctx, tx, msg); err != nil {
		return store.Message{}, false, fmt.Errorf("store reply and mentions: %w", err)
	}
	// One's own messages are never unread.
	if _, err := tx.StmtContext(ctx, st.ownRead).ExecContext(ctx, seq, n.ConversationID, n.SenderID, seq); err != nil {
		return store.Message{}, false, fmt.Errorf("advance read_seq: %w", err)
	}
	if n.Event != nil {
		if err := insertOutbox(ctx, tx, []*store.OutboxEvent{n.Event(msg)}, st.outboxRows, otx); err != nil {
			return store.Message{}, false, err
		}
	}
	return msg, false, nil
}

const msgFrom = ` FROM messages m
	JOIN conversations c ON c.id = m.conversation_id
	LEFT JOIN users u ON u.app_id = c.app_id AND u.user_id = m.sender_id`

// queryMsgs reads messages; size is how many the query may return at most,
// so that the result is allocated once.
func (s *Store) queryMsgs(ctx context.Context, what string, size int, q string, args ...any) ([]store.Message, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	out := make([]store.Message, 0, min(size, 256))
	for rows.Next() {
		m, err := scanMsg(rows, true, false)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// visibleFrom joins the reader's membership (alias v) and yields the seq
// after which they may see messages, as an expression for a range on the
// messages primary key (see Visibility in package store). A reader who is
// not a member has no row: the join leaves nothing.
const visibleFrom = `
	JOIN members v ON v.conversation_id = m.conversation_id AND v.user_id = ?
	WHERE m.conversation_id = ? AND m.seq > CASE WHEN c.full_history OR v.full_history THEN 0 ELSE v.joined_seq END`

func (s *Store) History(ctx context.Context, conversationID, userID string, beforeSeq int64, limit int) ([]store.Message, error) {
	if limit <= 0 {
		return []store.Message{}, nil
	}
	if beforeSeq <= 0 {
		beforeSeq = 1<<63 - 1
	}
	return s.queryPage(ctx, "history of "+conversationID, conversationID, limit,
		`SELECT `+pageCols+msgFrom+visibleFrom+`
		AND m.seq < ? ORDER BY m.seq DESC LIMIT ?`,
		userID, conversationID, beforeSeq, limit)
}

func (s *Store) After(ctx context.Context, conversationID, userID string, afterSeq int64, limit int) ([]store.Message, error) {
	if limit <= 0 {
		return []store.Message{}, nil
	}
	return s.queryPage(ctx, "messages after of "+conversationID, conversationID, limit,
		`SELECT `+pageCols+msgFrom+visibleFrom+`
		AND m.seq > ? ORDER BY m.seq ASC LIMIT ?`,
		userID, conversationID, afterSeq, limit)
}

// pageCols are msgCols without the conversation (the caller knows it),
// with the sender's name and avatar.
const pageCols = `m.msg_id, m.seq, m.sender_id, m.type, m.content, m.client_msg_id, m.created_at, m.version, m.reply_seq, m.meta, u.name, u.avatar_uri`

// queryPage reads a page of messages of one conversation (pageCols). It is
// the history path's inner loop (docs/benchmarks.md, History): the scan
// destinations are reused for every row, and the strings repeated from row
// to row (senders, their names and avatars) are allocated once per page.
func (s *Store) queryPage(ctx context.Context, what, convID string, size int, q string, args ...any) ([]store.Message, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var (
		m                            store.Message
		content                      []byte
		sender, client, name, avatar sql.RawBytes
		meta                         sql.NullString
		created                      int64
	)
	dst := []any{&m.ID, &m.Seq, &sender, &m.Type, &content, &client, &created, &m.Version, &m.ReplySeq, &meta, &name, &avatar}
	seen := make(map[string]string, 8)
	intern := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		if v, ok := seen[string(b)]; ok {
			return v
		}
		v := string(b)
		seen[v] = v
		return v
	}
	out := make([]store.Message, 0, min(size, 256))
	for rows.Next() {
		m = store.Message{ConversationID: convID}
		content = nil // a fresh copy per row: it is kept
		if err := rows.Scan(dst...); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		m.Content = content
		m.SenderID = intern(sender)
		m.ClientMsgID = string(client)
		m.CreatedAt = store.FromUnixMS(created)
		m.SenderName = intern(name)
		m.SenderAvatar = intern(avatar)
		if meta.Valid && meta.String != "" {
			if m.Meta, err = store.DecodeMeta(&meta.String); err != nil {
				return nil, fmt.Errorf("sqlite: %s: message %s meta: %w", what, m.ID, err)
			}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

func (s *Store) MessageByID(ctx context.Context, conversationID, msgID string) (store.Message, error) {
	m, err := scanMsg(s.queryRow(ctx, `SELECT `+msgCols+`, u.name, u.avatar_uri`+msgFrom+`
		WHERE m.msg_id = ? AND m.conversation_id = ?`, msgID, conversationID), true, false)
	if err != nil {
		return store.Message{}, notFound(err, store.ErrNotFound, "message %s in %s", msgID, conversationID)
	}
	return m, nil
}

func (s *Store) MarkRead(ctx context.Context, conversationID, userID string, seq int64) (int64, error) {
	var read int64
	// One statement: capped at last_seq, never backwards, seq < 0 = all.
	err := s.w.QueryRowContext(ctx, `UPDATE members SET read_seq = MAX(read_seq,
			(SELECT CASE WHEN ?1 < 0 OR ?1 > c.last_seq THEN c.last_seq ELSE ?1 END
			 FROM conversations c WHERE c.id = members.conversation_id))
		WHERE conversation_id = ?2 AND user_id = ?3 RETURNING read_seq`,
		seq, conversationID, userID).Scan(&read)
	if err != nil {
		return 0, notFound(err, store.ErrNotMember, "mark read %s in %s", userID, conversationID)
	}
	return read, nil
}

// sessionSelect is the whole session list in one query: the user's
// memberships (members_by_user) → conversation (PK) → last message (messages
// PK at last_seq) → for private conversations the peer's membership and user
// row. A conversation with oneself has no other member: the peer is oneself.
const sessionSelect = `SELECT m.sid, c.id, c.type,
	CASE WHEN c.type = 1 THEN COALESCE(pm.user_id, m.user_id) ELSE c.key END,
	CASE WHEN c.type = 1 THEN COALESCE(pu.name, '') ELSE c.name END,
	CASE WHEN c.type = 1 THEN COALESCE(pu.avatar_uri, '') ELSE c.avatar_uri END,
	c.last_seq, m.read_seq, c.last_msg_at,
	lm.msg_id, lm.seq, lm.sender_id, lm.type, lm.content, lm.client_msg_id, lm.created_at,
	(SELECT count(*) FROM mentions x WHERE x.conversation_id = m.conversation_id
		AND x.user_id IN (m.user_id, '') AND x.seq > m.read_seq), c.change_seq,
	EXISTS (SELECT 1 FROM hidden h WHERE h.conversation_id = m.conversation_id AND h.user_id = m.user_id
		AND h.from_seq <= c.last_seq AND h.to_seq >= c.last_seq)
FROM members m
JOIN conversations c ON c.id = m.conversation_id
LEFT JOIN messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq
	AND (lm.seq > m.joined_seq OR c.full_history OR m.full_history)
LEFT JOIN members pm ON c.type = 1 AND pm.conversation_id = m.conversation_id AND pm.user_id <> m.user_id
LEFT JOIN users pu ON c.type = 1 AND pu.app_id = m.app_id AND pu.user_id = COALESCE(pm.user_id, m.user_id)
`

const sessionsQuery = sessionSelect + `WHERE m.app_id = ? AND m.user_id = ?
ORDER BY c.last_msg_at DESC, c.created_at DESC, c.id DESC`

const sessionQuery = sessionSelect + `WHERE m.conversation_id = ? AND m.user_id = ?`

func scanSession(row interface{ Scan(...any) error }) (store.SessionRow, error) {
	var ss store.SessionRow
	var lastAt int64
	var (
		msgID, sender, content, client sql.NullString
		seq, typ, created              sql.NullInt64
	)
	if err := row.Scan(&ss.SID, &ss.ConversationID, &ss.Type, &ss.TargetID, &ss.Title, &ss.Avatar,
		&ss.LastSeq, &ss.ReadSeq, &lastAt,
		&msgID, &seq, &sender, &typ, &content, &client, &created, &ss.MentionedUnread, &ss.ChangeSeq, &ss.LastHidden); err != nil {
		return store.SessionRow{}, err
	}
	ss.LastMsgAt = store.FromUnixMS(lastAt)
	if msgID.Valid {
		ss.LastMsg = &store.Message{
			ID:             msgID.String,
			ConversationID: ss.ConversationID,
			Seq:            seq.Int64,
			SenderID:       sender.String,
			Type:           int(typ.Int64),
			Content:        json.RawMessage(content.String),
			ClientMsgID:    client.String,
			CreatedAt:      store.FromUnixMS(created.Int64),
		}
	}
	return ss, nil
}

func (s *Store) Sessions(ctx context.Context, appID, userID string) ([]store.SessionRow, error) {
	rows, err := s.query(ctx, sessionsQuery, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: sessions of %s/%s: %w", appID, userID, err)
	}
	defer rows.Close()
	out := []store.SessionRow{}
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: sessions of %s/%s: %w", appID, userID, err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: sessions of %s/%s: %w", appID, userID, err)
	}
	return out, nil
}

func (s *Store) Session(ctx context.Context, conversationID, userID string) (store.SessionRow, error) {
	ss, err := scanSession(s.queryRow(ctx, sessionQuery, conversationID, userID))
	if err != nil {
		return store.SessionRow{}, notFound(err, store.ErrNotMember, "session of %s in %s", userID, conversationID)
	}
	return ss, nil
}
