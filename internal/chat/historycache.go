package chat

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// historyCache keeps recently read pages of messages, as the store returned
// them, so that the same page asked again (a conversation's newest page,
// the sync of every device after a reconnect) costs no store read
// (docs/benchmarks.md, History; docs/architecture.md, The history cache).
//
// An entry is used only when the conversation, read from the store by the
// same request, still has the LastSeq and ChangeSeq the entry was read at:
// every send moves the one, every change (edit, recall, reaction, hide) the
// other, on whatever node it was made, so a changed page is never served.
// Sends do not spoil a page that cannot gain messages (one before an
// existing message, or a full page after one). What the version check
// cannot see is a sender's name or avatar, and messages deleted with their
// user: those reach every node as UserChanged (the users topic), which drops
// the pages of that sender (forgetSender); as the broker may lose a
// message, an entry is also kept at most pageTTL, which bounds how long a
// lost one can show an old name or a deleted message.
//
// Pages are cached only for readers whose visibility starts at the first
// message (JoinedSeq 0: every private member, a group's first members), for
// whom the store returns the same page; the reader's own parts (hidden
// ranges, quotes, "me" in reactions) are applied after, per reader.
type historyCache struct {
	maxBytes int

	mu    sync.Mutex
	epoch uint64 // bumped by forgetSender, so a read that raced it is not kept
	size  int
	pages map[pageKey]*pageEntry
	order []pageKey // insertion order: the oldest entry goes first

	hits, misses atomic.Uint64
}

type pageKey struct {
	conv    string
	from    int64
	limit   int
	forward bool
}

type pageEntry struct {
	at                 time.Time
	lastSeq, changeSeq int64
	msgs               []store.Message // shared and read-only
	senders            []string
	size               int
}

// pageTTL is how long a page is kept at most.
const pageTTL = time.Minute

// defaultHistoryCacheBytes bounds the cache (an estimate of the pages'
// memory).
const defaultHistoryCacheBytes = 16 << 20

func newHistoryCache(maxBytes int) *historyCache {
	if maxBytes <= 0 {
		return nil
	}
	return &historyCache{maxBytes: maxBytes, pages: make(map[pageKey]*pageEntry)}
}

// get returns the cached page, or nil.
func (h *historyCache) get(k pageKey, conv store.Conversation) []store.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.pages[k]
	if e == nil || e.changeSeq != conv.ChangeSeq || time.Since(e.at) > pageTTL {
		return nil
	}
	stable := !k.forward && k.from > 0 || k.forward && len(e.msgs) == k.limit
	if !stable && e.lastSeq != conv.LastSeq {
		return nil
	}
	return e.msgs
}

// put keeps a page read from the store at conv's versions, unless
// forgetSender ran since epoch.
func (h *historyCache) put(k pageKey, conv store.Conversation, epoch uint64, msgs []store.Message) {
	e := &pageEntry{at: time.Now(), lastSeq: conv.LastSeq, changeSeq: conv.ChangeSeq, msgs: msgs, size: 256}
	for i := range msgs {
		m := &msgs[i]
		e.size += 200 + len(m.Content) + len(m.ID) + len(m.ClientMsgID)
		if !slices.Contains(e.senders, m.SenderID) {
			e.senders = append(e.senders, m.SenderID)
		}
	}
	if e.size > h.maxBytes/4 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.epoch != epoch {
		return
	}
	if old := h.pages[k]; old != nil {
		h.size -= old.size
	} else {
		h.order = append(h.order, k)
	}
	h.pages[k] = e
	h.size += e.size
	for h.size > h.maxBytes && len(h.order) > 0 {
		oldest := h.order[0]
		h.order = h.order[1:]
		if o := h.pages[oldest]; o != nil {
			h.size -= o.size
			delete(h.pages, oldest)
		}
	}
}

// currentEpoch is read before a store read whose page may be kept.
func (h *historyCache) currentEpoch() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.epoch
}

// forgetSender drops the pages that show a message of userID (whose name
// or avatar changed, or whose messages were deleted). Sender ids are
// unique within an app, and a conversation within one app: pages of another
// app's user of the same id are dropped too, which is only a miss.
func (h *historyCache) forgetSender(userID string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.epoch++
	for k, e := range h.pages {
		if slices.Contains(e.senders, userID) {
			h.size -= e.size
			delete(h.pages, k)
		}
	}
	h.order = slices.DeleteFunc(h.order, func(k pageKey) bool { return h.pages[k] == nil })
}

// readPage is one store read of visiblePage: through the cache when the
// caller's conversation was read fresh from the store with the reader's
// membership m, and the reader sees the conversation from its start.
func (s *Service) readPage(ctx context.Context, conv store.Conversation, m *store.Member, userID string, from int64, limit int, forward bool) ([]store.Message, error) {
	read := func() ([]store.Message, error) {
		if forward {
			return s.store.After(ctx, conv.ID, userID, from, limit)
		}
		return s.store.History(ctx, conv.ID, userID, from, limit)
	}
	h := s.hist
	if h == nil || m == nil || m.JoinedSeq != 0 {
		return read()
	}
	k := pageKey{conv: conv.ID, from: from, limit: limit, forward: forward}
	if msgs := h.get(k, conv); msgs != nil {
		h.hits.Add(1)
		return msgs, nil
	}
	h.misses.Add(1)
	epoch := h.currentEpoch()
	msgs, err := read()
	if err == nil {
		h.put(k, conv, epoch, msgs)
	}
	return msgs, err
}

// HistoryCacheStats are the history cache's hits and misses (for metrics
// and benchmarks).
func (s *Service) HistoryCacheStats() (hits, misses uint64) {
	if s.hist == nil {
		return 0, 0
	}
	return s.hist.hits.Load(), s.hist.misses.Load()
}
