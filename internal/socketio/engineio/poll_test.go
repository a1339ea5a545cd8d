package engineio_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/chatd/chatd/internal/socketio/engineio"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// counter echoes and counts closed sessions by reason.
type counter struct {
	mu     sync.Mutex
	closed map[string]int
	total  atomic.Int64
	all    chan struct{}
	want   int64
}

func (c *counter) HandleMessage(s *engineio.Conn, data []byte, binary bool) {
	echo{}.HandleMessage(s, data, binary)
}

func (c *counter) HandleClose(_ *engineio.Conn, reason string) {
	c.mu.Lock()
	c.closed[reason]++
	c.mu.Unlock()
	if c.total.Add(1) == c.want {
		close(c.all)
	}
}

// TestManyWebsocketSessions holds thousands of websocket sessions, which on
// Linux are read through the poller: each echoes text and binary messages in
// order, idle sessions cost no goroutine, and every session closes cleanly,
// whether the client or the server ends it.
func TestManyWebsocketSessions(t *testing.T) {
	const n = 2500
	h := &counter{closed: map[string]int{}, all: make(chan struct{}), want: n}
	srv := engineio.NewServer(engineio.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnConn: func(s *engineio.Conn) { s.SetHandler(h) },
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx := testCtx(t)

	first, err := sioclient.DialWS(ctx, ts.URL, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	clients := []*sioclient.WS{first}
	runtime.GC()
	before := runtime.NumGoroutine()
	for i := 1; i < n; i++ {
		c, err := sioclient.DialWS(ctx, ts.URL, 3+i%2, nil)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		clients = append(clients, c)
	}
	if got := srv.Count(); got != n {
		t.Fatalf("%d sessions, want %d", got, n)
	}
	// Every client has read its open packet: the writers are done, and no
	// reader waits per connection. The slack covers goroutines that are just
	// finishing; a goroutine per connection would be 2,500 more.
	if runtime.GOOS == "linux" {
		if after := runtime.NumGoroutine(); after-before > n/10 {
			t.Errorf("goroutines %d → %d for %d idle sessions", before, after, n)
		}
	}

	// Each client sends a burst; the echoes come back in order.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 3 {
				if err := c.Send(fmt.Sprintf("4c%d-m%d", i, j)); err != nil {
					errs <- err
					return
				}
			}
			if err := c.SendBinary([]byte{byte(i), byte(i >> 8)}); err != nil {
				errs <- err
				return
			}
			for j := range 3 {
				if got, err := c.NextText(); err != nil || got != fmt.Sprintf("4c%d-m%d", i, j) {
					errs <- fmt.Errorf("client %d message %d: %q %v", i, j, got, err)
					return
				}
			}
			if m, err := c.Next(); err != nil || !m.Binary || !bytes.Equal(m.Data, []byte{byte(i), byte(i >> 8)}) {
				errs <- fmt.Errorf("client %d binary: %+v %v", i, m, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Half the clients leave; the server closes the rest.
	for _, c := range clients[:n/2] {
		c.Close()
	}
	for srv.Count() > n-n/2 {
		runtime.Gosched()
	}
	srv.Close()
	<-h.all
	// A session's reader is unregistered before its close handler runs.
	if n := engineio.PollerRegistrations(srv); n != 0 {
		t.Errorf("%d poller registrations left after every session closed", n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed["transport close"] != n/2 || h.closed["server shutting down"] != n-n/2 {
		t.Fatalf("close reasons %v", h.closed)
	}
	// The server's clients get a websocket close.
	for _, c := range clients[n/2:] {
		if m, err := c.Next(); err == nil {
			t.Fatalf("websocket still open after server close: %q", m.Data)
		}
		c.Close()
	}
}

// TestEarlyBytes sends the first messages in the same write as the upgrade
// request, so they reach the server in the hijacked connection's buffer:
// they are handled first, in order, both on a websocket-only session and on
// an upgraded polling session (whose probe ends with frames still buffered).
func TestEarlyBytes(t *testing.T) {
	_, base, _ := start(t, engineio.Options{})
	host := strings.TrimPrefix(base, "http://")
	frame := func(text string) []byte {
		var b bytes.Buffer
		_ = wsutil.WriteClientMessage(&b, ws.OpText, []byte(text))
		return b.Bytes()
	}
	dial := func(t *testing.T, path string, frames ...[]byte) (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		if _, err := conn.Write(append([]byte(req), bytes.Join(frames, nil)...)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		return conn, br
	}
	next := func(t *testing.T, conn net.Conn, br *bufio.Reader) string {
		t.Helper()
		b, _, err := wsutil.ReadServerData(struct {
			io.Reader
			io.Writer
		}{br, conn})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("websocket only", func(t *testing.T) {
		conn, br := dial(t, "/socket.io/?EIO=4&transport=websocket", frame("4one"), frame("4two"))
		if open := next(t, conn, br); !strings.HasPrefix(open, "0{") {
			t.Fatalf("open %q", open)
		}
		for _, want := range []string{"4one", "4two"} {
			if got := next(t, conn, br); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	})
	t.Run("upgrade", func(t *testing.T) {
		p, _, err := sioclient.DialPolling(testCtx(t), base, 4, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn, br := dial(t, "/socket.io/?EIO=4&transport=websocket&sid="+p.SID, frame("2probe"), frame("5"), frame("4one"), frame("4two"))
		for _, want := range []string{"3probe", "4one", "4two"} {
			if got := next(t, conn, br); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	})
}

// An EIO3 polling client gets binary packets in the binary payload format
// unless it asked for base64 with b64=1 (the official v3 suite's "plain text
// and binary packets" cases).
func TestV3PollingBinaryPayload(t *testing.T) {
	srv := engineio.NewServer(engineio.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnConn: func(s *engineio.Conn) { s.SetHandler(echo{}) },
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	for _, tc := range []struct {
		query, ctype string
		want         []byte
	}{
		{"", "application/octet-stream", []byte{0, 6, 255, '4', 'h', 'e', 'l', 'l', 'o', 1, 5, 255, 4, 1, 2, 3, 4}},
		{"&b64=1", "text/plain; charset=UTF-8", []byte("6:4hello10:b4AQIDBA==")},
	} {
		resp, err := http.Get(ts.URL + "/socket.io/?EIO=3&transport=polling" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		open, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		i := bytes.Index(open, []byte(`"sid":"`))
		if i < 0 {
			t.Fatalf("open: %q", open)
		}
		sid := string(open[i+7 : i+7+bytes.IndexByte(open[i+7:], '"')])
		u := ts.URL + "/socket.io/?EIO=3&transport=polling&sid=" + sid
		resp, err = http.Post(u, "text/plain", strings.NewReader("6:4hello10:b4AQIDBA=="))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("post: %v %v", resp, err)
		}
		resp.Body.Close()
		resp, err = http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(got, tc.want) || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("b64 %q: got %q (%s), want %q (%s)", tc.query, got, resp.Header.Get("Content-Type"), tc.want, tc.ctype)
		}
	}
}
