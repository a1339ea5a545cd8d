package engineio_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/chatd/chatd/internal/socketio/engineio"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// quiet handles nothing and reports how sessions end.
type quiet struct{ closed chan string }

func (quiet) HandleMessage(*engineio.Conn, []byte, bool) {}
func (q quiet) HandleClose(_ *engineio.Conn, reason string) {
	select {
	case q.closed <- reason:
	default:
	}
}

// wsRig is a server whose websocket sessions are handed to the test. With
// tiny it gives the server's sockets and the client's a small buffer, so that
// a client that does not read fills them quickly.
type wsRig struct {
	base     string
	sessions chan *engineio.Conn
	closed   chan string
	tiny     bool
	// slowPaths counts the batches the writer pool handed to a session's
	// own goroutine.
	slowPaths func() uint64
}

func newRig(t *testing.T, opts engineio.Options, tiny bool) *wsRig {
	t.Helper()
	r := &wsRig{sessions: make(chan *engineio.Conn, 4), closed: make(chan string, 4), tiny: tiny}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.OnConn = func(s *engineio.Conn) {
		s.SetHandler(quiet{r.closed})
		r.sessions <- s
	}
	srv := engineio.NewServer(opts)
	r.slowPaths = engineio.CountSlowPaths(srv)
	ts := httptest.NewUnstartedServer(srv)
	if tiny {
		ts.Config.ConnState = func(c net.Conn, st http.ConnState) {
			if tc, ok := c.(*net.TCPConn); st == http.StateNew && ok {
				_ = tc.SetWriteBuffer(4096)
			}
		}
	}
	ts.Start()
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	r.base = ts.URL
	return r
}

// dial opens a websocket session and returns the client and the server's
// session.
func (r *wsRig) dial(t *testing.T) (*sioclient.WS, *engineio.Conn) {
	t.Helper()
	d := ws.Dialer{Timeout: 10 * time.Second}
	if r.tiny {
		nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			_ = c.Control(func(fd uintptr) { err = setRcvBuf(fd, 4096) })
			return err
		}}
		d.NetDial = nd.DialContext
	}
	c, err := sioclient.DialRawWith(testCtx(t), d, sioclient.URL(r.base, 4, "websocket", "", nil), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var s *engineio.Conn
	select {
	case s = <-r.sessions:
	case <-time.After(10 * time.Second):
		t.Fatal("no session")
	}
	if m, err := c.NextText(); err != nil || !strings.HasPrefix(m, "0") {
		t.Fatalf("open packet: %q, %v", m, err)
	}
	return c, s
}

func (r *wsRig) reason(t *testing.T) string {
	t.Helper()
	select {
	case got := <-r.closed:
		return got
	case <-time.After(10 * time.Second):
		t.Fatal("session not closed")
		return ""
	}
}

// bigFrame is frame i of a test: n bytes that say which frame they are.
func bigFrame(i, n int) []byte {
	b := bytes.Repeat([]byte{'a' + byte(i%26)}, n)
	copy(b, fmt.Sprintf("%06d:", i))
	return b
}

// TestWriterOrderUnderConcurrentSend: frames from concurrent senders all
// arrive, each sender's in the order it sent them.
func TestWriterOrderUnderConcurrentSend(t *testing.T) {
	const senders, each = 8, 300
	r := newRig(t, engineio.Options{SendQueue: senders * each}, false)
	c, s := r.dial(t)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				if err := s.Send(engineio.MessageFrame([]byte(fmt.Sprintf("%d:%d", g, i)))); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		})
	}
	next := make([]int, senders)
	for range senders * each {
		m, err := c.NextText()
		if err != nil {
			t.Fatal(err)
		}
		var g, i int
		if _, err := fmt.Sscanf(m, "4%d:%d", &g, &i); err != nil {
			t.Fatalf("message %q: %v", m, err)
		}
		if i != next[g] {
			t.Fatalf("sender %d: got frame %d, want %d", g, i, next[g])
		}
		next[g]++
	}
	wg.Wait()
}

// TestWriterPartialWrite forces the socket to take only part of a batch: the
// client reads nothing until the writer has handed the rest to the slow path,
// then pings (the pong must not land inside a half-written frame) and must
// get every frame whole and in order.
func TestWriterPartialWrite(t *testing.T) {
	const frames, size = 40, 64 << 10
	r := newRig(t, engineio.Options{SendQueue: frames}, true)
	c, s := r.dial(t)

	for i := range frames {
		if err := s.Send(engineio.MessageFrame(bigFrame(i, size))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	// 2.5 MiB cannot fit in the sockets' buffers: some pass must come up short.
	for wait := time.Now().Add(10 * time.Second); r.slowPaths() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("no pass came up short")
		}
	}
	if err := wsutil.WriteClientMessage(c.Conn, ws.OpPing, []byte("p")); err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		m, err := c.NextText()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if want := "4" + string(bigFrame(i, size)); m != want {
			t.Fatalf("frame %d: got %d bytes starting %q, want %q…", i, len(m), m[:min(len(m), 12)], want[:12])
		}
	}
	// The session is still usable and the pool writes it again.
	if err := s.Send(engineio.MessageFrame([]byte("after"))); err != nil {
		t.Fatal(err)
	}
	if m, err := c.NextText(); err != nil || m != "4after" {
		t.Fatalf("after the slow path: %q, %v", m, err)
	}
}

// TestWriterSlowConsumerClosed: a client that stops reading is closed once
// its queue is full; Send never blocks meanwhile.
func TestWriterSlowConsumerClosed(t *testing.T) {
	r := newRig(t, engineio.Options{SendQueue: 4}, true)
	_, s := r.dial(t)
	frame := engineio.MessageFrame(bigFrame(0, 64<<10))
	var err error
	for i := 0; err == nil; i++ {
		if i == 100_000 {
			t.Fatal("100,000 frames of 64 KiB queued to a client that reads nothing")
		}
		err = s.Send(frame)
	}
	if !errors.Is(err, engineio.ErrQueueFull) && !errors.Is(err, engineio.ErrClosed) {
		t.Fatalf("Send: %v", err)
	}
	if got := r.reason(t); got != "slow consumer" {
		t.Fatalf("closed for %q, want slow consumer", got)
	}
}

// TestWriterGracefulCloseFlushes: Close sends everything queued, then the
// close frame — also when the frames are still stuck behind a slow socket.
func TestWriterGracefulCloseFlushes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tiny        bool
		frames, len int
	}{
		{"small frames", false, 200, 10},
		{"behind a full socket", true, 40, 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, engineio.Options{SendQueue: tc.frames}, tc.tiny)
			c, s := r.dial(t)
			for i := range tc.frames {
				if err := s.Send(engineio.MessageFrame(bigFrame(i, tc.len))); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			s.Close()
			if got := r.reason(t); got != "server close" {
				t.Fatalf("closed for %q", got)
			}
			if err := s.Send(engineio.MessageFrame([]byte("late"))); !errors.Is(err, engineio.ErrClosed) {
				t.Fatalf("Send after Close: %v", err)
			}
			for i := range tc.frames {
				m, err := c.NextText()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if want := "4" + string(bigFrame(i, tc.len)); m != want {
					t.Fatalf("frame %d: got %d bytes starting %q", i, len(m), m[:min(len(m), 12)])
				}
			}
			_, err := c.Next()
			var ce wsutil.ClosedError
			if !errors.As(err, &ce) || ce.Code != ws.StatusNormalClosure {
				t.Fatalf("after the frames: %v, want a normal close frame", err)
			}
		})
	}
}

func setRcvBuf(fd uintptr, n int) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}

// TestWriterUpgradeFlushesQueued: frames queued while a polling session is
// being probed go out over the websocket, in order, once the upgrade is done,
// and the writer keeps serving the session afterwards.
func TestWriterUpgradeFlushesQueued(t *testing.T) {
	r := newRig(t, engineio.Options{}, false)
	ctx := testCtx(t)
	p, _, err := sioclient.DialPolling(ctx, r.base, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := <-r.sessions
	w, err := sioclient.DialRaw(ctx, sioclient.URL(r.base, 4, "websocket", p.SID, nil), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Send("2probe"); err != nil {
		t.Fatal(err)
	}
	if m, err := w.NextText(); err != nil || m != "3probe" {
		t.Fatalf("probe answer %q, %v", m, err)
	}
	for _, m := range []string{"a", "b", "c"} {
		if err := s.Send(engineio.MessageFrame([]byte(m))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Send("5"); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(engineio.MessageFrame([]byte("d"))); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4a", "4b", "4c", "4d"} {
		if m, err := w.NextText(); err != nil || m != want {
			t.Fatalf("got %q, %v, want %q", m, err, want)
		}
	}
}
