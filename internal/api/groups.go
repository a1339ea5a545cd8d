package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/store"
)

// Group management and user profile routes (README, HTTP API). Every one is
// signed: the app backend may do anything in its own app.

func (s *Server) registerGroups(route func(pattern string, h http.HandlerFunc)) {
	for _, r := range []struct {
		methods string
		path    string
		h       signedHandler
	}{
		{"POST", "/group/transfer", s.groupTransfer},
		{"POST", "/group/admins", s.groupAdmins},
		{"POST", "/group/update", s.groupUpdate},
		{"GET POST", "/group/info", s.groupInfo},
		{"GET POST", "/group/members", s.groupMembers},
		{"GET POST", "/user/groups", s.userGroups},
		{"POST", "/group/mute", s.groupMute},
		{"POST", "/group/unmute", s.groupUnmute},
		{"POST", "/group/mute-all", s.groupMuteAll},
		{"POST", "/group/dismiss", s.groupDismiss},
		{"POST", "/user/update", s.userUpdate},
		{"GET POST", "/user/info", s.userInfo},
		{"POST", "/user/delete", s.userDelete},
	} {
		for m := range strings.FieldsSeq(r.methods) {
			route(m+" "+r.path, s.signed(r.h))
		}
	}
}

func backend(app store.App) chat.Actor { return chat.Actor{AppID: app.ID} }

func (s *Server) groupTransfer(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	userID, _ := p.String("userId")
	s.done(w, r, s.chat.Transfer(r.Context(), backend(app), groupID, userID))
}

func (s *Server) groupAdmins(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	s.done(w, r, s.chat.SetAdmins(r.Context(), backend(app), groupID, idList(p, "add"), idList(p, "remove")))
}

func (s *Server) groupUpdate(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	var in chat.GroupUpdateInput
	in.Name, in.AvatarURI, in.Notice = optString(p, "name"), optString(p, "avatarUri"), optString(p, "notice")
	extra, err := extraParam(p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in.Extra = extra
	g, err := s.chat.UpdateGroup(r.Context(), backend(app), groupID, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "更新成功", g)
}

func (s *Server) groupInfo(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	g, err := s.chat.GroupInfo(r.Context(), backend(app), groupID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", g)
}

func (s *Server) groupMembers(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	cursor, _ := p.String("cursor")
	limit, _, err := p.Int("limit")
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: limit must be an integer", chat.ErrInvalid))
		return
	}
	page, err := s.chat.GroupMembers(r.Context(), backend(app), groupID, int(min(max(limit, -1), 1<<20)), cursor)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", page)
}

func (s *Server) userGroups(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	gs, err := s.chat.UserGroups(r.Context(), app.ID, userID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", gs)
}

func (s *Server) groupMute(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	until, present, err := p.Int("until")
	if err != nil || !present || until <= 0 {
		s.fail(w, r, fmt.Errorf("%w: until must be a time in ms since epoch", chat.ErrInvalid))
		return
	}
	s.done(w, r, s.chat.Mute(r.Context(), backend(app), groupID, userIDs(p), time.UnixMilli(until)))
}

func (s *Server) groupUnmute(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	s.done(w, r, s.chat.Mute(r.Context(), backend(app), groupID, userIDs(p), time.Time{}))
}

func (s *Server) groupMuteAll(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	on, present, err := boolParam(p, "mute")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	on = on || !present // mute defaults to true
	s.done(w, r, s.chat.MuteAll(r.Context(), backend(app), groupID, on))
}

func (s *Server) groupDismiss(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	s.done(w, r, s.chat.Dismiss(r.Context(), backend(app), groupID))
}

func (s *Server) userUpdate(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	extra, err := extraParam(p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.chat.UpdateUser(r.Context(), app.ID, userID, chat.ProfileInput{Name: optString(p, "name"), AvatarURI: optString(p, "avatarUri"), Extra: extra})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "更新成功", u)
}

func (s *Server) userInfo(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	us, err := s.chat.UserInfo(r.Context(), chat.Actor{AppID: app.ID}, userIDs(p))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", us)
}

func (s *Server) userDelete(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	remove, _, err := boolParam(p, "removeMessages")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, s.chat.DeleteUser(r.Context(), app, userID, remove))
}

// done answers a route without data.
func (s *Server) done(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "操作成功", nil)
}

// idList reads an array of ids like userIds (key[0]=…, key[]=…, a JSON
// array, a JSON array in a string, or one scalar).
func idList(p *params.Params, key string) []string {
	if v, isScalar := p.String(key); isScalar && strings.HasPrefix(strings.TrimSpace(v), "[") {
		var ids []string
		if json.Unmarshal([]byte(v), &ids) == nil {
			return ids
		}
	}
	ids, _ := p.Strings(key)
	return ids
}

// optString is a string parameter, nil when absent.
func optString(p *params.Params, key string) *string {
	if v, present := p.String(key); present {
		return &v
	}
	return nil
}

// extraParam reads extra: an object, or a string holding one; nil when absent.
func extraParam(p *params.Params) (json.RawMessage, error) {
	if p.Get("extra") == nil {
		return nil, nil
	}
	if v, isScalar := p.String("extra"); isScalar {
		if strings.HasPrefix(strings.TrimSpace(v), "{") && json.Valid([]byte(v)) {
			return json.RawMessage(v), nil
		}
		return nil, fmt.Errorf("%w: extra must be a JSON object", chat.ErrInvalid)
	}
	raw, _ := p.JSON("extra")
	return raw, nil
}
