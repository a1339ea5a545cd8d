package gateway

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
)

// Group read receipts (docs/socket-protocol.md, Read receipts): the sender
// of a message in a group of at most ReceiptsMaxGroup members is told who
// read it, batched so that each of the sender's devices gets at most one
// read-receipts push per conversation per groupReceiptInterval, whatever
// the number of readers.
const (
	evReadReceipts = "read-receipts" // push: {sid, readers: [{userId, readSeq}]}

	topicGroupReceipts = "group-receipts"

	groupReceiptInterval = time.Second
)

var _ chat.GroupReceiptNotifier = (*Notifier)(nil)

// GroupReceipt publishes a group receipt to every node.
func (n *Notifier) GroupReceipt(ctx context.Context, r chat.GroupReceipt) {
	n.publish(ctx, topicGroupReceipts, r)
}

// deliverGroupReceipt adds the receipt to the batch of each of the
// sender's sockets on this node that declared receipts.
func (g *Gateway) deliverGroupReceipt(payload any) {
	r, err := decodePayload[chat.GroupReceipt](payload)
	if err != nil {
		g.log.Warn("bad group receipt payload", "err", err)
		return
	}
	for _, s := range g.reg.sockets(nil, userKey(r.AppID, r.SenderID)) {
		if id, _ := s.Data().(identity); id.Caps.has(capReceipts) {
			g.greceipts.add(g, s, r.SenderSID, r.ReaderID, r.ReadSeq)
		}
	}
}

// ReaderMark is one reader in a read-receipts push.
type ReaderMark struct {
	UserID  string `json:"userId"`
	ReadSeq int64  `json:"readSeq"`
}

// receiptBatcher holds the readers not yet pushed, per socket and session.
// Its zero value is ready; mu is a leaf (pushes are emitted after it is
// released).
type receiptBatcher struct {
	mu      sync.Mutex
	closed  bool
	batches map[*socketio.Socket]map[string]*receiptBatch // by socket, then sid
	pushes  int                                           // read-receipts pushes emitted (tests, benchmarks)
}

type batchKey struct {
	s   *socketio.Socket
	sid string
}

// receiptBatch is one socket's pending readers of one session. While its
// timer runs the socket was pushed to less than an interval ago: readers
// wait for the timer.
type receiptBatch struct {
	readers map[string]int64
	timer   *time.Timer
}

func (b *receiptBatcher) add(g *Gateway, s *socketio.Socket, sid, reader string, seq int64) {
	k := batchKey{s, sid}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	if b.batches == nil {
		b.batches = map[*socketio.Socket]map[string]*receiptBatch{}
	}
	bs := b.batches[s]
	if bs == nil {
		bs = map[string]*receiptBatch{}
		b.batches[s] = bs
	}
	e := bs[sid]
	if e == nil {
		e = &receiptBatch{readers: map[string]int64{}}
		bs[sid] = e
	}
	if seq > e.readers[reader] {
		e.readers[reader] = seq
	}
	if e.timer != nil { // pushed less than an interval ago: the timer takes it
		b.mu.Unlock()
		return
	}
	readers := b.takeLocked(g, k, e)
	b.mu.Unlock()
	b.push(g, s, sid, readers)
}

// takeLocked empties the batch's readers and starts the interval before
// the next push.
func (b *receiptBatcher) takeLocked(g *Gateway, k batchKey, e *receiptBatch) []ReaderMark {
	out := make([]ReaderMark, 0, len(e.readers))
	for u, seq := range e.readers {
		out = append(out, ReaderMark{UserID: u, ReadSeq: seq})
	}
	clear(e.readers)
	e.timer = time.AfterFunc(groupReceiptInterval, func() { b.tick(g, k, e) })
	if len(out) > 0 {
		b.pushes++
	}
	return out
}

// tick ends an interval: the readers gathered meanwhile are pushed (and a
// new interval starts), or, with none, the batch is forgotten.
func (b *receiptBatcher) tick(g *Gateway, k batchKey, e *receiptBatch) {
	b.mu.Lock()
	bs := b.batches[k.s]
	if bs[k.sid] != e || b.closed {
		b.mu.Unlock()
		return
	}
	if len(e.readers) == 0 {
		delete(bs, k.sid)
		if len(bs) == 0 {
			delete(b.batches, k.s)
		}
		b.mu.Unlock()
		return
	}
	readers := b.takeLocked(g, k, e)
	b.mu.Unlock()
	b.push(g, k.s, k.sid, readers)
}

func (b *receiptBatcher) push(g *Gateway, s *socketio.Socket, sid string, readers []ReaderMark) {
	if len(readers) == 0 {
		return
	}
	slices.SortFunc(readers, func(x, y ReaderMark) int { return strings.Compare(x.UserID, y.UserID) })
	p, err := socketio.Prepare("/", evReadReceipts, map[string]any{"sid": sid, "readers": readers})
	if err != nil {
		g.log.Error("encode push", "event", evReadReceipts, "err", err)
		return
	}
	s.EmitRaw(p)
}

// forget drops a closed socket's batches.
func (b *receiptBatcher) forget(s *socketio.Socket) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.batches[s] {
		e.timer.Stop()
	}
	delete(b.batches, s)
}

func (b *receiptBatcher) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, bs := range b.batches {
		for _, e := range bs {
			e.timer.Stop()
		}
	}
	b.batches = nil
}

// receiptPushes is the number of read-receipts pushes emitted so far.
func (g *Gateway) receiptPushes() int {
	g.greceipts.mu.Lock()
	defer g.greceipts.mu.Unlock()
	return g.greceipts.pushes
}
