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

// poller is one epoll instance and the goroutine waiting on it. The pollers
// belong to a Server (transport.go): they start with its first websocket and
// Close stops them.
type poller struct {
	epfd int
	evfd int // an eventfd in the epoll set: written to stop the goroutine
	mu   sync.Mutex
	regs map[uint64]*wsReader // by registration id, never by descriptor

	// fdMu guards epfd against its closing: epoll_ctl holds it shared, stop
	// exclusively.
	fdMu   sync.RWMutex
	closed bool
}

// regIDs numbers the registrations; 0 is the poller's own eventfd. Unique
// per process, so that no id is ever reused while epoll may still report it.
var regIDs atomic.Uint64

// startPollers starts the server's pollers; it returns none when epoll is
// unavailable, and websockets then get a reader goroutine each.
func (t *transport) startPollers() {
	n := max(1, runtime.GOMAXPROCS(0)/4)
	for range n {
		p, err := newPoller()
		if err != nil {
			return
		}
		t.pollers = append(t.pollers, p)
		t.wg.Go(p.run)
	}
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // id 0
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(evfd)
		return nil, err
	}
	return &poller{epfd: epfd, evfd: evfd, regs: make(map[uint64]*wsReader)}, nil
}

// wake tells the poller's goroutine to return.
func (p *poller) wake() {
	one := [8]byte{1} // the eventfd counter is a native-endian uint64; any non-zero value wakes
	_, _ = unix.Write(p.evfd, one[:])
}

// close closes the descriptors once the goroutine has returned; a reader
// arming afterwards fails and closes its session.
func (p *poller) close() {
	p.fdMu.Lock()
	p.closed = true
	_ = unix.Close(p.epfd)
	_ = unix.Close(p.evfd)
	p.fdMu.Unlock()
}

// ctl is epoll_ctl on the poller's set, unless it is closed.
func (p *poller) ctl(op, fd int, ev *unix.EpollEvent) error {
	p.fdMu.RLock()
	defer p.fdMu.RUnlock()
	if p.closed {
		return unix.EBADF
	}
	return unix.EpollCtl(p.epfd, op, fd, ev)
}

// run waits for readiness and starts a reader for each ready connection,
// until the eventfd says stop.
func (p *poller) run() {
	events := make([]unix.EpollEvent, 256)
	var ready []*wsReader
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			// Only EINTR can happen here (the runtime preempts with
			// SIGURG): the epoll descriptor is closed only after run returns.
			continue
		}
		ready = ready[:0]
		stop := false
		p.mu.Lock()
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				stop = true
				continue
			}
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
		if stop {
			return
		}
	}
}

// wsReader reads one session's websocket when it is readable.
type wsReader struct {
	s       *Conn
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
func (s *Conn) serveWS(conn net.Conn, early []byte) {
	ps := s.srv.tr.pollerList()
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
	id := regIDs.Add(1)
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
		cerr = r.p.ctl(op, int(fd), &ev)
	})
	return err == nil && cerr == nil
}

// stop forgets the reader; the session is closed. Its descriptor leaves the
// epoll set when the connection is closed, or now if it is still open.
func (r *wsReader) stop() {
	r.stopped.Store(true)
	r.p.remove(r.id)
	_ = r.rc.Control(func(fd uintptr) {
		_ = r.p.ctl(unix.EPOLL_CTL_DEL, int(fd), nil)
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

// pollerRegistrations counts the readers registered with the server's
// pollers.
func (t *transport) pollerRegistrations() int {
	n := 0
	for _, p := range t.pollerList() {
		p.mu.Lock()
		n += len(p.regs)
		p.mu.Unlock()
	}
	return n
}
