package api

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/httpguard"
	"github.com/chatd/chatd/internal/params"
)

// Failed authentication (admin key, request signature) is counted per
// client address: past the budget, further attempts from that address are
// refused with 429 before any costly work, until the budget refills.

// clientIP is the budget key of the address a request came from (the
// peer's, not a header any client can set): an IPv4 address, or an IPv6
// address's /64, since one host commonly holds a whole /64.
func clientIP(r *http.Request) string { return httpguard.ClientKey(r.RemoteAddr) }

// errTooManyFailures answers a client address out of its failure budget.
var errTooManyFailures = fmt.Errorf("%w: too many failed signatures or admin keys from this address; retry later", chat.ErrRateLimited)

// authBudget reports whether the request's address may still try to
// authenticate; failed records one failed attempt.
func (s *Server) authBudget(r *http.Request) bool { return s.authFails.Peek(clientIP(r)) }

func (s *Server) failed(r *http.Request) { s.authFails.Allow(clientIP(r)) }

// adminParams checks the admin key and reads the request's parameters; on
// failure it has answered the request.
func (s *Server) adminParams(w http.ResponseWriter, r *http.Request) (*params.Params, bool) {
	if !s.admin(w, r) {
		return nil, false
	}
	p, err := s.readParams(w, r)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return p, true
}

// admin checks the admin key, sent as "Authorization: Bearer <key>" (the
// scheme is required), and answers the request when it is refused.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.AdminKey == "" {
		s.fail(w, r, fmt.Errorf("%w: app administration over HTTP is disabled: set CHATD_ADMIN_KEY, or run `chatd app create`", chat.ErrForbidden))
		return false
	}
	if !s.authBudget(r) {
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, errTooManyFailures)
		return false
	}
	got, scheme := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !scheme || subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.AdminKey)) != 1 {
		s.failed(r)
		s.fail(w, r, fmt.Errorf("%w: Authorization: Bearer <admin key> required", chat.ErrForbidden))
		return false
	}
	return true
}

// appUpdate changes an app's settings (admin key): signRoute turns
// route-bound signatures on or off.
func (s *Server) appUpdate(w http.ResponseWriter, r *http.Request) {
	p, isAdmin := s.adminParams(w, r)
	if !isAdmin {
		return
	}
	appID, _ := p.String("appId")
	on, present, err := boolParam(p, "signRoute")
	if err == nil && !present {
		err = fmt.Errorf("%w: missing signRoute (true or false)", chat.ErrInvalid)
	}
	if err == nil {
		err = s.chat.SetSignRoute(r.Context(), appID, on)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "更新成功", map[string]any{"appId": appID, "signRoute": on})
}
