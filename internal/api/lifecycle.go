package api

import (
	"context"
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
func (s *Server) registerLifecycle(route func(pattern string, h http.HandlerFunc)) {
	route("POST /message/recall", s.signed(s.lifecycleHandler("撤回成功", s.recall)))
	route("POST /message/edit", s.signed(s.lifecycleHandler("编辑成功", s.edit)))
	route("POST /message/delete", s.signed(s.lifecycleHandler("删除成功", s.deleteForUser)))
	route("POST /session/clear", s.signed(s.lifecycleHandler("清除成功", s.clearSession)))
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

// lifecycleHandler is a lifecycle route: it reads the actor and the
// conversation, then runs do and answers with its result.
func (s *Server) lifecycleHandler(done string, do func(ctx context.Context, a chat.Actor, ref chat.ConvRef, p *params.Params) (any, error)) signedHandler {
	return func(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
		a, ref, err := lifecycleArgs(app, p)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		res, err := do(r.Context(), a, ref, p)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ok(w, done, res)
	}
}

func msgIDParam(p *params.Params) string {
	id, _ := p.String("msgId")
	return id
}

func (s *Server) recall(ctx context.Context, a chat.Actor, ref chat.ConvRef, p *params.Params) (any, error) {
	return s.chat.Recall(ctx, a, ref, msgIDParam(p))
}

func (s *Server) edit(ctx context.Context, a chat.Actor, ref chat.ConvRef, p *params.Params) (any, error) {
	content, err := contentParam(p)
	if err != nil {
		return nil, err
	}
	return s.chat.Edit(ctx, a, ref, msgIDParam(p), content)
}

func (s *Server) deleteForUser(ctx context.Context, a chat.Actor, ref chat.ConvRef, p *params.Params) (any, error) {
	return s.chat.DeleteForMe(ctx, a, ref, msgIDParam(p))
}

func (s *Server) clearSession(ctx context.Context, a chat.Actor, ref chat.ConvRef, _ *params.Params) (any, error) {
	return s.chat.ClearSession(ctx, a, ref)
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
