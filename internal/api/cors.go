package api

import (
	"net/http"

	"github.com/chatd/chatd/internal/chat"
)

// CORS lets browser apps served from other origins use every route (the API,
// uploads, downloads and Socket.IO long-polling), as node-chat does. allowed
// lists the origins that may; empty means any. An allowed origin is
// reflected, never answered with "*", because the Socket.IO clients send
// credentials; an origin not allowed gets no CORS headers (the browser then
// refuses the response to the page) and its preflights are refused.
func CORS(allowed []string, h http.Handler) http.Handler {
	set := make(map[string]bool, len(allowed))
	for _, o := range allowed {
		set[o] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		// Responses differ by Origin: caches must not share them across origins.
		hdr.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" {
			h.ServeHTTP(w, r)
			return
		}
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if len(set) > 0 && !set[origin] {
			if preflight {
				writeJSON(w, http.StatusForbidden, envelope{Status: chat.CodeOther, Message: "origin " + origin + " is not allowed (CHATD_ALLOWED_ORIGINS)"})
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Set("Access-Control-Allow-Credentials", "true")
		if !preflight {
			hdr.Set("Access-Control-Expose-Headers", "Content-Disposition, Content-Range, Accept-Ranges, Retry-After")
			h.ServeHTTP(w, r)
			return
		}
		hdr.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			hdr.Set("Access-Control-Allow-Headers", rh)
			hdr.Add("Vary", "Access-Control-Request-Headers")
		}
		hdr.Set("Access-Control-Max-Age", preflightMaxAge)
		w.WriteHeader(http.StatusNoContent)
	})
}

// preflightMaxAge is how long (seconds) a browser may reuse a preflight's
// answer: two hours, the most Chromium honours; an origin removed from the
// allow-list is refused by the next preflight after that.
const preflightMaxAge = "7200"
