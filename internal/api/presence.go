package api

import (
	"net/http"

	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/store"
)

// registerPresence adds GET /user/online when the node serves presence.
func (s *Server) registerPresence(route func(pattern string, h http.HandlerFunc)) {
	if s.opts.Online != nil {
		route("GET /user/online", s.signed(s.online))
	}
}

// online answers the presence of users: [{userId, online, lastSeen}].
func (s *Server) online(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	list, err := s.opts.Online(app.ID, userIDs(p))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", list)
}
