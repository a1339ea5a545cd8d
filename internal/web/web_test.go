package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/store/sqlite"
)

func newService(t *testing.T, path string) *chat.Service {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return chat.New(st, chat.Options{})
}

func newMux(t *testing.T, svc *chat.Service, demo bool) *http.ServeMux {
	t.Helper()
	w, err := New(context.Background(), svc, Options{Demo: demo})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) { http.Error(rw, "api not found", http.StatusNotFound) })
	w.Register(mux)
	return mux
}

func do(t *testing.T, h http.Handler, method, path, body string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	svc := newService(t, filepath.Join(t.TempDir(), "chatd.db"))
	off, on := newMux(t, svc, false), newMux(t, svc, true)
	tests := []struct {
		name        string
		h           http.Handler
		method      string
		path        string
		status      int
		contentType string
		contains    string
		csp         bool
	}{
		{"home without demo", off, "GET", "/", 200, "text/html", "/sdk/chatd.js", true},
		{"sdk", off, "GET", "/sdk/chatd.js", 200, "text/javascript", "export class ChatdClient", false},
		{"sdk types", off, "GET", "/sdk/chatd.d.ts", 200, "text/plain", "declare class ChatdClient", false},
		{"no demo assets without demo", off, "GET", "/demo/app.js", 404, "", "api not found", false},
		{"no demo token without demo", off, "POST", "/demo/token", 404, "", "api not found", false},
		{"other paths fall through", off, "GET", "/nope", 404, "", "api not found", false},
		{"demo page", on, "GET", "/", 200, "text/html", `src="/demo/app.js"`, true},
		{"demo script", on, "GET", "/demo/app.js", 200, "text/javascript", "ChatdClient", false},
		{"demo style", on, "GET", "/demo/style.css", 200, "text/css", ".msg", false},
		{"sdk in demo mode", on, "GET", "/sdk/chatd.js", 200, "text/javascript", "ChatClient", false},
		{"head of the sdk", on, "HEAD", "/sdk/chatd.js", 200, "text/javascript", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := do(t, tc.h, tc.method, tc.path, "")
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
			if got := res.Header.Get("Content-Security-Policy") != ""; got != tc.csp {
				t.Errorf("CSP set = %v, want %v", got, tc.csp)
			}
		})
	}
}

type reply struct {
	Status  int               `json:"status"`
	Message string            `json:"message"`
	Data    map[string]string `json:"data"`
}

func post(t *testing.T, h http.Handler, path string, v any) (int, reply) {
	t.Helper()
	b, _ := json.Marshal(v)
	res, body := do(t, h, "POST", path, string(b))
	var r reply
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%s: %v: %s", path, err, body)
	}
	return res.StatusCode, r
}

func TestDemoEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "chatd.db")
	svc := newService(t, dbPath)
	mux := newMux(t, svc, true)

	code, tok := post(t, mux, "/demo/token", map[string]string{"userId": "  ada   lovelace "})
	if code != 200 || tok.Status != chat.CodeOK {
		t.Fatalf("token: %d %+v", code, tok)
	}
	if tok.Data["appId"] != DemoAppID || tok.Data["userId"] != "ada lovelace" {
		t.Fatalf("token data %+v", tok.Data)
	}
	u, err := svc.Authenticate(ctx, DemoAppID, tok.Data["token"])
	if err != nil || u.UserID != "ada lovelace" {
		t.Fatalf("authenticate: %v %+v", err, u)
	}
	// The same name gets a working token again.
	if _, again := post(t, mux, "/demo/token", map[string]string{"userId": "ada lovelace"}); again.Data["token"] == "" {
		t.Fatal("no token the second time")
	}

	token := tok.Data["token"]
	bad := []struct {
		name, path string
		body       any
		status     int
	}{
		{"empty name", "/demo/token", map[string]string{"userId": "   "}, 422},
		{"not JSON", "/demo/token", "x", 422},
		{"group with a forged token", "/demo/group", map[string]any{"token": "forged.x", "name": "g"}, 401},
		{"group without a name", "/demo/group", map[string]any{"token": token, "name": " "}, 422},
		{"user with a forged token", "/demo/user", map[string]any{"token": "forged.x", "userId": "bob"}, 401},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			code, r := post(t, mux, tc.path, tc.body)
			if code != tc.status || r.Status == chat.CodeOK || r.Message == "" {
				t.Fatalf("got %d %+v, want %d with a message", code, r, tc.status)
			}
		})
	}

	if code, r := post(t, mux, "/demo/user", map[string]any{"token": token, "userId": "bob"}); code != 200 || r.Data["userId"] != "bob" {
		t.Fatalf("demo user: %d %+v", code, r)
	}
	code, g := post(t, mux, "/demo/group", map[string]any{"token": token, "name": "Tea <b>club</b>", "userIds": []string{"bob", "cy", ""}})
	if code != 200 || g.Data["groupId"] == "" {
		t.Fatalf("group: %d %+v", code, g)
	}
	for _, member := range []string{"ada lovelace", "bob", "cy"} {
		sessions, err := svc.Sessions(ctx, DemoAppID, member)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range sessions {
			found = found || s.TargetID == g.Data["groupId"] && s.Title == "Tea <b>club</b>"
		}
		if !found {
			t.Errorf("%s has no session of the group: %+v", member, sessions)
		}
	}

	// A restart on the same store keeps the demo app and its users.
	svc2 := newService(t, dbPath)
	if _, err := New(ctx, svc2, Options{Demo: true}); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if _, err := svc2.Authenticate(ctx, DemoAppID, token); err != nil {
		t.Fatalf("token after restart: %v", err)
	}
}

// FuzzUserName checks that a typed name becomes a usable demo user id or a
// clear error, and that normalising is stable.
func FuzzUserName(f *testing.F) {
	for _, s := range []string{"alice", "  ada   lovelace ", "", "   ", "<img src=x onerror=alert(1)>", "名前", strings.Repeat("x", 40), "a\tb\nc", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, err := userName(s)
		if err != nil {
			return
		}
		if name == "" || name != strings.TrimSpace(name) || len([]rune(name)) > 32 || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
			t.Fatalf("userName(%q) = %q", s, name)
		}
		if again, err := userName(name); err != nil || again != name {
			t.Fatalf("userName not stable: %q → %q → %q, %v", s, name, again, err)
		}
	})
}
