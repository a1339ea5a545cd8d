package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/groupcommit"
)

// Group commit. A transaction per message costs a commit (an fsync) per
// message, and senders to one conversation queue on its row lock anyway. So
// Send hands its message to a worker chosen by conversation; the worker takes
// whatever is queued (up to maxBatch), stores it in one transaction and
// answers every caller separately. Routing by conversation puts all
// concurrent sends to a hot conversation into one batch instead of several
// batches queueing on its row lock, while other conversations proceed on
// other workers. An idle store sends a lone message at once: nothing waits
// for a batch to fill.
const (
	sendWorkers   = 4
	maxBatch      = 512
	maxBatchBytes = 4 << 20 // of content: keeps one statement's parameters modest
	sendQueue     = maxBatch
	// batchTimeout bounds one batch transaction; callers' contexts cannot,
	// since one batch serves many callers.
	batchTimeout = 30 * time.Second
)

type sendReq struct {
	ctx  context.Context
	m    store.NewMessage // At set, at stored resolution
	done chan sendRes     // buffered: the worker never blocks on a caller that left
}

type sendRes struct {
	msg store.Message
	dup bool
	err error
}

var errClosed = errors.New("postgres: store closed")

// Send stores m; see store.Store. Concurrent calls are committed together.
func (s *Store) Send(ctx context.Context, m store.NewMessage) (store.Message, bool, error) {
	if err := validText(m.ConversationID, m.SenderID, m.ClientMsgID); err != nil {
		return store.Message{}, false, err
	}
	if !utf8.Valid(m.Content) {
		return store.Message{}, false, fmt.Errorf("postgres: send: %w: content is not UTF-8", store.ErrInvalid)
	}
	for _, c := range m.Content {
		if c == 0 {
			return store.Message{}, false, fmt.Errorf("postgres: send: %w: content holds a NUL byte", store.ErrInvalid)
		}
	}
	m.At = store.NowOr(m.At)
	req := &sendReq{ctx: ctx, m: m, done: make(chan sendRes, 1)}
	if !s.batching {
		res, err := s.storeBatch(ctx, []*sendReq{req})
		if err != nil {
			return store.Message{}, false, wrap("send", err, nil)
		}
		return res[0].msg, res[0].dup, res[0].err
	}

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.Message{}, false, errClosed
	}
	select {
	case s.sends[shard(m.ConversationID)] <- req:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return store.Message{}, false, fmt.Errorf("postgres: send: %w", ctx.Err())
	}

	select {
	case r := <-req.done:
		return r.msg, r.dup, r.err
	case <-ctx.Done():
		// The message may still be committed; a retry with the same
		// ClientMsgID finds it.
		return store.Message{}, false, fmt.Errorf("postgres: send: %w", ctx.Err())
	}
}

// shard picks the send worker of a conversation; one conversation always
// gets the same worker.
func shard(conversationID string) int {
	return int(maphash.String(shardSeed, conversationID) % sendWorkers)
}

var shardSeed = maphash.MakeSeed()

func (s *Store) sendWorker(sends <-chan *sendReq) {
	defer s.workers.Done()
	batch := make([]*sendReq, 0, maxBatch)
	for req := range sends {
		batch = append(batch[:0], req)
		size := len(req.m.Content)
	fill:
		for len(batch) < maxBatch && size < maxBatchBytes {
			select {
			case r, ok := <-sends:
				if !ok {
					break fill
				}
				batch = append(batch, r)
				size += len(r.m.Content)
			default:
				break fill
			}
		}
		s.sendBatch(batch)
		clear(batch)
	}
}

// sendBatch stores a batch and answers each request. If the transaction is
// rejected by the server (as opposed to the connection failing), one bad
// message must not fail the others, so each is retried alone.
func (s *Store) sendBatch(batch []*sendReq) {
	// A bug here must not take the process down or leave callers waiting
	// forever: answer whoever is still unanswered (done holds one value, so
	// a full channel means answered).
	defer func() {
		if p := recover(); p != nil {
			for _, r := range batch {
				select {
				case r.done <- sendRes{err: fmt.Errorf("postgres: send: internal error: %v", p)}:
				default:
				}
			}
		}
	}()
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- sendRes{err: fmt.Errorf("postgres: send: %w", err)}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()

	res, err := s.storeBatch(ctx, live)
	var pe *pgconn.PgError
	if err != nil && groupcommit.Redo(len(live), errors.As(err, &pe)) {
		for _, r := range live {
			one, err := s.storeBatch(ctx, []*sendReq{r})
			if err != nil {
				one = []sendRes{{err: wrap("send", err, nil)}}
			}
			r.done <- one[0]
		}
		return
	}
	for i, r := range live {
		if err != nil {
			r.done <- sendRes{err: wrap("send", err, nil)}
			continue
		}
		r.done <- res[i]
	}
}

type convSender struct{ conv, sender string }

type clientKey struct{ conv, sender, clientID string }

// storeBatch runs one transaction for reqs and returns one result per request.
// A returned error means nothing was stored, unless the connection broke
// around COMMIT: then, as with any database, the outcome is unknown and a
// retry with the same ClientMsgID tells.
//
// Two round trips: BEGIN + lock + membership + duplicate checks, then seq
// allocation + insert + read marks + COMMIT, each pipelined. What to store
// is decided between them by a groupcommit plan.
func (s *Store) storeBatch(ctx context.Context, reqs []*sendReq) ([]sendRes, error) {
	batch := make([]store.NewMessage, len(reqs))
	for i, r := range reqs {
		batch[i] = r.m
	}
	// Everything the plan may ask about, fetched at once.
	convs := groupcommit.Convs(batch, nil)
	var pairConv, pairUser []string
	var keyConv, keySender, keyClient []string
	seenPair := map[convSender]bool{}
	seenKey := map[clientKey]bool{}
	for _, m := range batch {
		p := convSender{m.ConversationID, m.SenderID}
		if !seenPair[p] {
			seenPair[p] = true
			pairConv, pairUser = append(pairConv, p.conv), append(pairUser, p.sender)
		}
		if m.ClientMsgID != "" {
			k := clientKey{p.conv, p.sender, m.ClientMsgID}
			if !seenKey[k] {
				seenKey[k] = true
				keyConv, keySender, keyClient = append(keyConv, k.conv), append(keySender, k.sender), append(keyClient, k.clientID)
			}
		}
	}

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// A failed pipeline leaves the transaction open; roll it back so the
	// connection can be reused (if that fails too, Release destroys it).
	committed := false
	defer func() {
		if !committed {
			conn.Exec(ctx, "ROLLBACK")
		}
		conn.Release()
	}()

	// The row locks come first, so the membership and duplicate checks see
	// every send committed before ours (READ COMMITTED takes a new snapshot
	// per statement) and none can commit until we do. Membership changes
	// lock the row too, so the members version read here stays current
	// until we commit.
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT id, last_seq, members_version FROM conversations WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`, convs)
	b.Queue(`SELECT m.conversation_id, m.user_id FROM members m
		JOIN unnest($1::text[], $2::text[]) AS v(c, u) ON m.conversation_id = v.c AND m.user_id = v.u`,
		pairConv, pairUser)
	b.Queue(`SELECT m.msg_id, m.conversation_id, m.seq, m.sender_id, m.type, m.content, m.client_msg_id, m.created_at,
		m.version, m.reply_seq, m.meta
		FROM messages m
		JOIN unnest($1::text[], $2::text[], $3::text[]) AS v(c, s, k)
		  ON m.conversation_id = v.c AND m.sender_id = v.s AND m.client_msg_id = v.k`,
		keyConv, keySender, keyClient)
	br := conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, err
	}

	lastSeq, version := map[string]int64{}, map[string]int64{}
	rows, _ := br.Query()
	var id string
	var seq, v int64
	_, err = pgx.ForEachRow(rows, []any{&id, &seq, &v}, func() error { lastSeq[id], version[id] = seq, v; return nil })
	if err != nil {
		br.Close()
		return nil, err
	}
	member := map[convSender]bool{}
	rows, _ = br.Query()
	var user string
	_, err = pgx.ForEachRow(rows, []any{&id, &user}, func() error { member[convSender{id, user}] = true; return nil })
	if err != nil {
		br.Close()
		return nil, err
	}
	original := map[clientKey]store.Message{}
	rows, _ = br.Query()
	err = func() error {
		defer rows.Close()
		for rows.Next() {
			var m store.Message
			var content string
			var created int64
			var meta *string
			if err := rows.Scan(&m.ID, &m.ConversationID, &m.Seq, &m.SenderID, &m.Type, &content, &m.ClientMsgID, &created,
				&m.Version, &m.ReplySeq, &meta); err != nil {
				return err
			}
			m.Content, m.CreatedAt = []byte(content), store.FromUnixMS(created)
			m.Meta, _ = store.DecodeMeta(meta) // written by chatd: a bad one reads as none
			original[clientKey{m.ConversationID, m.SenderID, m.ClientMsgID}] = m
		}
		return rows.Err()
	}()
	if err != nil {
		br.Close()
		return nil, err
	}
	if err := br.Close(); err != nil {
		return nil, err
	}

	plan, err := groupcommit.Make(batch, nil, groupcommit.Lookup{
		Member: func(conv, sender string) (bool, error) {
			_, exists := lastSeq[conv]
			return exists && member[convSender{conv, sender}], nil
		},
		Original: func(conv, sender, clientID string) (store.Message, bool, error) {
			m, ok := original[clientKey{conv, sender, clientID}]
			m.MembersVersion = version[conv]
			return m, ok, nil
		},
	})
	if err != nil {
		return nil, err
	}
	results := func() []sendRes {
		res := make([]sendRes, len(reqs))
		for i, r := range plan.Results() {
			res[i] = sendRes{msg: r.Msg, dup: r.Dup}
			if r.Refused {
				res[i].err = fmt.Errorf("postgres: send: %w", store.ErrNotMember)
			}
		}
		return res
	}
	if len(plan.Allocs) == 0 {
		return results(), nil // nothing to store: all refused or duplicates; roll back
	}
	allocConv := make([]string, len(plan.Allocs))
	allocN := make([]int64, len(plan.Allocs))
	allocAt := make([]int64, len(plan.Allocs))
	for i, a := range plan.Allocs {
		allocConv[i], allocN[i], allocAt[i] = a.Conv, a.N, a.At
		plan.Assign(a.Conv, lastSeq[a.Conv], version[a.Conv])
	}
	var (
		insConv, insID, insSender, insContent, insClient []string
		insSeq, insAt                                    []int64
		insType                                          []int32
	)
	var extras extraRows
	for _, m := range plan.Inserts() {
		extras.add(m)
		insConv, insID, insSender = append(insConv, m.ConversationID), append(insID, m.ID), append(insSender, m.SenderID)
		insContent, insClient = append(insContent, string(m.Content)), append(insClient, m.ClientMsgID)
		insSeq, insAt, insType = append(insSeq, m.Seq), append(insAt, store.UnixMS(m.CreatedAt)), append(insType, int32(m.Type))
	}
	var rmConv, rmUser []string
	var rmSeq []int64
	for _, rm := range plan.ReadMarks() {
		rmConv, rmUser, rmSeq = append(rmConv, rm.Conv), append(rmUser, rm.User), append(rmSeq, rm.Seq)
	}
	wantSeq := make(map[string]int64, len(plan.Allocs))
	for _, a := range plan.Allocs {
		wantSeq[a.Conv] = lastSeq[a.Conv] + a.N
	}

	// Everything else is one pipeline ending in COMMIT: the rows are locked,
	// so nothing can change the seqs computed above. If a statement fails,
	// the rest (COMMIT included) is skipped and the deferred ROLLBACK runs.
	b = &pgx.Batch{}
	// One statement allocates every conversation's block of seqs.
	b.Queue(`UPDATE conversations c
		SET last_seq = c.last_seq + v.n, last_msg_at = greatest(c.last_msg_at, v.at)
		FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(id, n, at)
		WHERE c.id = v.id
		RETURNING c.id, c.last_seq`, allocConv, allocN, allocAt)
	b.Queue(`INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, client_msg_id, created_at)
		SELECT c, s, id, snd, t, content, nullif(cid, ''), at
		FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::bigint[])
		  AS v(c, s, id, snd, t, content, cid, at)`,
		insConv, insSeq, insID, insSender, insType, insContent, insClient, insAt)
	b.Queue(`UPDATE members m SET read_seq = greatest(m.read_seq, v.s)
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS v(c, u, s)
		WHERE m.conversation_id = v.c AND m.user_id = v.u`, rmConv, rmUser, rmSeq)
	nExtras := extras.queue(b)
	if queueOutbox(b, plan.Events()) {
		nExtras++
	}
	b.Queue(`COMMIT`)
	br = conn.SendBatch(ctx, b)
	var mismatch error
	rows, _ = br.Query()
	_, err = pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
		// Cannot differ under the row lock; checked because a wrong seq
		// would be silent corruption.
		if want := wantSeq[id]; seq != want && mismatch == nil {
			mismatch = fmt.Errorf("seq allocation for %s returned %d, want %d", id, seq, want)
		}
		return nil
	})
	if err != nil {
		br.Close()
		return nil, err
	}
	for range 3 + nExtras { // insert, read marks, replies and mentions, commit
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, err
		}
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	committed = true
	if mismatch != nil {
		return nil, mismatch
	}
	return results(), nil
}
