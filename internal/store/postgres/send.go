package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatd/chatd/internal/store"
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
	m    store.NewMessage
	at   time.Time
	done chan sendRes // buffered: the worker never blocks on a caller that left
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
	req := &sendReq{ctx: ctx, m: m, at: nowOr(m.At), done: make(chan sendRes, 1)}
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

// shard picks the send worker of a conversation (FNV-1a).
func shard(conversationID string) int {
	h := uint32(2166136261)
	for i := 0; i < len(conversationID); i++ {
		h = (h ^ uint32(conversationID[i])) * 16777619
	}
	return int(h % sendWorkers)
}

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
	if err != nil && len(live) > 1 && errors.As(err, &pe) {
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
// allocation + insert + read marks + COMMIT, each pipelined.
func (s *Store) storeBatch(ctx context.Context, reqs []*sendReq) ([]sendRes, error) {
	res := make([]sendRes, len(reqs))

	// Distinct conversations, sorted so every transaction locks them in the
	// same order and concurrent batches cannot deadlock.
	var convs []string
	var pairConv, pairUser []string
	var keyConv, keySender, keyClient []string
	seenPair := map[convSender]bool{}
	seenKey := map[clientKey]bool{}
	for _, r := range reqs {
		convs = append(convs, r.m.ConversationID)
		p := convSender{r.m.ConversationID, r.m.SenderID}
		if !seenPair[p] {
			seenPair[p] = true
			pairConv, pairUser = append(pairConv, p.conv), append(pairUser, p.sender)
		}
		if r.m.ClientMsgID != "" {
			k := clientKey{p.conv, p.sender, r.m.ClientMsgID}
			if !seenKey[k] {
				seenKey[k] = true
				keyConv, keySender, keyClient = append(keyConv, k.conv), append(keySender, k.sender), append(keyClient, k.clientID)
			}
		}
	}
	slices.Sort(convs)
	convs = slices.Compact(convs)

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
			m.Content, m.CreatedAt = []byte(content), fromMS(created)
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

	// Decide each request in arrival order: reject, duplicate, or a new
	// message with the conversation's next seq.
	type alloc struct {
		n  int64
		at int64
	}
	allocs := map[string]*alloc{}
	var allocConv []string
	firstInBatch := map[clientKey]int{} // request index that stores a client id
	var (
		insConv, insID, insSender, insContent, insClient []string
		insSeq, insAt                                    []int64
		insType                                          []int32
	)
	readMark := map[convSender]int64{}
	var extras extraRows
	for i, r := range reqs {
		p := convSender{r.m.ConversationID, r.m.SenderID}
		if _, ok := lastSeq[p.conv]; !ok || !member[p] {
			res[i].err = fmt.Errorf("postgres: send: %w", store.ErrNotMember)
			continue
		}
		if r.m.ClientMsgID != "" {
			k := clientKey{p.conv, p.sender, r.m.ClientMsgID}
			if m, ok := original[k]; ok {
				m.MembersVersion = version[p.conv]
				res[i] = sendRes{msg: m, dup: true}
				continue
			}
			if j, ok := firstInBatch[k]; ok {
				res[i] = sendRes{msg: res[j].msg, dup: true}
				continue
			}
			firstInBatch[k] = i
		}
		a := allocs[p.conv]
		if a == nil {
			a = &alloc{}
			allocs[p.conv] = a
			allocConv = append(allocConv, p.conv)
		}
		a.n++
		a.at = max(a.at, ms(r.at))
		seq := lastSeq[p.conv] + a.n
		msg := store.Message{
			ID:             store.NewID(),
			ConversationID: p.conv,
			Seq:            seq,
			SenderID:       p.sender,
			Type:           r.m.Type,
			Content:        r.m.Content,
			ClientMsgID:    r.m.ClientMsgID,
			CreatedAt:      r.at,
			MembersVersion: version[p.conv],
			ReplySeq:       r.m.ReplySeq,
			Meta:           r.m.SentMeta(),
		}
		res[i].msg = msg
		extras.add(msg)
		insConv, insID, insSender = append(insConv, p.conv), append(insID, msg.ID), append(insSender, p.sender)
		insContent, insClient = append(insContent, string(msg.Content)), append(insClient, msg.ClientMsgID)
		insSeq, insAt, insType = append(insSeq, seq), append(insAt, ms(r.at)), append(insType, int32(msg.Type))
		readMark[p] = max(readMark[p], seq)
	}
	if len(allocConv) == 0 {
		return res, nil // nothing to store: all rejected or duplicates; roll back
	}
	allocN := make([]int64, len(allocConv))
	allocAt := make([]int64, len(allocConv))
	for i, c := range allocConv {
		allocN[i], allocAt[i] = allocs[c].n, allocs[c].at
	}
	var rmConv, rmUser []string
	var rmSeq []int64
	for p, seq := range readMark {
		rmConv, rmUser, rmSeq = append(rmConv, p.conv), append(rmUser, p.sender), append(rmSeq, seq)
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
	b.Queue(`COMMIT`)
	br = conn.SendBatch(ctx, b)
	var mismatch error
	rows, _ = br.Query()
	_, err = pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
		// Cannot differ under the row lock; checked because a wrong seq
		// would be silent corruption.
		if want := lastSeq[id] + allocs[id].n; seq != want && mismatch == nil {
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
	return res, nil
}
