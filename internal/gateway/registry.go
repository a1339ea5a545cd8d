package gateway

import (
	"slices"

	"github.com/chatd/chatd/internal/shard"
	"github.com/chatd/chatd/internal/socketio"
)

// registry maps (app, user) to that user's live sockets on this node. It is
// sharded so that connects, disconnects and pushes for different users do not
// contend on one lock. A user has a few devices: a slice beats a set.
type registry struct {
	users *shard.Map[[]*socketio.Socket]
}

func newRegistry() *registry {
	return &registry{users: shard.New[[]*socketio.Socket](64)}
}

func userKey(appID, userID string) string { return appID + "\x00" + userID }

// add registers s and returns how many sockets the user now has here.
func (r *registry) add(key string, s *socketio.Socket) (n int) {
	r.users.With(key, func(_ int, m map[string][]*socketio.Socket) {
		set := m[key]
		if !slices.Contains(set, s) {
			set = append(set, s)
			m[key] = set
		}
		n = len(set)
	})
	return n
}

func (r *registry) remove(key string, s *socketio.Socket) {
	r.users.With(key, func(_ int, m map[string][]*socketio.Socket) {
		set := m[key]
		i := slices.Index(set, s)
		switch {
		case i < 0:
		case len(set) == 1:
			delete(m, key)
		default:
			m[key] = slices.Delete(set, i, i+1)
		}
	})
}

// sockets appends the user's sockets to dst.
func (r *registry) sockets(dst []*socketio.Socket, key string) []*socketio.Socket {
	r.users.View(key, func(m map[string][]*socketio.Socket) { dst = append(dst, m[key]...) })
	return dst
}

// userCount is the number of the user's sockets on this node.
func (r *registry) userCount(key string) int {
	set, _ := r.users.Load(key)
	return len(set)
}

// count is the number of sockets registered on this node.
func (r *registry) count() int {
	n := 0
	r.users.Range(func(m map[string][]*socketio.Socket) {
		for _, set := range m {
			n += len(set)
		}
	})
	return n
}
