package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/config"
)

// TestCORSOnEveryRoute: every route answers cross-origin requests and
// preflights once (one Access-Control-Allow-Origin, one Vary: Origin), the
// Socket.IO endpoint included; an origin not allowed gets no CORS headers
// and no socket.
func TestCORSOnEveryRoute(t *testing.T) {
	t.Parallel()
	const good, evil = "http://app.example:8080", "http://evil.example"
	n := startNode(t, func(c *config.Config) { c.Origins = "http://other.example, " + good })
	tok := n.token("alice")
	q := "?appId=" + n.app.AppID + "&token=" + tok
	routes := []struct{ method, path string }{
		{"POST", "/user/getToken"},
		{"GET", "/user/sessions"},
		{"POST", "/private/send/message"},
		{"POST", "/file/upload" + q},
		{"GET", "/files/" + n.app.AppID + "/nothing.png"},
		{"GET", "/socket.io/?EIO=3&transport=polling&" + q[1:]},
		{"GET", "/socket.io/?EIO=4&transport=polling&" + q[1:]},
		{"GET", "/healthz"},
		{"GET", "/nope"},
	}
	do := func(t *testing.T, method, path, origin string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, n.ts.URL+path, nil)
		req.Header.Set("Origin", origin)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, r := range routes {
		t.Run(r.method+" "+strings.SplitN(r.path, "?", 2)[0], func(t *testing.T) {
			pre := do(t, "OPTIONS", r.path, good, "Access-Control-Request-Method", r.method, "Access-Control-Request-Headers", "content-type,x-requested-with")
			if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Headers") != "content-type,x-requested-with" ||
				!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), r.method) {
				t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
			}
			res := do(t, r.method, r.path, good)
			for _, h := range []*http.Response{pre, res} {
				if got := h.Header.Values("Access-Control-Allow-Origin"); !slices.Equal(got, []string{good}) {
					t.Errorf("%s: Access-Control-Allow-Origin %q; want once %q", h.Request.Method, got, good)
				}
				if got := h.Header.Values("Access-Control-Allow-Credentials"); !slices.Equal(got, []string{"true"}) {
					t.Errorf("%s: Access-Control-Allow-Credentials %q", h.Request.Method, got)
				}
				if got := strings.Join(h.Header.Values("Vary"), ","); strings.Count(got, "Origin") != 1 {
					t.Errorf("%s: Vary %q; want Origin once", h.Request.Method, got)
				}
			}
			if pre := do(t, "OPTIONS", r.path, evil, "Access-Control-Request-Method", r.method); pre.StatusCode != http.StatusForbidden || pre.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("preflight from %s: %d %v", evil, pre.StatusCode, pre.Header)
			}
			res = do(t, r.method, r.path, evil)
			if h := res.Header.Get("Access-Control-Allow-Origin"); h != "" {
				t.Errorf("%s got Access-Control-Allow-Origin %q", evil, h)
			}
			if strings.HasPrefix(r.path, "/socket.io/") && res.StatusCode != http.StatusForbidden {
				t.Errorf("a socket from %s: HTTP %d; want 403", evil, res.StatusCode)
			}
		})
	}
}
