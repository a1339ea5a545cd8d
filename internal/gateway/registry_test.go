package gateway

import (
	"slices"
	"testing"

	"github.com/chatd/chatd/internal/socketio"
)

// TestRegistry covers the per-user socket lists: adding twice counts once,
// removing keeps the others in place and the last removal forgets the user.
func TestRegistry(t *testing.T) {
	t.Parallel()
	a, b, c := new(socketio.Socket), new(socketio.Socket), new(socketio.Socket)
	r := newRegistry()
	k := userKey("app", "u")
	steps := []struct {
		op   string
		s    *socketio.Socket
		want []*socketio.Socket
	}{
		{"add", a, []*socketio.Socket{a}},
		{"add", a, []*socketio.Socket{a}},
		{"add", b, []*socketio.Socket{a, b}},
		{"add", c, []*socketio.Socket{a, b, c}},
		{"remove", b, []*socketio.Socket{a, c}},
		{"remove", b, []*socketio.Socket{a, c}},
		{"remove", a, []*socketio.Socket{c}},
		{"remove", c, nil},
	}
	for i, st := range steps {
		if st.op == "add" {
			if n := r.add(k, st.s); n != len(st.want) {
				t.Fatalf("step %d: add returned %d, want %d", i, n, len(st.want))
			}
		} else {
			r.remove(k, st.s)
		}
		if got := r.sockets(nil, k); !slices.Equal(got, st.want) {
			t.Fatalf("step %d: sockets %v, want %v", i, got, st.want)
		}
		if r.userCount(k) != len(st.want) || r.count() != len(st.want) {
			t.Fatalf("step %d: counts %d %d", i, r.userCount(k), r.count())
		}
	}
	if _, ok := r.users.Load(k); ok {
		t.Fatal("the user is still in the registry")
	}
	if got := r.sockets(nil, userKey("app", "other")); got != nil {
		t.Fatalf("unknown user: %v", got)
	}
}
