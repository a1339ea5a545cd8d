package engineio_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/chatd/chatd/internal/socketio/engineio"
	"github.com/chatd/chatd/internal/socketio/sioclient"
	"github.com/chatd/chatd/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainCheckGoroutines(m)) }

// TestCloseStopsGoroutines: once a server that served websockets (so that
// its writer pool and pollers run) and long-polls is closed, no goroutine of
// it is left. Not parallel: it counts the process's goroutines.
func TestCloseStopsGoroutines(t *testing.T) {
	testenv.CheckGoroutines(t)
	closed := make(chan string, 16)
	srv := engineio.NewServer(engineio.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnConn: func(s *engineio.Conn) { s.SetHandler(echo{closed}) },
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx := testCtx(t)
	var clients []*sioclient.WS
	for _, proto := range []int{3, 4} {
		c, err := sioclient.DialWS(ctx, ts.URL, proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.Send("4hello")
		if got, err := c.NextText(); err != nil || got != "4hello" {
			t.Fatalf("EIO%d echo %q %v", proto, got, err)
		}
		clients = append(clients, c)
	}
	if _, _, err := sioclient.DialPolling(ctx, ts.URL, 4, nil); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	for range 3 {
		if r := reason(t, closed); r != "server shutting down" {
			t.Errorf("close reason %q", r)
		}
	}
	// The clients see the close frame; their connections end.
	for _, c := range clients {
		if m, err := c.Next(); err == nil {
			t.Errorf("websocket still open after Close: %q", m.Data)
		}
	}
	srv.Close() // a second Close is harmless
}
