package engineio

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// The websocket write path.
//
// A few writer goroutines (shards) of each Server (transport.go) keep a list
// of sessions that have frames queued. A pass takes every listed session's
// whole queue and writes it with one non-blocking writev, so a full socket
// buffer never parks the writer. While a pass writes a 1,000-member fan-out,
// new frames pile up in the queues and the next pass writes several per
// syscall: batching adapts to the load, bounded by one pass, with no timer.
//
// A session whose socket takes only part of a batch (or none of it) is handed
// to a goroutine of its own, writeLoop, that finishes with blocking writes
// under WriteTimeout and then returns the session to the pool: a slow reader
// costs a goroutine only while it is behind, and its queue stays bounded by
// SendQueue, beyond which it is closed as a slow consumer.
//
// Conn.writing says who owns the write side: nobody, or the pool (the
// session is listed, or being written by a pass), or writeLoop. Only the
// owner takes frames off the queue, so frames leave in order. Conn.wmu
// serialises writes to the connection between the owner and the reader's
// control frames, so that no frame is sent into the middle of a partly
// written one.

// errWouldBlock means the socket took only part of a batch, or none.
var errWouldBlock = errors.New("engineio: write would block")

// maxIovecs bounds one writev (the kernel's IOV_MAX is 1024).
const maxIovecs = 1024

type writerShard struct {
	mu    sync.Mutex
	ready []*Conn
	wake  chan struct{}
	quit  chan struct{} // closed by transport.stop

	// Owned by the shard's goroutine.
	pass      []*Conn
	iov       [][]byte
	pending   [][]byte // what the current writev has left to write
	err       error
	writeFn   func(fd uintptr) bool
	sysWritev func(fd int, iovs [][]byte) (int, error)
	slowPath  func() // the server's transport.slowPath
}

func newWriterShard(t *transport) *writerShard {
	w := &writerShard{wake: make(chan struct{}, 1), quit: make(chan struct{}), sysWritev: sysWritev, slowPath: t.slowPath}
	w.writeFn = w.writev
	return w
}

// startWriters starts the server's shards, one per CPU the runtime uses (at
// most 8).
func (t *transport) startWriters() {
	for range min(runtime.GOMAXPROCS(0), 8) {
		w := newWriterShard(t)
		t.writers = append(t.writers, w)
		t.wg.Go(w.run)
	}
}

// scheduleLocked hands the session's queue to its writer shard. Called with
// s.mu held by whoever just set s.writing.
func (s *Conn) scheduleLocked() {
	if s.wshard == nil {
		s.wshard = s.srv.tr.pickWriter()
	}
	if s.wshard == nil {
		// The server is closed: the session's own goroutine writes.
		go s.writeLoop(nil, false, 0)
		return
	}
	s.wshard.add(s)
}

func (w *writerShard) add(s *Conn) {
	w.mu.Lock()
	w.ready = append(w.ready, s)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *writerShard) run() {
	for {
		select {
		case <-w.wake:
			w.passes()
		case <-w.quit:
			w.passes()
			return
		}
	}
}

// passes writes the listed sessions until none is left.
func (w *writerShard) passes() {
	for {
		w.mu.Lock()
		w.pass, w.ready = w.ready, w.pass[:0]
		w.mu.Unlock()
		if len(w.pass) == 0 {
			return
		}
		for i, s := range w.pass {
			w.write(s)
			w.pass[i] = nil
		}
	}
}

// write takes s's whole queue and writes it with one non-blocking writev.
func (w *writerShard) write(s *Conn) {
	defer s.recoverPanic("writer")
	s.mu.Lock()
	if s.state == stateClosed && s.mode == closeGraceful {
		// Flushing the rest and the close frame may block: not here.
		s.mu.Unlock()
		go s.writeLoop(nil, false, 0)
		return
	}
	batch, conn := s.queue, s.conn
	if len(batch) == 0 || s.state != stateWebsocket {
		s.writing = false
		s.mu.Unlock()
		return
	}
	s.queue, s.spare = s.spare[:0], nil
	s.mu.Unlock()

	w.iov = w.iov[:0]
	for _, f := range batch {
		w.iov = append(w.iov, f.wsBytes(s.proto))
	}
	size := framesSize(batch)
	clear(batch)
	// The reader may be sending a control frame: then the slow path finishes
	// after it.
	locked := s.wmu.TryLock()
	err := errWouldBlock
	w.pending = w.iov
	if locked {
		err = w.writeConn(s, conn)
	}
	if err != nil {
		rest := append(net.Buffers(nil), w.pending...)
		clear(w.iov)
		if errors.Is(err, errWouldBlock) || errors.Is(err, os.ErrDeadlineExceeded) {
			if w.slowPath != nil {
				w.slowPath()
			}
			go s.writeLoop(rest, locked, size) // s.wmu stays held until rest is out
			return
		}
		s.wmu.Unlock()
		s.closeWith("transport error", closeError)
		_ = conn.Close()
		return
	}
	s.wmu.Unlock()
	clear(w.iov)
	s.mu.Lock()
	s.pending = max(s.pending-size, 0)
	if cap(batch) <= 64 && s.spare == nil {
		s.spare = batch[:0]
	}
	if len(s.queue) > 0 || (s.state == stateClosed && s.mode == closeGraceful) {
		w.add(s) // the next pass
	} else {
		s.writing = false
	}
	s.mu.Unlock()
}

// writeConn writes w.iov to conn without blocking, leaving in w.pending what
// the socket did not take. It returns errWouldBlock when something is left.
func (w *writerShard) writeConn(s *Conn, conn net.Conn) error {
	w.pending, w.err = w.iov, nil
	if s.rawOf != conn {
		s.raw, s.rawOf = nil, conn
		if sc, ok := conn.(syscall.Conn); ok {
			s.raw, _ = sc.SyscallConn()
		}
		// A deadline left by net/http before the hijack would fail every
		// non-blocking write once it passed.
		_ = conn.SetWriteDeadline(time.Time{})
	}
	if s.raw == nil {
		return errWouldBlock // not a socket (tests, TLS): blocking writes only
	}
	// writev returns true whatever happens, so Write never waits for the
	// socket to become writable.
	if err := s.raw.Write(w.writeFn); err != nil {
		return err
	}
	if w.err == nil && len(w.pending) > 0 {
		return errWouldBlock
	}
	return w.err
}

// consume drops the first n written bytes from w.pending.
func (w *writerShard) consume(n int) {
	for n > 0 && len(w.pending) > 0 {
		if b := w.pending[0]; n >= len(b) {
			n -= len(b)
			w.pending = w.pending[1:]
		} else {
			w.pending[0] = b[n:]
			n = 0
		}
	}
	for len(w.pending) > 0 && len(w.pending[0]) == 0 {
		w.pending = w.pending[1:]
	}
}

// writeLoop is the slow path: it writes rest (held says the caller holds
// s.wmu for it; restSize is the pending output it finishes), then everything queued, with blocking writes under WriteTimeout,
// until the queue is empty; then it returns the session to the pool, or, when
// the session is closing gracefully, sends the close frame and closes.
func (s *Conn) writeLoop(rest net.Buffers, held bool, restSize int64) {
	defer s.recoverPanic("writer")
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if held || len(rest) > 0 {
		if !s.writeBlocking(conn, rest, held) {
			return
		}
		s.written(restSize)
	}
	var bufs net.Buffers
	for {
		s.mu.Lock()
		batch := s.queue
		if len(batch) == 0 {
			s.writing = false
			closing := s.state == stateClosed && s.mode == closeGraceful
			s.mu.Unlock()
			if closing {
				s.wmu.Lock()
				_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = conn.Write(closeFrameBytes)
				s.wmu.Unlock()
				_ = conn.Close()
			}
			return
		}
		s.queue, s.spare = s.spare[:0], nil
		s.mu.Unlock()

		bufs = bufs[:0]
		for _, f := range batch {
			bufs = append(bufs, f.wsBytes(s.proto))
		}
		size := framesSize(batch)
		clear(batch)
		s.mu.Lock()
		if cap(batch) <= 64 && s.spare == nil {
			s.spare = batch[:0]
		}
		s.mu.Unlock()
		if !s.writeBlocking(conn, bufs, false) {
			return
		}
		s.written(size)
	}
}

// writeBlocking writes bufs under WriteTimeout; on failure it closes the
// session and reports false. held says the caller holds s.wmu already.
func (s *Conn) writeBlocking(conn net.Conn, bufs net.Buffers, held bool) bool {
	if !held {
		s.wmu.Lock()
	}
	_ = conn.SetWriteDeadline(time.Now().Add(s.srv.opts.WriteTimeout))
	_, err := bufs.WriteTo(conn)
	// No deadline left behind: the pool's non-blocking writes would fail on it.
	_ = conn.SetWriteDeadline(time.Time{})
	s.wmu.Unlock()
	if err != nil {
		s.closeWith("transport error", closeError)
		_ = conn.Close()
		return false
	}
	return true
}

// writeControl writes a control frame (pong, close) for the reader, never into
// the middle of a frame the writer has partly sent.
func (s *Conn) writeControl(conn net.Conn, b []byte, timeout time.Duration) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := conn.Write(b)
	_ = conn.SetWriteDeadline(time.Time{})
	return err
}
