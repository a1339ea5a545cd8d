package api

import (
	"context"
	"net/http"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/store"
)

// registerSettings adds the conversation settings and blocking routes
// (README.md, Conversation settings).
func (s *Server) registerSettings(route func(pattern string, h http.HandlerFunc)) {
	route("POST /session/update", s.signed(s.sessionUpdate))
	route("POST /session/hide", s.signed(s.sessionHide))
	route("POST /user/block", s.signed(s.userBlock))
	route("POST /user/unblock", s.signed(s.userUnblock))
	route("GET /user/blocked", s.signed(s.userBlocked))
}

// optBool is a boolean parameter, nil when absent.
func optBool(p *params.Params, key string) (*bool, error) {
	v, present, err := boolParam(p, key)
	if err != nil || !present {
		return nil, err
	}
	return &v, nil
}

// sessionUpdate sets a user's pin, mute or draft of one of their sessions:
// {userId, sid, pinned?, muted?, draft?}.
func (s *Server) sessionUpdate(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	sid, _ := p.String("sid")
	var patch chat.SessionPatch
	var err error
	if patch.Pinned, err = optBool(p, "pinned"); err == nil {
		patch.Muted, err = optBool(p, "muted")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	patch.Draft = optString(p, "draft")
	st, err := s.chat.UpdateSession(r.Context(), app.ID, userID, sid, patch, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "更新成功", st)
}

// sessionHide takes a session out of a user's list until its next message:
// {userId, sid}.
func (s *Server) sessionHide(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	sid, _ := p.String("sid")
	st, err := s.chat.HideSession(r.Context(), app.ID, userID, sid, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "更新成功", st)
}

// userBlock: {userId, blockedUserIds[]}; the answer is the user's blocked list.
func (s *Server) userBlock(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	s.changeBlocks(w, r, app, p, s.chat.Block)
}

func (s *Server) userUnblock(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	s.changeBlocks(w, r, app, p, s.chat.Unblock)
}

func (s *Server) changeBlocks(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params,
	do func(ctx context.Context, appID, userID string, others []string) error) {
	userID, _ := p.String("userId")
	if err := do(r.Context(), app.ID, userID, idList(p, "blockedUserIds")); err != nil {
		s.fail(w, r, err)
		return
	}
	s.userBlocked(w, r, app, p)
}

// userBlocked answers {blocked: [userId…]}.
func (s *Server) userBlocked(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	list, err := s.chat.Blocked(r.Context(), app.ID, userID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", map[string]any{"blocked": list})
}
