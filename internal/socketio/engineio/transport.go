package engineio

import (
	"sync"
	"sync/atomic"
)

// transport is what a Server runs for its websockets: the writer shards
// (writer.go) and, on Linux, the epoll pollers (poll_linux.go). Each group
// starts with the first websocket that needs it; Server.Close stops both,
// waits for their goroutines and closes the epoll descriptors. A session's
// own goroutines (a slow writer, a reader, a long-poll) end with its
// connection.
type transport struct {
	writersOnce sync.Once
	writers     []*writerShard
	next        atomic.Uint32

	pollersOnce sync.Once
	pollers     []*poller

	stopOnce sync.Once
	wg       sync.WaitGroup

	// slowPath is called when a pass hands a batch to writeLoop; nil
	// outside tests (export_test.go).
	slowPath func()
}

// pickWriter returns the shard a new websocket session is written by, or nil
// once the server is closed.
func (t *transport) pickWriter() *writerShard {
	t.writersOnce.Do(t.startWriters)
	if len(t.writers) == 0 {
		return nil
	}
	return t.writers[t.next.Add(1)%uint32(len(t.writers))]
}

// pollerList returns the server's pollers, starting them on first use; none
// once the server is closed or where epoll is unavailable.
func (t *transport) pollerList() []*poller {
	t.pollersOnce.Do(t.startPollers)
	return t.pollers
}

// stop ends the transport's goroutines. The writers first finish the passes
// already listed (a closing session's pass hands it to its own goroutine),
// so nothing queued before Close is dropped.
func (t *transport) stop() {
	t.stopOnce.Do(func() {
		// Nothing starts after this.
		t.writersOnce.Do(func() {})
		t.pollersOnce.Do(func() {})
		for _, w := range t.writers {
			close(w.quit)
		}
		for _, p := range t.pollers {
			p.wake()
		}
		t.wg.Wait()
		for _, p := range t.pollers {
			p.close()
		}
	})
}
