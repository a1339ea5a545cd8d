//go:build linux

package engineio

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// Readiness-driven websocket reads. A parked reader goroutine costs a
// connection 8 KiB of stack; instead, each websocket's descriptor is watched
// by epoll (one-shot) and a goroutine runs only while bytes are waiting: it
// reads them without blocking, handles the complete messages, re-arms the
// descriptor and exits. One-shot arming means at most one goroutine reads a
// connection at a time, so messages are handled in order.

// poller is one epoll instance and the goroutine waiting on it.
type poller struct {
	epfd int
	mu   sync.Mutex
	regs map[uint64]*wsReader // by registration id, never by descriptor
}

var pollers struct {
	once   sync.Once
	list   []*poller
	nextID atomic.Uint64
}

// pollerList starts the pollers on first use; it returns none when epoll is
// unavailable, and websockets then get a reader goroutine each.
func pollerList() []*poller {
	pollers.once.Do(func() {
		n := max(1, runtime.GOMAXPROCS(0)/4)
		for range n {
			epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
			if err != nil {
				return
			}
			p := &poller{epfd: epfd, regs: make(map[uint64]*wsReader)}
			pollers.list = append(pollers.list, p)
			go p.run()
		}
	})
	return pollers.list
}

// run waits for readiness and starts a reader for each ready connection.
func (p *poller) run() {
	events := make([]unix.EpollEvent, 256)
	var ready []*wsReader
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			// Only EINTR can happen here (the runtime preempts with
			// SIGURG): the epoll descriptor is never closed.
			continue
		}
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			// A stale id (the reader stopped) finds nothing.
			if r := p.regs[id]; r != nil {
				ready = append(ready, r)
			}
		}
		p.mu.Unlock()
		for _, r := range ready {
			go r.onReady()
		}
		clear(ready)
	}
}

// wsReader reads one session's websocket when it is readable.
type wsReader struct {
	s       *Session
	conn    net.Conn
	rc      syscall.RawConn
	p       *poller
	id      uint64
	stopped atomic.Bool
	parser  wsParser
}

// readBufs are the buffers of running readers; an idle connection has none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// serveWS reads the session's websocket conn, starting with early, the bytes
// that arrived with the upgrade. It returns once those are handled; the rest
// is read as it arrives.
func (s *Session) serveWS(conn net.Conn, early []byte) {
	ps := pollerList()
	sc, ok := conn.(syscall.Conn)
	if len(ps) == 0 || !ok {
		go s.readLoop(conn, &earlyReader{early: early, conn: conn}, false)
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		go s.readLoop(conn, &earlyReader{early: early, conn: conn}, false)
		return
	}
	id := pollers.nextID.Add(1)
	r := &wsReader{s: s, conn: conn, rc: rc, p: ps[id%uint64(len(ps))], id: id}
	r.parser.max = s.srv.opts.MaxPayload
	s.mu.Lock()
	closed := s.state == stateClosed
	if !closed {
		s.rd = r
	}
	s.mu.Unlock()
	if closed {
		return
	}
	if len(early) > 0 && !r.consume(early) {
		return
	}
	r.p.mu.Lock()
	r.p.regs[r.id] = r
	r.p.mu.Unlock()
	if r.stopped.Load() {
		// The session closed meanwhile; stop may have missed the entry.
		r.p.remove(r.id)
		return
	}
	if !r.arm(unix.EPOLL_CTL_ADD) {
		s.closeWith("transport error", closeError)
	}
}

// arm (re-)registers the descriptor for one readiness event. The descriptor
// is only used inside Control, which holds a reference to it: a connection
// closed meanwhile fails here rather than arming a reused descriptor number.
func (r *wsReader) arm(op int) bool {
	var cerr error
	err := r.rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{
			Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
			Fd:     int32(uint32(r.id)),
			Pad:    int32(uint32(r.id >> 32)),
		}
		cerr = unix.EpollCtl(r.p.epfd, op, int(fd), &ev)
	})
	return err == nil && cerr == nil
}

// stop forgets the reader; the session is closed. Its descriptor leaves the
// epoll set when the connection is closed, or now if it is still open.
func (r *wsReader) stop() {
	r.stopped.Store(true)
	r.p.remove(r.id)
	_ = r.rc.Control(func(fd uintptr) {
		_ = unix.EpollCtl(r.p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

func (p *poller) remove(id uint64) {
	p.mu.Lock()
	delete(p.regs, id)
	p.mu.Unlock()
}

// onReady reads what is waiting without blocking, handles it, and re-arms
// the descriptor once the socket is drained.
func (r *wsReader) onReady() {
	s := r.s
	defer s.recoverPanic("reader")
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for {
		var n int
		var rerr error
		err := r.rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return true // never wait in the runtime's poller
		})
		switch {
		case err != nil: // the connection is closed
			s.closeWith("transport close", closeError)
			return
		case rerr == unix.EINTR:
			continue
		case rerr == unix.EAGAIN:
			if !r.arm(unix.EPOLL_CTL_MOD) {
				s.closeWith("transport close", closeError)
			}
			return
		case rerr != nil || n <= 0: // an error, or the client's end of stream
			s.closeWith("transport close", closeError)
			return
		}
		if !r.consume(buf[:n]) {
			return
		}
	}
}

// consume parses b and handles what it completes; it reports false once the
// session is closed.
func (r *wsReader) consume(b []byte) bool {
	r.parser.max = r.s.MaxPayload()
	ok, err := r.parser.feed(b, r.onFrame)
	if err != nil {
		r.s.readFailed(r.conn, err)
		return false
	}
	return ok
}

func (r *wsReader) onFrame(op ws.OpCode, payload []byte) bool {
	if op.IsControl() {
		if !r.s.onControl(r.conn, op, payload) {
			r.s.closeWith("transport close", closeError)
			return false
		}
		return true
	}
	return r.s.onWSMessage(payload, op)
}

// pollerRegistrations counts the readers registered with the pollers.
func pollerRegistrations() int {
	n := 0
	for _, p := range pollerList() {
		p.mu.Lock()
		n += len(p.regs)
		p.mu.Unlock()
	}
	return n
}
