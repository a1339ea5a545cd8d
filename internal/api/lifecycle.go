package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/store"
)

// The message lifecycle routes (docs/socket-protocol.md, "Message
// updates"), signed like every server route. userId names the user acting;
// without it the app itself recalls.
func (s *Server) registerLifecycle(route func(path string, h http.HandlerFunc, methods ...string)) {
	route("/message/recall", s.signed(s.recall), http.MethodPost)
	route("/message/edit", s.signed(s.edit), http.MethodPost)
	route("/message/delete", s.signed(s.deleteForUser), http.MethodPost)
	route("/session/clear", s.signed(s.clearSession), http.MethodPost)
}

// lifecycleArgs reads the actor and the conversation of a lifecycle route.
func lifecycleArgs(app store.App, p *params.Params) (chat.Actor, chat.ConvRef, error) {
	a := chat.Actor{AppID: app.ID}
	var present bool
	if a.UserID, present = p.String("userId"); present && a.UserID == "" {
		return a, chat.ConvRef{}, fmt.Errorf("%w: userId must not be empty (leave it out to act as the app)", chat.ErrInvalid)
	}
	ref := chat.ConvRef{}
	ref.TargetID, _ = p.String("targetId")
	ct, present, err := p.Int("conversationType")
	if err != nil || !present {
		return a, ref, fmt.Errorf("%w: conversationType must be 1 (private) or 2 (group)", chat.ErrInvalid)
	}
	ref.Type = int(min(max(ct, -1), 1000))
	return a, ref, nil
}

func (s *Server) recall(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	a, ref, err := lifecycleArgs(app, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	msgID, _ := p.String("msgId")
	m, err := s.chat.Recall(r.Context(), a, ref, msgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "撤回成功", m)
}

func (s *Server) edit(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	a, ref, err := lifecycleArgs(app, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	content, err := contentParam(p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	msgID, _ := p.String("msgId")
	m, err := s.chat.Edit(r.Context(), a, ref, msgID, content)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "编辑成功", m)
}

func (s *Server) deleteForUser(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	a, ref, err := lifecycleArgs(app, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	msgID, _ := p.String("msgId")
	h, err := s.chat.DeleteForMe(r.Context(), a, ref, msgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "删除成功", h)
}

func (s *Server) clearSession(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	a, ref, err := lifecycleArgs(app, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h, err := s.chat.ClearSession(r.Context(), a, ref)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "清除成功", h)
}

// sendExtras reads a send's optional replyTo, mentions and mentionAll.
func sendExtras(p *params.Params, in *chat.SendInput) error {
	in.ReplyTo, _ = p.String("replyTo")
	if v, isScalar := p.String("mentions"); isScalar && strings.HasPrefix(strings.TrimSpace(v), "[") {
		return fmt.Errorf("%w: mentions must be an array of user ids", chat.ErrInvalid)
	}
	if p.Get("mentions") != nil {
		ids, ok := p.Strings("mentions")
		if !ok {
			return fmt.Errorf("%w: mentions must be an array of user ids", chat.ErrInvalid)
		}
		in.Mentions = ids
	}
	if v, present := p.String("mentionAll"); present {
		switch v {
		case "true", "1":
			in.MentionAll = true
		case "false", "0", "":
		default:
			return fmt.Errorf("%w: mentionAll must be true or false", chat.ErrInvalid)
		}
	}
	return nil
}
