package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chatd/chatd/internal/ratelimit"
)

// The per-address handshake limit counts an IPv6 client's whole /64, which
// it can otherwise rotate through to dodge the limit.
func TestHandshakeLimitKeysIPv6On64(t *testing.T) {
	h := limitHandshakes(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ratelimit.New(0.001, 1))
	try := func(addr string) int {
		r := httptest.NewRequest("GET", "/socket.io/?EIO=4&transport=polling", nil)
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if c := try("[2001:db8:0:1::1]:1000"); c != http.StatusOK {
		t.Fatalf("first handshake: %d", c)
	}
	if c := try("[2001:db8:0:1::2]:1000"); c != http.StatusTooManyRequests {
		t.Fatalf("another address of the same /64: %d, want 429", c)
	}
	if c := try("[2001:db8:0:2::1]:1000"); c != http.StatusOK {
		t.Fatalf("another /64: %d", c)
	}
}
