package api

import (
	"net/http"
	"testing"
)

func TestClientIP(t *testing.T) {
	for _, c := range []struct{ remote, want string }{
		{"192.0.2.7:4000", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:4000", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:4000", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:80", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:80", "2001:db8:1:3::/64"},
		{"not an address", "not an address"},
	} {
		if got := clientIP(&http.Request{RemoteAddr: c.remote}); got != c.want {
			t.Errorf("clientIP(%s) = %s, want %s", c.remote, got, c.want)
		}
	}
}
