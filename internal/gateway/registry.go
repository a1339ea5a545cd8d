package gateway

import (
	"hash/maphash"
	"slices"
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
	users map[string][]*socketio.Socket // a user has a few devices: a slice beats a set
}

func newRegistry() *registry {
	r := &registry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].users = make(map[string][]*socketio.Socket)
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
	if !slices.Contains(set, s) {
		set = append(set, s)
		sh.users[key] = set
	}
	return len(set)
}

func (r *registry) remove(key string, s *socketio.Socket) {
	sh := r.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	set := sh.users[key]
	i := slices.Index(set, s)
	switch {
	case i < 0:
	case len(set) == 1:
		delete(sh.users, key)
	default:
		sh.users[key] = slices.Delete(set, i, i+1)
	}
}

// sockets appends the user's sockets to dst.
func (r *registry) sockets(dst []*socketio.Socket, key string) []*socketio.Socket {
	sh := r.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return append(dst, sh.users[key]...)
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
