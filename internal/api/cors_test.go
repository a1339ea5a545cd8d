package api

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	const good, evil = "https://app.example", "https://evil.example"
	type want struct {
		status  int    // 200: the handler answered
		origin  string // Access-Control-Allow-Origin
		headers string // Access-Control-Allow-Headers
	}
	for _, c := range []struct {
		name    string
		allowed []string
		method  string
		origin  string
		reqHdrs string // Access-Control-Request-Headers; a preflight also has Access-Control-Request-Method
		preflit bool
		want    want
	}{
		{"same origin or no browser", nil, "GET", "", "", false, want{200, "", ""}},
		{"any origin: simple request", nil, "GET", evil, "", false, want{200, evil, ""}},
		{"any origin: preflight of an upload with progress", nil, "OPTIONS", good, "content-type,x-requested-with", true, want{204, good, "content-type,x-requested-with"}},
		{"any origin: preflight without headers", nil, "OPTIONS", good, "", true, want{204, good, ""}},
		{"any origin: the literal null origin", nil, "POST", "null", "", false, want{200, "null", ""}},
		{"list: listed origin", []string{good}, "POST", good, "", false, want{200, good, ""}},
		{"list: listed origin's preflight", []string{"https://other.example", good}, "OPTIONS", good, "content-type", true, want{204, good, "content-type"}},
		{"list: unlisted origin gets no headers", []string{good}, "POST", evil, "", false, want{200, "", ""}},
		{"list: unlisted origin's preflight is refused", []string{good}, "OPTIONS", evil, "content-type", true, want{403, "", ""}},
		{"list: no origin", []string{good}, "GET", "", "", false, want{200, "", ""}},
		{"list: origins match exactly", []string{good}, "GET", good + ":443", "", false, want{200, "", ""}},
		{"OPTIONS that is not a preflight reaches the handler", nil, "OPTIONS", good, "", false, want{200, good, ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			called := false
			h := CORS(c.allowed, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				w.WriteHeader(http.StatusOK)
			}))
			req := httptest.NewRequest(c.method, "/file/upload?token=t&appId=a", nil)
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			if c.preflit {
				req.Header.Set("Access-Control-Request-Method", "POST")
			}
			if c.reqHdrs != "" {
				req.Header.Set("Access-Control-Request-Headers", c.reqHdrs)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			hdr := rec.Header()
			got := want{rec.Code, hdr.Get("Access-Control-Allow-Origin"), hdr.Get("Access-Control-Allow-Headers")}
			if got != c.want {
				t.Fatalf("got %+v; want %+v", got, c.want)
			}
			if called != (c.want.status == 200) {
				t.Fatalf("handler called: %v", called)
			}
			if !slices.Contains(hdr.Values("Vary"), "Origin") {
				t.Errorf("no Vary: Origin: %v", hdr)
			}
			creds := hdr.Get("Access-Control-Allow-Credentials")
			if (creds == "true") != (got.origin != "") || got.origin == "*" {
				t.Errorf("origin %q with credentials %q", got.origin, creds)
			}
			if c.preflit && c.want.status == 204 {
				if m := hdr.Get("Access-Control-Allow-Methods"); m != "GET, HEAD, POST, OPTIONS" {
					t.Errorf("Allow-Methods %q", m)
				}
				if hdr.Get("Access-Control-Max-Age") == "" {
					t.Error("no Max-Age")
				}
			}
		})
	}
}
