package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/server"
	"github.com/chatd/chatd/internal/signature"
	"github.com/chatd/chatd/internal/store"
)

const adminKey = "admin-test-key"

// node is a chatd started on a temporary SQLite store and served over real HTTP.
type node struct {
	t   *testing.T
	srv *server.Server
	ts  *httptest.Server
	app app
}

type app struct {
	AppName   string `json:"appName"`
	AppID     string `json:"appId"`
	AppSecret string `json:"appSecret"`
}

type reply struct {
	HTTP    int             `json:"-"`
	Status  int             `json:"status"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func startNode(t *testing.T, mutate ...func(*config.Config)) *node {
	t.Helper()
	return startNodeLogger(t, nil, mutate...)
}

// startNodeLogger is startNode with the node logging to log.
func startNodeLogger(t *testing.T, log *slog.Logger, mutate ...func(*config.Config)) *node {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Store = "sqlite:" + filepath.Join(dir, "chatd.db")
	cfg.Blobs = "file:" + filepath.Join(dir, "files")
	cfg.AdminKey = adminKey
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := server.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	// Served as chatd serves: its listener (connection limit) and http.Server (timeouts).
	ts := httptest.NewUnstartedServer(srv.Handler)
	ts.Listener = srv.Listen(ts.Listener)
	ts.Config = srv.HTTPServer()
	ts.Start()
	t.Cleanup(func() { ts.Close(); srv.Close() })
	n := &node{t: t, srv: srv, ts: ts}
	r := n.do("POST", "/app/create", "application/json", `{"appName":"e2e","description":"d"}`, "Bearer "+adminKey)
	if r.Status != 1 {
		t.Fatalf("app create: %+v", r)
	}
	json.Unmarshal(r.Data, &n.app)
	return n
}

func (n *node) do(method, path, contentType, body, auth string) reply {
	n.t.Helper()
	req, _ := http.NewRequest(method, n.ts.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	var r reply
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &r); err != nil {
		n.t.Fatalf("%s %s: not an envelope: %q", method, path, b)
	}
	r.HTTP = res.StatusCode
	return r
}

func nonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// signedBody returns a JSON body with app_id, time_stamp, nonce_str and a
// valid sign added; edit may alter the fields before signing.
func (n *node) signedBody(fields map[string]any, edit ...func(map[string]any)) string {
	n.t.Helper()
	m := map[string]any{"app_id": n.app.AppID, "time_stamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "nonce_str": nonce()}
	for k, v := range fields {
		m[k] = v
	}
	for _, e := range edit {
		e(m)
	}
	b, _ := json.Marshal(m)
	p, err := params.FromJSON(b)
	if err != nil {
		n.t.Fatal(err)
	}
	m["sign"] = signature.Sign(p, n.app.AppSecret)
	b, _ = json.Marshal(m)
	return string(b)
}

func (n *node) call(method, path string, fields map[string]any) reply {
	n.t.Helper()
	return n.do(method, path, "application/json", n.signedBody(fields), "")
}

func (n *node) token(userID string) string {
	n.t.Helper()
	r := n.call("POST", "/user/getToken", map[string]any{"userId": userID, "name": "N" + userID, "avatarUri": "https://a/" + userID})
	if r.Status != 1 {
		n.t.Fatalf("getToken %s: %+v", userID, r)
	}
	var d struct{ Token string }
	json.Unmarshal(r.Data, &d)
	return d.Token
}

// snapshot captures everything the users can see, to prove a refused request
// changed nothing.
func (n *node) snapshot(users ...string) string {
	n.t.Helper()
	var b strings.Builder
	ctx := context.Background()
	for _, u := range users {
		ss, err := n.srv.Store.Sessions(ctx, n.app.AppID, u)
		if err != nil {
			n.t.Fatal(err)
		}
		for _, s := range ss {
			fmt.Fprintf(&b, "%s %s %d/%d %s|", u, s.TargetID, s.LastSeq, s.ReadSeq, s.Title)
		}
		if usr, err := n.srv.Store.User(ctx, n.app.AppID, u); err == nil {
			fmt.Fprintf(&b, "user %s %s %d|", u, usr.Name, usr.TokenVersion)
		}
	}
	return b.String()
}

func send(from, to string, text string) map[string]any {
	return map[string]any{"senderUserId": from, "targetId": to, "messageType": 1, "content": map[string]any{"content": text}}
}

func TestHTTPErrorMatrix(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *config.Config) { c.MaxUploadBytes = 4096 })
	alice, _ := n.token("alice"), n.token("bob")
	n.call("POST", "/private/send/message", send("alice", "bob", "hi"))
	n.call("POST", "/group/create", map[string]any{"groupId": "g", "name": "G", "userIds": []string{"alice", "bob"}})
	users := []string{"alice", "bob", "mallory", "carol"}
	before := n.snapshot(users...)

	old := strconv.FormatInt(time.Now().Add(-6*time.Minute).UnixMilli(), 10)
	future := strconv.FormatInt(time.Now().Add(6*time.Minute).UnixMilli(), 10)
	replayed := n.signedBody(send("alice", "bob", "replay me"))
	if r := n.do("POST", "/private/send/message", "application/json", replayed, ""); r.Status != 1 {
		t.Fatalf("first use of a signed body failed: %+v", r)
	}
	before = n.snapshot(users...) // the first use of the replayed body changed things legitimately

	cases := []struct {
		name     string
		method   string
		path     string
		ctype    string
		body     string
		wantCode int
		wantHTTP int
		wantMsg  string
	}{
		{"missing app_id", "POST", "/user/getToken", "application/json", `{"userId":"x"}`, 1002, 422, "app_id"},
		{"unknown app", "POST", "/user/getToken", "application/json", `{"app_id":"0123456789abcdef01234567","userId":"x","time_stamp":"1","nonce_str":"a","sign":"b"}`, 1006, 400, "unknown"},
		{"malformed app id", "POST", "/user/getToken", "application/json", `{"app_id":"nope","userId":"x"}`, 1006, 400, "unknown"},
		{"bad signature", "POST", "/user/getToken", "application/json", n.signedBody(map[string]any{"userId": "mallory"}, func(m map[string]any) {}) + "", 0, 0, ""},
		{"missing sign", "POST", "/user/getToken", "application/json", fmt.Sprintf(`{"app_id":%q,"userId":"mallory","time_stamp":"%d","nonce_str":"zz"}`, n.app.AppID, time.Now().UnixMilli()), 1002, 422, "sign"},
		{"expired timestamp", "POST", "/user/getToken", "application/json", n.signedBody(map[string]any{"userId": "mallory"}, func(m map[string]any) { m["time_stamp"] = old }), 1002, 422, "time_stamp"},
		{"future timestamp", "POST", "/user/getToken", "application/json", n.signedBody(map[string]any{"userId": "mallory"}, func(m map[string]any) { m["time_stamp"] = future }), 1002, 422, "time_stamp"},
		{"replayed nonce", "POST", "/private/send/message", "application/json", replayed, 1004, 400, "nonce"},
		{"not json", "POST", "/user/getToken", "application/json", `{"userId":`, 1002, 422, "body"},
		{"unsupported content type", "POST", "/user/getToken", "text/plain", `userId=x`, 1002, 422, "Content-Type"},
		{"missing userId", "POST", "/user/getToken", "application/json", n.signedBody(map[string]any{"name": "x"}), 1002, 422, "userId"},
		{"userId not a string", "POST", "/user/getToken", "application/json", n.signedBody(map[string]any{"userId": map[string]any{"a": 1}}), 1002, 422, "userId"},
		{"unknown sender", "POST", "/private/send/message", "application/json", n.signedBody(send("mallory", "bob", "x")), 1002, 404, "unknown user"},
		{"unknown target", "POST", "/private/send/message", "application/json", n.signedBody(send("alice", "mallory", "x")), 1002, 404, "unknown user"},
		{"bad messageType", "POST", "/private/send/message", "application/json", n.signedBody(map[string]any{"senderUserId": "alice", "targetId": "bob", "messageType": 9, "content": map[string]any{"content": "x"}}), 1002, 422, "messageType"},
		{"messageType not a number", "POST", "/private/send/message", "application/json", n.signedBody(map[string]any{"senderUserId": "alice", "targetId": "bob", "messageType": "text", "content": map[string]any{"content": "x"}}), 1002, 422, "messageType"},
		{"content not an object", "POST", "/private/send/message", "application/json", n.signedBody(map[string]any{"senderUserId": "alice", "targetId": "bob", "messageType": 1, "content": 5}), 1002, 422, "content"},
		{"missing content", "POST", "/private/send/message", "application/json", n.signedBody(map[string]any{"senderUserId": "alice", "targetId": "bob", "messageType": 1}), 1002, 422, "content"},
		{"unknown group send", "POST", "/group/send/message", "application/json", n.signedBody(send("alice", "nogroup", "x")), 1002, 404, "unknown group"},
		{"non-member group send", "POST", "/group/send/message", "application/json", n.signedBody(send("carol", "g", "x")), 1000, 403, "not a member"},
		{"join unknown group", "POST", "/group/join", "application/json", n.signedBody(map[string]any{"groupId": "nogroup", "userIds": []string{"carol"}}), 1002, 404, "unknown group"},
		{"remove from unknown group", "POST", "/group/remove", "application/json", n.signedBody(map[string]any{"groupId": "nogroup", "userIds": []string{"carol"}}), 1002, 404, "unknown group"},
		{"group without userIds", "POST", "/group/create", "application/json", n.signedBody(map[string]any{"groupId": "g2", "name": "x"}), 1002, 422, "userIds"},
		{"group without name", "POST", "/group/create", "application/json", n.signedBody(map[string]any{"groupId": "g2", "userIds": []string{"alice"}}), 1002, 422, "name"},
		{"history bad conversationType", "GET", "/session/messages?", "", "", 0, 0, ""},
		{"history of a group not joined", "POST", "/session/messages", "application/json", n.signedBody(map[string]any{"userId": "carol", "targetId": "g", "conversationType": 2}), 1000, 403, "not a member"},
		{"history with unknown lastmsgId", "POST", "/session/messages", "application/json", n.signedBody(map[string]any{"userId": "alice", "targetId": "bob", "conversationType": 1, "lastmsgId": "0123456789abcdef01234567"}), 1002, 404, "message"},
		{"history with negative limit", "POST", "/session/messages", "application/json", n.signedBody(map[string]any{"userId": "alice", "targetId": "bob", "conversationType": 1, "limit": -3}), 1002, 422, "limit"},
		{"wrong method", "GET", "/user/getToken", "", "", 1000, 405, "method"},
		{"unknown route", "GET", "/nope", "", "", 1000, 404, "route"},
		{"app create without key", "POST", "/app/create", "application/json", `{"appName":"x"}`, 1000, 403, "admin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			switch c.name {
			case "bad signature":
				var m map[string]any
				json.Unmarshal([]byte(c.body), &m)
				m["sign"] = strings.Repeat("0", 32)
				b, _ := json.Marshal(m)
				c.body, c.wantCode, c.wantHTTP, c.wantMsg = string(b), 1004, 400, "signature"
			case "history bad conversationType":
				c.method, c.ctype, c.path = "POST", "application/json", "/session/messages"
				c.body = n.signedBody(map[string]any{"userId": "alice", "targetId": "bob", "conversationType": 7})
				c.wantCode, c.wantHTTP, c.wantMsg = 1002, 422, "conversationType"
			}
			r := n.do(c.method, c.path, c.ctype, c.body, "")
			if r.Status != c.wantCode || r.HTTP != c.wantHTTP || !strings.Contains(r.Message, c.wantMsg) {
				t.Errorf("got status %d HTTP %d %q; want %d HTTP %d containing %q", r.Status, r.HTTP, r.Message, c.wantCode, c.wantHTTP, c.wantMsg)
			}
			if after := n.snapshot(users...); after != before {
				t.Errorf("store changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}

	t.Run("uploads", func(t *testing.T) {
		upload := func(token, field, name string, data []byte) reply {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			fw, _ := mw.CreateFormFile(field, name)
			fw.Write(data)
			mw.Close()
			return n.do("POST", "/file/upload?appId="+n.app.AppID+"&token="+token, mw.FormDataContentType(), buf.String(), "")
		}
		png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 100)...)
		for _, c := range []struct {
			name     string
			token    string
			field    string
			data     []byte
			wantHTTP int
			wantMsg  string
		}{
			{"bad token", "garbage", "up_file", png, 401, "token"},
			{"wrong field", alice, "file", png, 422, "up_file"},
			{"too large", alice, "up_file", append(png, make([]byte, 5000)...), 413, "larger"},
			{"html", alice, "up_file", []byte("<!DOCTYPE html><html><script>x</script>"), 422, "not allowed"},
			{"executable", alice, "up_file", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64)...), 422, "not allowed"},
			{"empty", alice, "up_file", nil, 422, "empty"},
		} {
			r := upload(c.token, c.field, "f.bin", c.data)
			if r.Status == 1 || r.HTTP != c.wantHTTP || !strings.Contains(r.Message, c.wantMsg) {
				t.Errorf("%s: got status %d HTTP %d %q; want HTTP %d containing %q", c.name, r.Status, r.HTTP, r.Message, c.wantHTTP, c.wantMsg)
			}
		}
		if r := upload(alice, "up_file", "ok.png", png); r.Status != 1 {
			t.Errorf("a valid PNG was refused: %+v", r)
		}
	})
}

// TestConcurrentSends proves the send path under contention: 32 senders into
// one group give gapless seqs with no duplicates and no error, and two users
// opening the same private conversation at once get one conversation.
func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	const senders, each = 32, 10
	ids := make([]string, senders)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%02d", i)
		n.token(ids[i])
	}
	if r := n.call("POST", "/group/create", map[string]any{"groupId": "hot", "name": "Hot", "userIds": ids}); r.Status != 1 {
		t.Fatal(r)
	}
	var wg sync.WaitGroup
	errs := make(chan string, senders*each)
	for _, u := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				if r := n.call("POST", "/group/send/message", send(u, "hot", fmt.Sprintf("%s-%d", u, j))); r.Status != 1 {
					errs <- r.Message
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("send failed: %s", e)
	}
	conv, err := n.srv.Store.ConversationByKey(context.Background(), n.app.AppID, store.Group, "hot")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := n.srv.Store.After(context.Background(), conv.ID, ids[0], 0, senders*each+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != senders*each || conv.LastSeq != senders*each {
		t.Fatalf("%d messages, last seq %d; want %d", len(msgs), conv.LastSeq, senders*each)
	}
	texts := map[string]bool{}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("seq %d at position %d", m.Seq, i)
		}
		texts[string(m.Content)] = true
	}
	if len(texts) != senders*each {
		t.Fatalf("%d distinct messages; want %d", len(texts), senders*each)
	}

	// Two users open the same private conversation at the same moment, many times over.
	for i := 0; i < 20; i++ {
		a, b := fmt.Sprintf("p%da", i), fmt.Sprintf("p%db", i)
		n.token(a)
		n.token(b)
		var wg sync.WaitGroup
		for _, pair := range [][2]string{{a, b}, {b, a}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := n.call("POST", "/private/send/message", send(pair[0], pair[1], "first")); r.Status != 1 {
					t.Errorf("send: %+v", r)
				}
			}()
		}
		wg.Wait()
		ss, _ := n.srv.Store.Sessions(context.Background(), n.app.AppID, a)
		if len(ss) != 1 || ss[0].LastSeq != 2 {
			t.Fatalf("pair %d: %d sessions (last seq %v); want one conversation with 2 messages", i, len(ss), ss)
		}
	}
}

func TestSelfMessageHasOneSession(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.token("solo")
	for i := 0; i < 3; i++ {
		if r := n.call("POST", "/private/send/message", send("solo", "solo", "note to self")); r.Status != 1 {
			t.Fatal(r)
		}
	}
	r := n.call("GET", "/user/sessions", map[string]any{"userId": "solo"})
	var ss []map[string]any
	json.Unmarshal(r.Data, &ss)
	if len(ss) != 1 || ss[0]["unread"].(float64) != 0 || ss[0]["targetId"] != "solo" {
		t.Fatalf("sessions: %s", r.Data)
	}
}
