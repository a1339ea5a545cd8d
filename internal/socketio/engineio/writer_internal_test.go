package engineio

import (
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"testing"

	"github.com/gobwas/ws/wsutil"
)

// TestWriterCoalesces: one pass writes a session's whole queue, 100 frames,
// with a single writev, and gives the write side back.
func TestWriterCoalesces(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("non-blocking writev is Linux-only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	srv := NewServer(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s := &Conn{srv: srv, id: "x", proto: 4, state: stateWebsocket, conn: server, writing: true, wake: make(chan struct{}, 1)}
	const n = 100
	for i := range n {
		s.queue = append(s.queue, MessageFrame([]byte(strconv.Itoa(i))))
	}
	w := newWriterShard(&srv.tr)
	writevs := 0
	w.sysWritev = func(fd int, iovs [][]byte) (int, error) {
		writevs++
		return sysWritev(fd, iovs)
	}
	w.write(s)
	if writevs != 1 {
		t.Fatalf("%d frames took %d writev calls, want 1", n, writevs)
	}
	if s.writing || len(s.queue) != 0 || len(w.ready) != 0 {
		t.Fatalf("after the pass: writing %v, %d queued, %d rescheduled", s.writing, len(s.queue), len(w.ready))
	}
	for i := range n {
		b, _, err := wsutil.ReadServerData(client)
		if err != nil {
			t.Fatal(err)
		}
		if want := "4" + strconv.Itoa(i); string(b) != want {
			t.Fatalf("frame %d: %q, want %q", i, b, want)
		}
	}
}
