package gateway

import (
	"hash/maphash"
	"sync"

	"github.com/chatd/chatd/internal/socketio"
)

// registry maps (app, user) to that user's live sockets on this node. It is
// sharded so that connects, disconnects and pushes for different users do not
// contend on one lock.
type registry struct {
	seed   maphash.Seed
	shards [64]registryShard
}

type registryShard struct {
	mu    sync.RWMutex
	users map[string]map[*socketio.Socket]struct{}
}

func newRegistry() *registry {
	r := &registry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].users = make(map[string]map[*socketio.Socket]struct{})
	}
	return r
}

func userKey(appID, userID string) string { return appID + "\x00" + userID }

func (r *registry) shard(key string) *registryShard {
	return &r.shards[maphash.String(r.seed, key)%uint64(len(r.shards))]
}

// add registers s and returns how many sockets the user now has here.
func (r *registry) add(key string, s *socketio.Socket) int {
	sh := r.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	set := sh.users[key]
	if set == nil {
		set = make(map[*socketio.Socket]struct{}, 1)
		sh.users[key] = set
	}
	set[s] = struct{}{}
	return len(set)
}

func (r *registry) remove(key string, s *socketio.Socket) {
	sh := r.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if set := sh.users[key]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(sh.users, key)
		}
	}
}

// sockets appends the user's sockets to dst.
func (r *registry) sockets(dst []*socketio.Socket, key string) []*socketio.Socket {
	sh := r.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	for s := range sh.users[key] {
		dst = append(dst, s)
	}
	return dst
}

// userCount is the number of the user's sockets on this node.
func (r *registry) userCount(key string) int {
	sh := r.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return len(sh.users[key])
}

// count is the number of sockets registered on this node.
func (r *registry) count() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, set := range sh.users {
			n += len(set)
		}
		sh.mu.RUnlock()
	}
	return n
}
