package socketio_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/socketio"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// dialMany connects n websocket clients to "/" in parallel.
func dialMany(tb testing.TB, base string, n int) []*sioclient.WS {
	tb.Helper()
	clients := make([]*sioclient.WS, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := sioclient.DialWS(ctx, base, 4, nil)
			if err != nil {
				errs <- err
				return
			}
			if err := c.Send("40"); err != nil {
				errs <- err
				return
			}
			if _, err := c.NextText(); err != nil {
				errs <- fmt.Errorf("connect ack: %w", err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	return clients
}

func TestBroadcastToThousands(t *testing.T) {
	const (
		conns    = 3000
		messages = 20
	)
	srv, base := startServer(t, socketio.Options{PingInterval: time.Minute, PingTimeout: time.Minute}, func(srv *socketio.Server) {
		srv.Of("/").OnConnection(func(s *socketio.Socket) { s.Join("everyone") })
	})
	clients := dialMany(t, base, conns)
	if n := srv.Of("/").RoomSize("everyone"); n != conns {
		t.Fatalf("room has %d members, want %d", n, conns)
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Conn.SetReadDeadline(time.Now().Add(time.Minute))
			for i := range messages {
				got, err := c.NextText()
				if err != nil || got != `42["tick",`+strconv.Itoa(i)+`,"payload"]` {
					bad.Add(1)
					return
				}
			}
		}()
	}
	nsp := srv.Of("/")
	for i := range messages {
		if err := nsp.To("everyone").Emit("tick", i, "payload"); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d of %d sockets missed or reordered messages", n, conns)
	}
}

// BenchmarkBroadcast1000 measures a room broadcast to 1,000 websocket
// sockets, counted until every byte reached its client.
func BenchmarkBroadcast1000(b *testing.B) {
	const conns = 1000
	srv, base := startServer(b, socketio.Options{PingInterval: time.Hour, PingTimeout: time.Hour, SendQueue: 1 << 16}, func(srv *socketio.Server) {
		srv.Of("/").OnConnection(func(s *socketio.Socket) { s.Join("room") })
	})
	clients := dialMany(b, base, conns)
	p, err := socketio.Prepare("/", "message", json.RawMessage(`{"message":"","status":1,"data":{"content":"hello there, a hundred bytes or so"},"type":"user"}`))
	if err != nil {
		b.Fatal(err)
	}
	frameLen := int64(len(`42["message",{"message":"","status":1,"data":{"content":"hello there, a hundred bytes or so"},"type":"user"}]`)) + 2
	var received atomic.Int64
	for _, c := range clients {
		go func(conn net.Conn) {
			buf := make([]byte, 32<<10)
			for {
				n, err := conn.Read(buf)
				received.Add(int64(n))
				if err != nil {
					if err != io.EOF {
						return
					}
					return
				}
			}
		}(c.Conn)
	}
	nsp := srv.Of("/")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = nsp.To("room").EmitRaw(p)
	}
	want := int64(b.N) * conns * frameLen
	deadline := time.Now().Add(time.Minute)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if got := received.Load(); got < want {
		b.Fatalf("received %d bytes, want %d", got, want)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*conns), "ns/delivery")
}

func BenchmarkPrepareAndEncodeBinary(b *testing.B) {
	blob := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := socketio.Prepare("/chat", "file", "name", blob); err != nil {
			b.Fatal(err)
		}
	}
}
