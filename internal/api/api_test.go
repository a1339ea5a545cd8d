package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRecovererKeepsTheProcessUp: a panicking handler answers 500 with the
// envelope and a log line that names the route, and the next request is
// served as usual.
func TestRecovererKeepsTheProcessUp(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	calls := 0
	h := s.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			var m map[string]int
			//lint:ignore SA5000 the nil-map write is the point: the recoverer must survive a runtime error
			m["boom"]++ // a nil-map write: a real runtime panic
		}
		ok(w, "fine", nil)
	}))
	for i, want := range []int{500, 200} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/user/getToken", nil))
		var env envelope
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || rec.Code != want {
			t.Fatalf("request %d: HTTP %d %q; want %d with an envelope", i, rec.Code, rec.Body, want)
		}
		if want == 500 && (env.Status != 1000 || env.Message != "internal error") {
			t.Fatalf("panic answered with %+v", env)
		}
	}
	if !strings.Contains(logs.String(), "panic") || !strings.Contains(logs.String(), "/user/getToken") {
		t.Fatalf("the panic was not logged with its route: %s", logs.String())
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	New(nil, nil, nil, Options{}).Register(mux)
	for _, tc := range []struct {
		method, path, allow string
	}{
		{"DELETE", "/user/getToken", "POST"},
		{"GET", "/private/send/message", "POST"},
		{"PUT", "/user/sessions", "GET, HEAD, POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"DELETE", "/files/x/y", "GET, HEAD"},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != 405 || rec.Header().Get("Allow") != tc.allow || !strings.Contains(rec.Body.String(), `"status":1000`) ||
			!strings.Contains(rec.Body.String(), "not allowed") {
			t.Errorf("%s %s: got %d %v %s", tc.method, tc.path, rec.Code, rec.Header(), rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("HEAD", "/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("HEAD /healthz: %d", rec.Code)
	}
}
