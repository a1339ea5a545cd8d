package engineio_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/socketio/engineio"
	"github.com/chatd/chatd/internal/socketio/sioclient"
	"github.com/chatd/chatd/internal/testenv"
)

type echo struct{ closed chan string }

func (e echo) HandleMessage(s *engineio.Conn, data []byte, binary bool) {
	if binary {
		_ = s.Send(engineio.BinaryFrame(data))
	} else {
		_ = s.Send(engineio.MessageFrame(data))
	}
}

func (e echo) HandleClose(_ *engineio.Conn, reason string) {
	select {
	case e.closed <- reason:
	default:
	}
}

func start(t *testing.T, opts engineio.Options) (*engineio.Server, string, chan string) {
	t.Helper()
	closed := make(chan string, 16)
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.OnConn = func(s *engineio.Conn) { s.SetHandler(echo{closed}) }
	srv := engineio.NewServer(opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return srv, ts.URL, closed
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func reason(t *testing.T, closed chan string) string {
	t.Helper()
	select {
	case r := <-closed:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("session not closed")
		return ""
	}
}

// waitPending returns once session sid has a GET waiting for frames.
func waitPending(t *testing.T, srv *engineio.Server, sid string) {
	t.Helper()
	testenv.WaitFor(t, "the GET to be pending", func() bool { return engineio.PollPending(srv, sid) })
}

func TestPollingEdgeCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		run    func(t *testing.T, ctx context.Context, srv *engineio.Server, p *sioclient.Polling)
		reason string
	}{
		{"duplicate GET", func(t *testing.T, ctx context.Context, srv *engineio.Server, p *sioclient.Polling) {
			first := make(chan []engineio.Packet, 1)
			go func() {
				_, packets, _ := p.Get(ctx)
				first <- packets
			}()
			waitPending(t, srv, p.SID)
			if st, _, _ := p.Get(ctx); st != http.StatusBadRequest {
				t.Errorf("second GET: %d, want 400", st)
			}
			if packets := <-first; len(packets) != 1 || packets[0].Type != engineio.Close {
				t.Errorf("first GET got %+v, want a close packet", packets)
			}
		}, "duplicate poll"},
		{"cancelled GET", func(t *testing.T, ctx context.Context, srv *engineio.Server, p *sioclient.Polling) {
			gctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _, _ = p.Get(gctx)
			}()
			waitPending(t, srv, p.SID)
			cancel()
			<-done
		}, "transport close"},
		{"client close with a pending GET", func(t *testing.T, ctx context.Context, srv *engineio.Server, p *sioclient.Polling) {
			pending := make(chan []engineio.Packet, 1)
			go func() {
				_, packets, _ := p.Get(ctx)
				pending <- packets
			}()
			// Without a GET pending, the session would wait for the next
			// one and answer it with a noop (the next case); then the
			// GET after the close below would get 200, not 400.
			waitPending(t, srv, p.SID)
			if st, _ := p.Post(ctx, "1"); st != 200 {
				t.Errorf("POST 1: %d", st)
			}
			if packets := <-pending; len(packets) != 1 || packets[0].Type != engineio.Noop {
				t.Errorf("pending GET got %+v, want noop", packets)
			}
		}, "client close"},
		{"client close then GET", func(t *testing.T, ctx context.Context, _ *engineio.Server, p *sioclient.Polling) {
			_, _ = p.Post(ctx, "1")
			if st, packets, _ := p.Get(ctx); st != 200 || len(packets) != 1 || packets[0].Type != engineio.Noop {
				t.Errorf("GET after close: %d %+v", st, packets)
			}
		}, "client close"},
		{"invalid body", func(t *testing.T, ctx context.Context, _ *engineio.Server, p *sioclient.Polling) {
			if st, _ := p.Post(ctx, "abc"); st != 400 {
				t.Errorf("POST abc: %d", st)
			}
		}, "parse error"},
		{"echo", func(t *testing.T, ctx context.Context, _ *engineio.Server, p *sioclient.Polling) {
			_, _ = p.Post(ctx, "4a\x1e4b\x1ebAQI=")
			_, packets, err := p.Get(ctx)
			if err != nil || len(packets) != 3 || string(packets[1].Data) != "b" || !packets[2].Binary {
				t.Errorf("echo: %+v %v", packets, err)
			}
			_, _ = p.Post(ctx, "1")
			_, _, _ = p.Get(ctx) // the noop that ends the session
		}, "client close"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, base, closed := start(t, engineio.Options{})
			ctx := testCtx(t)
			p, _, err := sioclient.DialPolling(ctx, base, 4, nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.run(t, ctx, srv, p)
			if r := reason(t, closed); r != tt.reason {
				t.Errorf("close reason %q, want %q", r, tt.reason)
			}
			// The close handler runs once the session is forgotten.
			if st, _, _ := p.Get(ctx); st != 400 {
				t.Errorf("GET on a closed session: %d", st)
			}
			if srv.Count() != 0 {
				t.Errorf("Count = %d", srv.Count())
			}
		})
	}
}

func TestPollingPingTimeout(t *testing.T) {
	t.Parallel()
	_, base, closed := start(t, engineio.Options{PingInterval: 20 * time.Millisecond, PingTimeout: 20 * time.Millisecond})
	ctx := testCtx(t)
	p, _, err := sioclient.DialPolling(ctx, base, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := reason(t, closed); r != "ping timeout" {
		t.Errorf("reason %q", r)
	}
	if st, _, _ := p.Get(ctx); st != 400 {
		t.Errorf("GET after timeout: %d", st)
	}
}

func TestWebsocketEchoV3AndV4(t *testing.T) {
	t.Parallel()
	_, base, _ := start(t, engineio.Options{})
	for _, proto := range []int{3, 4} {
		c, err := sioclient.DialWS(testCtx(t), base, proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Send("4hé")
		if got, err := c.NextText(); err != nil || got != "4hé" {
			t.Errorf("EIO%d text echo %q %v", proto, got, err)
		}
		_ = c.SendBinary([]byte{1, 2})
		if m, err := c.Next(); err != nil || !m.Binary || string(m.Data) != "\x01\x02" {
			t.Errorf("EIO%d binary echo %+v %v", proto, m, err)
		}
		// A client ping is answered in v3 only; v4 ignores it.
		_ = c.Send("2x")
		_ = c.Send("4after")
		want := "4after"
		if proto == 3 {
			want = "3x"
		}
		if got, _ := c.NextText(); got != want {
			t.Errorf("EIO%d after ping: %q, want %q", proto, got, want)
		}
		c.Close()
	}
}

func TestWebsocketFragmentsAndLimit(t *testing.T) {
	t.Parallel()
	_, base, closed := start(t, engineio.Options{MaxPayload: 64})
	c, err := sioclient.DialWS(testCtx(t), base, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.Send("4" + strings.Repeat("x", 63))
	if got, _ := c.NextText(); len(got) != 64 {
		t.Fatalf("64-byte message: %q", got)
	}
	_ = c.Send("4" + strings.Repeat("x", 64))
	if r := reason(t, closed); r != "payload too large" {
		t.Fatalf("reason %q", r)
	}
}
