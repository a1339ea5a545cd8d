package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/signature"
	"github.com/chatd/chatd/internal/socketio/sioclient"
	"github.com/chatd/chatd/internal/web"
)

// TestSocketEventRate: every socket event other than sends (which have
// their own rate) counts against the user's event budget; past it, events
// get a clear error ack, the socket stays open, and other users are
// unaffected.
func TestSocketEventRate(t *testing.T) {
	// A rate that cannot refill during the test: the budget is the burst.
	n := startNode(t, func(c *config.Config) { c.UserEventRate = 0.001; c.UserEventBurst = 4 })
	bobToken, aliceToken := n.token("bob"), n.token("alice")
	n.call("POST", "/private/send/message", send("bob", "alice", "hi"))
	alice := n.socket(aliceToken)
	_, data := alice.emit("session-list", nil)
	var list []struct {
		SID string `json:"sid"`
	}
	json.Unmarshal(data, &list)
	if len(list) != 1 {
		t.Fatalf("session-list: %s", data)
	}
	sid := list[0].SID
	for i, ev := range []struct {
		name string
		arg  any
	}{
		{"set-session-read", sid},
		{"sync", map[string]any{"sid": sid, "afterSeq": 0}},
		{"session-message-list", map[string]any{"sid": sid}},
		{"set-session-read", sid},
		{"sync", map[string]any{"sid": sid, "afterSeq": 0}},
		{"session-list", nil},
	} {
		e, _ := alice.emit(ev.name, ev.arg)
		over := i >= 3 // session-list took the first of 4
		if !over && e != nil {
			t.Fatalf("event %d (%s) within the budget: %v", i, ev.name, e)
		}
		if over && (e == nil || !strings.Contains(e["message"].(string), "too many socket events")) {
			t.Fatalf("event %d (%s) past the budget: %v; want a rate-limit error", i, ev.name, e)
		}
	}
	// Out of event budget, the user cannot send either.
	if e, _ := alice.emit("send-private-message", map[string]any{"targetId": "bob", "messageType": 1, "content": map[string]any{"content": "x"}}); e == nil || !strings.Contains(e["message"].(string), "too many socket events") {
		t.Fatalf("a send out of event budget: %v; want a rate-limit error", e)
	}
	// Another user is unaffected; valid sends are metered by the send rate
	// only, malformed ones by the event budget too.
	bob := n.socket(bobToken)
	if e, _ := bob.emit("session-list", nil); e != nil {
		t.Fatalf("another user: %v", e)
	}
	for i := range 6 {
		if e, _ := bob.emit("send-private-message", map[string]any{"targetId": "alice", "messageType": 1, "content": map[string]any{"content": "x"}}); e != nil {
			t.Fatalf("valid send %d: %v", i, e)
		}
	}
	for i := range 3 {
		if e, _ := bob.emit("send-private-message", map[string]any{"targetId": "alice", "messageType": 99}); e == nil || strings.Contains(e["message"].(string), "too many") {
			t.Fatalf("malformed send %d: %v; want a validation error", i, e)
		}
	}
	if e, _ := bob.emit("send-private-message", map[string]any{"targetId": "alice", "messageType": 1, "content": map[string]any{"content": "x"}}); e == nil || !strings.Contains(e["message"].(string), "too many socket events") {
		t.Fatalf("a send after malformed ones spent the budget: %v; want a rate-limit error", e)
	}
}

// TestAdminKey: the key needs the Bearer scheme, and failed attempts from
// one address are limited (signature failures share the budget).
func TestAdminKey(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.AuthFailRateIP = 0.001; c.AuthFailBurstIP = 3 })
	create := func(auth string) reply {
		return n.do("POST", "/app/create", "application/json", `{"appName":"x"}`, auth)
	}
	if r := create(adminKey); r.HTTP != 403 || !strings.Contains(r.Message, "Bearer") {
		t.Fatalf("the key without its scheme: %+v; want 403", r)
	}
	if r := create("Bearer wrong"); r.HTTP != 403 {
		t.Fatalf("a wrong key: %+v; want 403", r)
	}
	if r := create("Bearer " + adminKey); r.Status != 1 {
		t.Fatalf("the right key: %+v", r)
	}
	// A forged signature is the third failure.
	var m map[string]any
	json.Unmarshal([]byte(n.signedBody(map[string]any{"userId": "u"})), &m)
	m["sign"] = strings.Repeat("0", 32)
	b, _ := json.Marshal(m)
	forged := string(b)
	if r := n.do("POST", "/user/getToken", "application/json", forged, ""); r.Status != 1004 {
		t.Fatalf("forged signature: %+v", r)
	}
	// Out of budget: refused before any check, even with the right key or a
	// good signature, with 429.
	if r := create("Bearer " + adminKey); r.HTTP != 429 || !strings.Contains(r.Message, "too many failed") {
		t.Fatalf("after 3 failures: %+v; want 429", r)
	}
	if r := n.call("POST", "/user/getToken", map[string]any{"userId": "u"}); r.HTTP != 429 {
		t.Fatalf("a signed request after 3 failures: %+v; want 429", r)
	}
}

// TestNonceAcrossRoutes: a nonce is used once across every route of the app.
// node-chat's recipe signs no route, so a body signed for one route and never
// sent there is accepted by another (the documented limit); an app with
// route-bound signatures refuses it.
func TestNonceAcrossRoutes(t *testing.T) {
	n := startNode(t)
	n.token("alice")
	body := n.signedBody(map[string]any{"userId": "alice"})
	if r := n.do("POST", "/user/sessions", "application/json", body, ""); r.Status != 1 {
		t.Fatalf("sessions: %+v", r)
	}
	if r := n.do("POST", "/user/getToken", "application/json", body, ""); r.Status != 1004 || !strings.Contains(r.Message, "nonce_str already used") {
		t.Fatalf("the same nonce on another route: %+v; want 1004 already used", r)
	}
	unused := n.signedBody(map[string]any{"userId": "alice"})
	if r := n.do("POST", "/user/getToken", "application/json", unused, ""); r.Status != 1 {
		t.Fatalf("node-chat's recipe, signed for another route, never used: %+v; want accepted", r)
	}

	// Route-bound signatures, set with the admin key.
	if r := n.do("POST", "/app/update", "application/json", `{"appId":"`+n.app.AppID+`","signRoute":true}`, "Bearer "+adminKey); r.Status != 1 {
		t.Fatalf("app update: %+v", r)
	}
	routed := func(route string) string {
		m := map[string]any{"app_id": n.app.AppID, "time_stamp": time.Now().UnixMilli(), "nonce_str": nonce(), "userId": "alice"}
		b, _ := json.Marshal(m)
		p, _ := params.FromJSON(b)
		m["sign"] = signature.SignRoute(p, n.app.AppSecret, route)
		b, _ = json.Marshal(m)
		return string(b)
	}
	for _, c := range []struct {
		name, body string
		want       int
	}{
		{"node-chat's recipe", n.signedBody(map[string]any{"userId": "alice"}), 1004},
		{"signed for another route", routed("POST /user/sessions"), 1004},
		{"signed for another method", routed("GET /user/getToken"), 1004},
		{"signed for this route", routed("POST /user/getToken"), 1},
	} {
		if r := n.do("POST", "/user/getToken", "application/json", c.body, ""); r.Status != c.want {
			t.Errorf("%s: %+v; want status %d", c.name, r, c.want)
		}
	}
	if r := n.do("POST", "/app/update", "application/json", `{"appId":"`+n.app.AppID+`","signRoute":true}`, adminKey); r.HTTP != 403 {
		t.Fatalf("app update without the Bearer scheme: %+v; want 403", r)
	}
	if r := n.do("POST", "/app/update", "application/json", `{"appId":"`+n.app.AppID+`","signRoute":false}`, "Bearer "+adminKey); r.Status != 1 {
		t.Fatalf("app update: %+v", r)
	}
	if r := n.call("POST", "/user/getToken", map[string]any{"userId": "alice"}); r.Status != 1 {
		t.Fatalf("node-chat's recipe once route binding is off: %+v", r)
	}
}

// TestDemoAppLocked: demo tokens minted by a chatd in demo mode stop working
// when it restarts without demo mode, and work again in demo mode.
func TestDemoAppLocked(t *testing.T) {
	dir := t.TempDir()
	at := func(demo bool) func(*config.Config) {
		return func(c *config.Config) {
			c.Store = "sqlite:" + filepath.Join(dir, "chatd.db")
			c.Blobs = "file:" + filepath.Join(dir, "files")
			c.Demo = demo
		}
	}
	demoToken := func(n *node) string {
		r := n.do("POST", "/demo/token", "application/json", `{"userId":"visitor"}`, "")
		var d struct{ Token string }
		if json.Unmarshal(r.Data, &d); r.Status != 1 || d.Token == "" {
			t.Fatalf("demo token: %+v", r)
		}
		return d.Token
	}
	connects := func(n *node, token string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := sioclient.DialWS(ctx, n.ts.URL, 4, url.Values{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Send(`40{"token":"` + token + `","appId":"` + web.DemoAppID + `"}`)
		ack, err := c.NextText()
		if err != nil {
			t.Fatal(err)
		}
		return strings.HasPrefix(ack, "40{")
	}
	demo := startNode(t, at(true))
	token := demoToken(demo)
	if !connects(demo, token) {
		t.Fatal("a demo token does not connect in demo mode")
	}
	demo.ts.Close()
	demo.srv.Close()

	plain := startNode(t, at(false))
	if connects(plain, token) {
		t.Fatal("a demo token still connects after a restart without demo mode")
	}
	plain.ts.Close()
	plain.srv.Close()

	again := startNode(t, at(true))
	if !connects(again, token) {
		t.Fatal("demo mode did not unlock the demo app")
	}
}

// TestForgedRequestsCheap: once an address has spent its failure budget on
// forged signatures, its next signed request is refused before its body is
// read: here the body never comes, and the answer does.
func TestForgedRequestsCheap(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.AuthFailRateIP = 0.001; c.AuthFailBurstIP = 2 })
	for range 2 {
		var m map[string]any
		json.Unmarshal([]byte(n.signedBody(map[string]any{"userId": "u"})), &m)
		m["sign"] = strings.Repeat("f", 32)
		b, _ := json.Marshal(m)
		if r := n.do("POST", "/user/getToken", "application/json", string(b), ""); r.Status != 1004 {
			t.Fatalf("forged: %+v", r)
		}
	}
	conn, err := net.Dial("tcp", n.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /user/getToken HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"app_id\":", 1<<20)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while the body is still coming: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d; want 429", res.StatusCode)
	}
}

// TestAppUpdate: only the admin key changes an app's settings, and bad
// input changes nothing.
func TestAppUpdate(t *testing.T) {
	n := startNode(t)
	update := func(body, auth string) reply {
		return n.do("POST", "/app/update", "application/json", body, auth)
	}
	on := `{"appId":"` + n.app.AppID + `","signRoute":true}`
	for _, c := range []struct {
		name, body, auth string
		http             int
		msg              string
	}{
		{"no key", on, "", 403, "Bearer"},
		{"wrong key", on, "Bearer nope", 403, "Bearer"},
		{"key without scheme", on, adminKey, 403, "Bearer"},
		{"unknown app", `{"appId":"0123456789abcdef01234567","signRoute":true}`, "Bearer " + adminKey, 400, "unknown"},
		{"malformed app id", `{"appId":"x","signRoute":true}`, "Bearer " + adminKey, 400, "unknown"},
		{"missing signRoute", `{"appId":"` + n.app.AppID + `"}`, "Bearer " + adminKey, 422, "signRoute"},
		{"bad signRoute", `{"appId":"` + n.app.AppID + `","signRoute":"yes"}`, "Bearer " + adminKey, 422, "signRoute"},
	} {
		if r := update(c.body, c.auth); r.HTTP != c.http || !strings.Contains(r.Message, c.msg) {
			t.Errorf("%s: %+v; want HTTP %d containing %q", c.name, r, c.http, c.msg)
		}
	}
	// Nothing changed: node-chat's recipe still works.
	if r := n.call("POST", "/user/getToken", map[string]any{"userId": "u"}); r.Status != 1 {
		t.Fatalf("after refused updates: %+v", r)
	}
	// An app created with signRoute requires route-bound signatures at once.
	r := n.do("POST", "/app/create", "application/json", `{"appName":"strict","signRoute":true}`, "Bearer "+adminKey)
	var strict app
	if json.Unmarshal(r.Data, &strict); r.Status != 1 || strict.AppID == "" {
		t.Fatalf("create a strict app: %+v", r)
	}
	other := &node{t: t, srv: n.srv, ts: n.ts, app: strict}
	if r := other.call("POST", "/user/getToken", map[string]any{"userId": "u"}); r.Status != 1004 {
		t.Fatalf("node-chat's recipe on a strict app: %+v; want 1004", r)
	}
}
