package engineio_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/socketio/engineio"
)

// TestWriterSlowSocketDoesNotDelayOthers: a client that reads nothing while
// 2.5 MiB is queued to it (the attack soak's slow reader, docs/soak.md,
// Under attack) never holds up another session's frames, including those of
// the sessions that share its writer shard (shards are dealt round robin, one
// per CPU, at most 8).
func TestWriterSlowSocketDoesNotDelayOthers(t *testing.T) {
	const frames, size = 40, 64 << 10
	r := newRig(t, engineio.Options{SendQueue: frames + 1, MaxBufferBytes: 8 << 20}, true)
	_, slow := r.dial(t)
	for i := range frames {
		if err := slow.Send(engineio.MessageFrame(bigFrame(i, size))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for wait := time.Now().Add(10 * time.Second); r.slowPaths() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("the slow session never left the writer pool")
		}
	}
	for i := range min(runtime.GOMAXPROCS(0), 8) + 1 {
		c, s := r.dial(t)
		if err := s.Send(engineio.MessageFrame([]byte("hi"))); err != nil {
			t.Fatal(err)
		}
		_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if m, err := c.NextText(); err != nil || m != "4hi" {
			t.Fatalf("session %d behind the slow one: %q, %v", i+1, m, err)
		}
	}
	select {
	case reason := <-r.closed:
		t.Fatalf("a session closed (%s)", reason)
	default:
	}
}
