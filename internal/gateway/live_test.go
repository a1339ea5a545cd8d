package gateway

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
	"github.com/chatd/chatd/internal/socketio/sioclient"
	"github.com/chatd/chatd/internal/store"
)

// liveGateway is a gateway served over real websockets.
type liveGateway struct {
	g    *Gateway
	svc  *chat.Service
	app  store.App
	base string
}

func startLive(tb testing.TB, users ...string) *liveGateway {
	tb.Helper()
	ctx := context.Background()
	br := broker.NewMemory()
	svc := newService(tb, br)
	sio := socketio.NewServer(socketio.Options{PingInterval: time.Hour, PingTimeout: time.Hour, SendQueue: 1 << 16})
	g, err := New(svc, sio, br, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(sio)
	tb.Cleanup(func() { ts.Close(); sio.Close(); g.Close() })
	app, err := svc.CreateApp(ctx, "push", "")
	if err != nil {
		tb.Fatal(err)
	}
	for _, u := range users {
		if _, err := svc.GetToken(ctx, app, u, strings.ToUpper(u), ""); err != nil {
			tb.Fatal(err)
		}
	}
	return &liveGateway{g: g, svc: svc, app: app, base: ts.URL}
}

// dial connects a v4 websocket as user; query and auth may declare
// capabilities.
func (l *liveGateway) dial(tb testing.TB, user string, query url.Values, auth map[string]any) *sioclient.WS {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := l.svc.GetToken(ctx, l.app, user, strings.ToUpper(user), "")
	if err != nil {
		tb.Fatal(err)
	}
	q := url.Values{"token": {tok}, "appId": {l.app.ID}}
	for k, v := range query {
		q[k] = v
	}
	c, err := sioclient.DialWS(ctx, l.base, 4, q)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	connect := "40"
	if auth != nil {
		b, _ := json.Marshal(auth)
		connect += string(b)
	}
	if err := c.Send(connect); err != nil {
		tb.Fatal(err)
	}
	if got, err := c.NextText(); err != nil || !strings.HasPrefix(got, `40{"sid"`) {
		tb.Fatalf("connect %s: %q %v", user, got, err)
	}
	return c
}
