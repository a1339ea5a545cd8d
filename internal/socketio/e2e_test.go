package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/socketio"
	"github.com/chatd/chatd/internal/socketio/engineio"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startServer runs srv behind a real HTTP server and returns its base URL.
func startServer(t testing.TB, opts socketio.Options, setup func(*socketio.Server)) (*socketio.Server, string) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	srv := socketio.NewServer(opts)
	if setup != nil {
		setup(srv)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return srv, ts.URL
}

// echoSetup mirrors the reference test server: "echo" is emitted back as
// "echo-back", "ack" is acknowledged with its arguments.
func echoSetup(srv *socketio.Server) {
	srv.Of("/").OnConnection(func(s *socketio.Socket) {
		s.On("echo", func(s *socketio.Socket, args []json.RawMessage, _ socketio.AckFunc) {
			_ = s.Emit("echo-back", s.BinaryArgs(args)...)
		})
		s.On("ack", func(s *socketio.Socket, args []json.RawMessage, ack socketio.AckFunc) {
			if ack != nil {
				_ = ack(s.BinaryArgs(args)...)
			}
		})
		s.On("join", func(s *socketio.Socket, args []json.RawMessage, ack socketio.AckFunc) {
			var room string
			_ = json.Unmarshal(args[0], &room)
			s.Join(room)
			_ = ack()
		})
		s.On("panic", func(*socketio.Socket, []json.RawMessage, socketio.AckFunc) { panic("boom") })
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustText(t *testing.T, c *sioclient.WS) string {
	t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.NextText()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return s
}

func expectText(t *testing.T, c *sioclient.WS, want string) {
	t.Helper()
	if got := mustText(t, c); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func expectClosed(t *testing.T, c *sioclient.WS) {
	t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, err := c.Next()
		if err == nil {
			continue
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection still open")
		}
		return
	}
}

// connectV4 opens a websocket and connects the default namespace.
func connectV4(t *testing.T, base string, auth string) *sioclient.WS {
	t.Helper()
	c, err := sioclient.DialWS(ctx(t), base, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Send("40" + auth); err != nil {
		t.Fatal(err)
	}
	if got := mustText(t, c); !strings.HasPrefix(got, `40{"sid":"`) {
		t.Fatalf("connect ack = %q", got)
	}
	return c
}

func connectV3(t *testing.T, base string, query url.Values) *sioclient.WS {
	t.Helper()
	c, err := sioclient.DialWS(ctx(t), base, 3, query)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	expectText(t, c, "40")
	return c
}

func TestHandshakeWebsocket(t *testing.T) {
	_, base := startServer(t, socketio.Options{}, echoSetup)
	tests := []struct {
		proto      int
		maxPayload bool
	}{{4, true}, {3, false}}
	for _, tt := range tests {
		c, err := sioclient.DialWS(ctx(t), base, tt.proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		o := c.Open
		if o.SID == "" || len(o.Upgrades) != 0 || o.PingInterval != 25000 || o.PingTimeout != 20000 || (o.MaxPayload != nil) != tt.maxPayload {
			t.Errorf("EIO%d open = %+v", tt.proto, o)
		}
		if tt.maxPayload && *o.MaxPayload != 1000000 {
			t.Errorf("maxPayload = %d", *o.MaxPayload)
		}
		c.Close()
	}
}

func TestBadRequests(t *testing.T) {
	_, base := startServer(t, socketio.Options{AllowedOrigins: []string{"https://good.example"}}, echoSetup)
	tests := []struct {
		name, method, query string
		header              map[string]string
		status, code        int
	}{
		{"no EIO", "GET", "transport=polling", nil, 400, 5},
		{"bad EIO", "GET", "EIO=abc&transport=polling", nil, 400, 5},
		{"no transport", "GET", "EIO=4", nil, 400, 0},
		{"bad transport", "GET", "EIO=4&transport=abc", nil, 400, 0},
		{"handshake by POST", "POST", "EIO=4&transport=polling", nil, 400, 2},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", nil, 400, 1},
		{"bad origin", "GET", "EIO=4&transport=polling", map[string]string{"Origin": "https://evil.example"}, 403, 4},
		{"bad websocket query", "GET", "EIO=9&transport=websocket", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, 400, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx(t), tt.method, base+"/socket.io/?"+tt.query, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if resp.StatusCode != tt.status || body.Code != tt.code || body.Message == "" {
				t.Errorf("got %d %+v, want %d code %d", resp.StatusCode, body, tt.status, tt.code)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	_, base := startServer(t, socketio.Options{AllowedOrigins: []string{"https://good.example"}}, echoSetup)
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodOptions, base+"/socket.io/?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "https://good.example")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://good.example" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Errorf("preflight: %d %v", resp.StatusCode, h)
	}
	// The websocket upgrade checks the allow-list too.
	hdr := http.Header{"Origin": {"https://evil.example"}}
	if _, err := sioclient.DialRaw(ctx(t), sioclient.URL(base, 4, "websocket", "", nil), 4, hdr); err == nil {
		t.Error("websocket from a forbidden origin was accepted")
	}
	hdr = http.Header{"Origin": {"https://good.example"}}
	c, err := sioclient.DialRaw(ctx(t), sioclient.URL(base, 4, "websocket", "", nil), 4, hdr)
	if err != nil {
		t.Fatalf("websocket from an allowed origin: %v", err)
	}
	c.Close()
}

func TestEventsAndAcksV4(t *testing.T) {
	_, base := startServer(t, socketio.Options{}, echoSetup)
	c := connectV4(t, base, "")
	// An event sent in the same write as CONNECT is handled.
	c2, err := sioclient.DialWS(ctx(t), base, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.Send("40")
	_ = c2.Send(`42["echo","early"]`)
	if got := mustText(t, c2); !strings.HasPrefix(got, "40{") {
		t.Fatalf("ack = %q", got)
	}
	expectText(t, c2, `42["echo-back","early"]`)

	_ = c.Send(`42["echo",1,"2",{"3":[true]}]`)
	expectText(t, c, `42["echo-back",1,"2",{"3":[true]}]`)
	_ = c.Send(`4212["ack","a",null]`)
	expectText(t, c, `4312["a",null]`)
	// Unhandled events are ignored; the connection stays usable.
	_ = c.Send(`42["nobody-listens"]`)
	_ = c.Send(`427["ack"]`)
	expectText(t, c, `437[]`)
}

func TestEventsAndAcksV3(t *testing.T) {
	_, base := startServer(t, socketio.Options{}, echoSetup)
	c := connectV3(t, base, nil)
	_ = c.Send(`421["ack",{"x":"é"}]`)
	expectText(t, c, `431[{"x":"é"}]`)
	// EIO3 heartbeats come from the client.
	_ = c.Send("2")
	expectText(t, c, "3")
}

func TestNamespaces(t *testing.T) {
	_, base := startServer(t, socketio.Options{}, func(srv *socketio.Server) {
		echoSetup(srv)
		srv.Of("/admin").OnConnection(func(s *socketio.Socket) {
			_ = s.Emit("hello", s.Handshake().Auth)
		})
	})
	c := connectV4(t, base, "")
	_ = c.Send(`40/admin,{"k":1}`)
	if got := mustText(t, c); !strings.HasPrefix(got, `40/admin,{"sid":"`) {
		t.Fatalf("admin ack = %q", got)
	}
	expectText(t, c, `42/admin,["hello",{"k":1}]`)
	_ = c.Send("40/nope,")
	expectText(t, c, `44/nope,{"message":"Invalid namespace"}`)
	_ = c.Send("41/admin,")
	_ = c.Send(`42["echo","still here"]`)
	expectText(t, c, `42["echo-back","still here"]`)

	v3 := connectV3(t, base, nil)
	_ = v3.Send("40/nope")
	expectText(t, v3, `44/nope,"Invalid namespace"`)
}

func TestAuthRefusal(t *testing.T) {
	var seen sync.Map
	_, base := startServer(t, socketio.Options{}, func(srv *socketio.Server) {
		nsp := srv.Of("/")
		nsp.Use(func(h *socketio.Handshake) (any, error) {
			token := h.Query.Get("token")
			if h.Auth != nil {
				var a struct{ Token string }
				_ = json.Unmarshal(h.Auth, &a)
				token = a.Token
			}
			if token != "good" {
				return nil, errors.New("用户认证错误")
			}
			return "user-1", nil
		})
		nsp.OnConnection(func(s *socketio.Socket) {
			seen.Store(s.Protocol(), s.Data())
			s.On("who", func(s *socketio.Socket, _ []json.RawMessage, ack socketio.AckFunc) { _ = ack(s.Data()) })
		})
	})
	// v4: refusal carries an object.
	c, _ := sioclient.DialWS(ctx(t), base, 4, nil)
	defer c.Close()
	_ = c.Send(`40{"token":"bad"}`)
	expectText(t, c, `44{"message":"用户认证错误"}`)
	_ = c.Send(`40{"token":"good"}`)
	if got := mustText(t, c); !strings.HasPrefix(got, `40{"sid"`) {
		t.Fatalf("good token: %q", got)
	}
	_ = c.Send(`421["who"]`)
	expectText(t, c, `431["user-1"]`)

	// v3: refusal is a JSON string, sent right after the open packet.
	c3, err := sioclient.DialWS(ctx(t), base, 3, url.Values{"token": {"bad"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	expectText(t, c3, `44"用户认证错误"`)
	connectV3(t, base, url.Values{"token": {"good"}})
	if v, _ := seen.Load(3); v != "user-1" {
		t.Errorf("v3 socket data = %v", v)
	}
}

func TestBinary(t *testing.T) {
	_, base := startServer(t, socketio.Options{}, echoSetup)
	for _, proto := range []int{4, 3} {
		var c *sioclient.WS
		if proto == 4 {
			c = connectV4(t, base, "")
		} else {
			c = connectV3(t, base, nil)
		}
		_ = c.Send(`452-9["ack",{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]`)
		_ = c.SendBinary([]byte{1, 2, 3})
		_ = c.SendBinary([]byte{})
		expectText(t, c, `462-9[{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]`)
		for _, want := range [][]byte{{1, 2, 3}, {}} {
			m, err := c.Next()
			if err != nil || !m.Binary || string(m.Data) != string(want) {
				t.Fatalf("EIO%d attachment = %+v %v, want %v", proto, m, err, want)
			}
		}
		// A binary frame nobody announced closes the connection.
		_ = c.SendBinary([]byte{9})
		expectClosed(t, c)
	}
}

func TestPollingV4(t *testing.T) {
	_, base := startServer(t, socketio.Options{}, echoSetup)
	c := ctx(t)
	p, rest, err := sioclient.DialPolling(c, base, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 0 || len(p.Open.Upgrades) != 1 || p.Open.Upgrades[0] != "websocket" {
		t.Fatalf("open %+v rest %v", p.Open, rest)
	}
	if st, err := p.Post(c, p.Encode("40", `42["echo","a"]`, `421["ack",1]`)); err != nil || st != 200 {
		t.Fatalf("post: %d %v", st, err)
	}
	var got []string
	for len(got) < 3 {
		st, packets, err := p.Get(c)
		if err != nil || st != 200 {
			t.Fatalf("get: %d %v", st, err)
		}
		for _, pk := range packets {
			got = append(got, string(pk.Data))
		}
	}
	if !strings.HasPrefix(got[0], `0{"sid"`) || got[1] != `2["echo-back","a"]` || got[2] != `31[1]` {
		t.Fatalf("got %q", got)
	}
	// Binary over polling: base64 both ways.
	_, _ = p.Post(c, p.Encode(`451-["echo",{"_placeholder":true,"num":0}]`)+"\x1ebAQI=")
	st, packets, err := p.Get(c)
	if err != nil || st != 200 || len(packets) != 2 || string(packets[0].Data) != `51-["echo-back",{"_placeholder":true,"num":0}]` ||
		!packets[1].Binary || string(packets[1].Data) != "\x01\x02" {
		t.Fatalf("binary over polling: %d %+v %v", st, packets, err)
	}
	// A body that is not a payload: 400, and the session is gone.
	if st, _ := p.Post(c, "abc"); st != 400 {
		t.Fatalf("invalid body: %d", st)
	}
	if st, _, _ := p.Get(c); st != 400 {
		t.Fatalf("get after invalid body: %d", st)
	}
}

func TestPollingV3(t *testing.T) {
	_, base := startServer(t, socketio.Options{}, echoSetup)
	c := ctx(t)
	p, rest, err := sioclient.DialPolling(c, base, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Open.MaxPayload != nil || len(rest) != 1 || string(rest[0].Data) != "0" {
		t.Fatalf("open %+v rest %+v", p.Open, rest)
	}
	if st, _ := p.Post(c, p.Encode(`421["ack","żółw"]`, "2")); st != 200 {
		t.Fatalf("post: %d", st)
	}
	var got []string
	for len(got) < 2 {
		_, packets, err := p.Get(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, pk := range packets {
			got = append(got, string(rune('0'+pk.Type))+string(pk.Data))
		}
	}
	if got[0] != `431["żółw"]` || got[1] != "3" {
		t.Fatalf("got %q", got)
	}
	_, _ = p.Post(c, p.Encode(`451-["echo",{"_placeholder":true,"num":0}]`, "b4AQI="))
	_, packets, err := p.Get(c)
	if err != nil || len(packets) != 2 || !packets[1].Binary || string(packets[1].Data) != "\x01\x02" {
		t.Fatalf("binary: %+v %v", packets, err)
	}
}

func TestUpgrade(t *testing.T) {
	srv, base := startServer(t, socketio.Options{}, echoSetup)
	for _, proto := range []int{4, 3} {
		c := ctx(t)
		p, _, err := sioclient.DialPolling(c, base, proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		if proto == 4 {
			_, _ = p.Post(c, p.Encode("40"))
			if _, packets, _ := p.Get(c); len(packets) != 1 {
				t.Fatalf("connect ack: %+v", packets)
			}
		}
		// A pending GET is answered with a noop once the probe starts.
		pending := make(chan []engineio.Packet, 1)
		go func() {
			_, packets, _ := p.Get(c)
			pending <- packets
		}()
		w, err := sioclient.DialRaw(c, sioclient.URL(base, proto, "websocket", p.SID, nil), proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		_ = w.Send("2probe")
		expectText(t, w, "3probe")
		if packets := <-pending; len(packets) != 1 || packets[0].Type != engineio.Noop {
			t.Fatalf("pending GET got %+v", packets)
		}
		_ = w.Send("5")
		_ = w.Send(`42["echo","over ws"]`)
		expectText(t, w, `42["echo-back","over ws"]`)
		if st, _, _ := p.Get(c); st != 400 {
			t.Fatalf("polling after upgrade: %d", st)
		}
		// A second websocket for the upgraded sid is accepted, then closed.
		w2, err := sioclient.DialRaw(c, sioclient.URL(base, proto, "websocket", p.SID, nil), proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		expectClosed(t, w2)
		_ = w.Send(`42["echo","still"]`)
		expectText(t, w, `42["echo-back","still"]`)
	}
	if srv.Count() != 2 {
		t.Errorf("Count = %d, want 2", srv.Count())
	}
}

func TestHeartbeat(t *testing.T) {
	opts := socketio.Options{PingInterval: 50 * time.Millisecond, PingTimeout: 400 * time.Millisecond}
	_, base := startServer(t, opts, echoSetup)

	// v4: the server pings; answering keeps the session alive.
	c := connectV4(t, base, "")
	c.AutoPong = false
	for range 3 {
		expectText(t, c, "2")
		_ = c.Send("3")
	}
	_ = c.Send(`42["echo",1]`)
	expectText(t, c, `42["echo-back",1]`)
	// Not answering closes it.
	expectText(t, c, "2")
	expectClosed(t, c)

	// v3: the client pings; silence closes the session.
	c3 := connectV3(t, base, nil)
	for range 3 {
		_ = c3.Send("2")
		expectText(t, c3, "3")
	}
	expectClosed(t, c3)
}

func TestConnectTimeout(t *testing.T) {
	_, base := startServer(t, socketio.Options{ConnectTimeout: 50 * time.Millisecond}, echoSetup)
	c, err := sioclient.DialWS(ctx(t), base, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c)
}

func TestInvalidEventClosesConnection(t *testing.T) {
	_, base := startServer(t, socketio.Options{}, echoSetup)
	for _, bad := range []string{`42{}`, `42[]`, `42[1]`, `4abc`, `42abc["x"]`, "abc"} {
		c := connectV4(t, base, "")
		_ = c.Send(bad)
		expectClosed(t, c)
	}
}

func TestMaxPayload(t *testing.T) {
	srv, base := startServer(t, socketio.Options{MaxPayload: 1000}, echoSetup)
	big := `42["echo","` + strings.Repeat("x", 2000) + `"]`
	c := connectV4(t, base, "")
	_ = c.Send(big)
	expectClosed(t, c)

	cx := ctx(t)
	p, _, err := sioclient.DialPolling(cx, base, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := p.Post(cx, big); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("big POST: %d", st)
	}
	if st, _, _ := p.Get(cx); st != 400 {
		t.Fatalf("session survived a big POST: %d", st)
	}
	// Others are still served.
	ok := connectV4(t, base, "")
	_ = ok.Send(`42["echo","small"]`)
	expectText(t, ok, `42["echo-back","small"]`)
	_ = srv
}

func TestPanicInHandlerIsRecovered(t *testing.T) {
	_, base := startServer(t, socketio.Options{}, echoSetup)
	bystander := connectV4(t, base, "")
	c := connectV4(t, base, "")
	_ = c.Send(`42["panic"]`)
	expectClosed(t, c)
	_ = bystander.Send(`42["echo","alive"]`)
	expectText(t, bystander, `42["echo-back","alive"]`)
}

func TestRoomsBroadcast(t *testing.T) {
	var srv *socketio.Server
	srv, base := startServer(t, socketio.Options{}, echoSetup)
	var clients []*sioclient.WS
	for i := range 4 {
		var c *sioclient.WS
		if i%2 == 0 {
			c = connectV4(t, base, "")
		} else {
			c = connectV3(t, base, nil)
		}
		if i < 3 {
			_ = c.Send(`421["join","room-a"]`)
			expectText(t, c, `431[]`)
		}
		clients = append(clients, c)
	}
	if n := srv.Of("/").RoomSize("room-a"); n != 3 {
		t.Fatalf("RoomSize = %d", n)
	}
	if err := srv.Of("/").To("room-a").Emit("news", "hi", []byte{7}); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients[:3] {
		expectText(t, c, `451-["news","hi",{"_placeholder":true,"num":0}]`)
		if m, err := c.Next(); err != nil || !m.Binary || string(m.Data) != "\x07" {
			t.Fatalf("attachment: %+v %v", m, err)
		}
	}
	// The outsider got nothing: its next message is the answer to its own event.
	_ = clients[3].Send(`42["echo","x"]`)
	expectText(t, clients[3], `42["echo-back","x"]`)
}

func TestSlowConsumerDisconnected(t *testing.T) {
	reasons := make(chan string, 1)
	sockets := make(chan *socketio.Socket, 1)
	_, base := startServer(t, socketio.Options{SendQueue: 8}, func(srv *socketio.Server) {
		srv.Of("/").OnConnection(func(s *socketio.Socket) {
			s.OnDisconnect(func(_ *socketio.Socket, reason string) { reasons <- reason })
			sockets <- s
		})
	})
	c := connectV4(t, base, "") // and never read again
	s := <-sockets
	p, err := socketio.Prepare("/", "flood", strings.Repeat("x", 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	var sendErr error
	for i := 0; i < 100000 && sendErr == nil; i++ {
		sendErr = s.EmitRaw(p)
	}
	if sendErr == nil {
		t.Fatal("emits to a client that never reads kept succeeding")
	}
	select {
	case r := <-reasons:
		if r != "slow consumer" {
			t.Errorf("reason = %q", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("slow consumer was not disconnected")
	}
	_ = c
}

func TestServerClose(t *testing.T) {
	srv, base := startServer(t, socketio.Options{}, echoSetup)
	a := connectV4(t, base, "")
	b := connectV3(t, base, nil)
	if srv.Count() != 2 {
		t.Fatalf("Count = %d", srv.Count())
	}
	srv.Close()
	expectClosed(t, a)
	expectClosed(t, b)
	if srv.Count() != 0 {
		t.Fatalf("Count after Close = %d", srv.Count())
	}
}

func TestEmitWithAck(t *testing.T) {
	answers := make(chan string, 3)
	_, base := startServer(t, socketio.Options{}, func(srv *socketio.Server) {
		srv.Of("/").OnConnection(func(s *socketio.Socket) {
			// The barrier: events are handled in arrival order, so an
			// answer sent before it would be seen first.
			s.On("ping", func(*socketio.Socket, []json.RawMessage, socketio.AckFunc) { answers <- "barrier" })
			for _, q := range []string{"first", "second"} {
				err := s.EmitWithAck(func(s *socketio.Socket, args []json.RawMessage) {
					var bin string
					if len(s.Attachments()) > 0 {
						bin = string(s.Attachments()[0])
					}
					answers <- q + ":" + string(args[0]) + ":" + bin
				}, "question", q)
				if err != nil {
					t.Error(err)
				}
			}
		})
	})
	c := connectV4(t, base, "")
	expectText(t, c, `420["question","first"]`)
	expectText(t, c, `421["question","second"]`)
	// Answered out of order, one with binary; a repeated answer is ignored.
	_ = c.Send(`461-1[{"_placeholder":true,"num":0}]`)
	_ = c.SendBinary([]byte("B"))
	_ = c.Send(`430["yes"]`)
	_ = c.Send(`430["again"]`)
	for _, want := range []string{`second:{"_placeholder":true,"num":0}:B`, `first:"yes":`} {
		if got := <-answers; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	_ = c.Send(`42["ping"]`)
	if got := <-answers; got != "barrier" {
		t.Errorf("unexpected answer %q", got)
	}
}

func TestOwnRoomAndExcept(t *testing.T) {
	ids := make(chan string, 3)
	left := make(chan string, 3)
	srv, base := startServer(t, socketio.Options{}, func(srv *socketio.Server) {
		srv.Of("/").OnConnection(func(s *socketio.Socket) {
			s.Join("all")
			ids <- s.ID()
		})
		srv.Of("/").OnDisconnect(func(s *socketio.Socket, _ string) { left <- s.ID() })
	})
	a, b, c := connectV4(t, base, ""), connectV4(t, base, ""), connectV4(t, base, "")
	idA, idB, _ := <-ids, <-ids, <-ids
	nsp := srv.Of("/")
	if nsp.RoomSize(idA) != 1 || nsp.Socket(idA) == nil || nsp.Count() != 3 {
		t.Fatalf("own room: size %d, count %d", nsp.RoomSize(idA), nsp.Count())
	}
	if rooms := nsp.Socket(idB).Rooms(); len(rooms) != 2 {
		t.Fatalf("Rooms = %v", rooms)
	}
	_ = nsp.To(idA).Emit("direct")
	_ = nsp.To("all").Except(idB).Emit("not-b")
	_ = nsp.Emit("everyone")
	expectText(t, a, `42["direct"]`)
	expectText(t, a, `42["not-b"]`)
	expectText(t, a, `42["everyone"]`)
	expectText(t, b, `42["everyone"]`)
	expectText(t, c, `42["not-b"]`)
	expectText(t, c, `42["everyone"]`)
	a.Close()
	if id := <-left; id != idA {
		t.Fatalf("%s left, want %s", id, idA)
	}
	if nsp.Socket(idA) != nil || nsp.RoomSize("all") != 2 {
		t.Fatalf("after close: socket %v, room size %d", nsp.Socket(idA), nsp.RoomSize("all"))
	}
}

// TestNamespaceHandlers checks handlers registered once on the namespace: a
// socket's own handler wins over the namespace's, OnAny catches the rest, and
// namespace disconnect handlers run after the socket's. It also checks that
// Socket.Handshake still returns the handshake's query, header and auth.
func TestNamespaceHandlers(t *testing.T) {
	var mu sync.Mutex
	var order []string
	left := make(chan struct{})
	_, base := startServer(t, socketio.Options{}, func(srv *socketio.Server) {
		nsp := srv.Of("/")
		nsp.On("shared", func(s *socketio.Socket, _ []json.RawMessage, ack socketio.AckFunc) { _ = ack("namespace") })
		nsp.On("mine", func(s *socketio.Socket, _ []json.RawMessage, ack socketio.AckFunc) { _ = ack("namespace") })
		nsp.On("handshake", func(s *socketio.Socket, _ []json.RawMessage, ack socketio.AckFunc) {
			h := s.Handshake()
			_ = ack(h.Query.Get("k"), h.Header.Get("X-Test"), h.Auth, h.Protocol, h.RemoteAddr != "" && !h.Time.IsZero())
		})
		nsp.OnDisconnect(func(*socketio.Socket, string) {
			mu.Lock()
			order = append(order, "namespace")
			mu.Unlock()
			close(left)
		})
		nsp.OnConnection(func(s *socketio.Socket) {
			s.On("mine", func(s *socketio.Socket, _ []json.RawMessage, ack socketio.AckFunc) { _ = ack("socket") })
			s.OnAny(func(s *socketio.Socket, event string, _ []json.RawMessage, ack socketio.AckFunc) {
				_ = ack("any " + event)
			})
			s.OnDisconnect(func(*socketio.Socket, string) {
				mu.Lock()
				order = append(order, "socket")
				mu.Unlock()
			})
		})
	})
	c, err := sioclient.DialRaw(ctx(t), sioclient.URL(base, 4, "websocket", "", url.Values{"k": {"v"}}), 4, http.Header{"X-Test": {"yes"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if open := mustText(t, c); !strings.HasPrefix(open, "0{") {
		t.Fatalf("open %q", open)
	}
	_ = c.Send(`40{"a":1}`)
	if got := mustText(t, c); !strings.HasPrefix(got, `40{"sid":"`) {
		t.Fatalf("connect ack = %q", got)
	}
	for _, tc := range []struct{ send, want string }{
		{`421["shared"]`, `431["namespace"]`},
		{`422["mine"]`, `432["socket"]`},
		{`423["other"]`, `433["any other"]`},
		{`424["handshake"]`, `434["v","yes",{"a":1},4,true]`},
	} {
		_ = c.Send(tc.send)
		expectText(t, c, tc.want)
	}
	_ = c.Send("41")
	<-left
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ",") != "socket,namespace" {
		t.Fatalf("disconnect handlers ran %v", order)
	}
}
