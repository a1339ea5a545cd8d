package chat

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/chatd/chatd/internal/store"
)

// maxCachedMemberRows bounds the member cache by the member rows it holds
// across groups (about 200 bytes each, so some 20 MB): ten groups of the
// largest size, or a hundred of 1,000.
const maxCachedMemberRows = 100_000

// memberCache keeps group member lists on this node, each with the members
// version it was read at, least recently used evicted first. An entry is
// never trusted by itself: a send uses it only when its version equals the
// one the store read inside the send's own transaction, and two reads at
// one version saw the same members (store.Store.Members). So a change
// committed on any node is seen by the next send on every node, with no
// invalidation message and no expiry.
//
// The cached slices are shared by every send that uses them: nobody may
// modify one.
type memberCache struct {
	mu      sync.Mutex
	maxRows int
	rows    int                      // member rows held
	lru     list.List                // of *memberEntry, most recently used first
	byConv  map[string]*list.Element // by conversation id
}

type memberEntry struct {
	conv    string
	version int64
	members []store.Member
}

func newMemberCache(maxRows int) *memberCache {
	return &memberCache{maxRows: maxRows, byConv: make(map[string]*list.Element)}
}

// get returns the conversation's members at exactly version, if held.
func (c *memberCache) get(conv string, version int64) ([]store.Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byConv[conv]
	if !ok {
		return nil, false
	}
	e := el.Value.(*memberEntry)
	if e.version != version {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.members, true
}

// put keeps members as the conversation's list at version, unless a list
// at a later version is held already (reads finishing out of order).
func (c *memberCache) put(conv string, version int64, members []store.Member) {
	if len(members) > c.maxRows {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byConv[conv]; ok {
		e := el.Value.(*memberEntry)
		if e.version >= version {
			return
		}
		c.rows += len(members) - len(e.members)
		e.version, e.members = version, members
		c.lru.MoveToFront(el)
	} else {
		c.byConv[conv] = c.lru.PushFront(&memberEntry{conv: conv, version: version, members: members})
		c.rows += len(members)
	}
	for c.rows > c.maxRows {
		e := c.lru.Remove(c.lru.Back()).(*memberEntry)
		delete(c.byConv, e.conv)
		c.rows -= len(e.members)
	}
}

// groupMembers returns the recipients of a message the store sent at
// members version: the list at that version, from memory when held. After
// a miss the list is read afresh; it may be at a later version (a change
// committed since the send), which is what the send path always did
// before the cache, and is kept for the sends that follow.
func (s *Service) groupMembers(ctx context.Context, convID string, version int64) ([]store.Member, error) {
	if ms, ok := s.members.get(convID, version); ok {
		return ms, nil
	}
	ms, v, err := s.store.Members(ctx, convID)
	if err != nil {
		return nil, err
	}
	if v < version {
		// The read began after the send committed, so this cannot happen;
		// were it to, the list could hold someone removed before the send.
		return nil, fmt.Errorf("members of %s read at version %d, before the send's %d", convID, v, version)
	}
	s.members.put(convID, v, ms)
	return ms, nil
}
