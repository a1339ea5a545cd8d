package api

import (
	"fmt"
	"net/http"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/store"
)

// Webhook endpoints and deliveries (docs/webhooks.md), signed by the app.
func (s *Server) registerWebhooks(route func(pattern string, h http.HandlerFunc)) {
	route("POST /app/webhooks/set", s.signed(s.webhookSet))
	route("GET /app/webhooks", s.signed(s.webhookList))
	route("POST /app/webhooks/delete", s.signed(s.webhookDelete))
	route("GET /app/webhooks/deliveries", s.signed(s.webhookDeliveries))
	route("POST /app/webhooks/redeliver", s.signed(s.webhookRedeliver))
}

// webhookSet: {url, events[], secret?, timeout_ms?, fail_mode?}. A secret
// chatd generates is in the answer, once.
func (s *Server) webhookSet(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	in := chat.WebhookInput{Events: idList(p, "events")}
	in.URL, _ = p.String("url")
	in.Secret, _ = p.String("secret")
	in.FailMode, _ = p.String("fail_mode")
	t, present, err := p.Int("timeout_ms")
	if err != nil || present && t <= 0 {
		s.fail(w, r, fmt.Errorf("%w: timeout_ms must be a positive integer", chat.ErrInvalid))
		return
	}
	in.TimeoutMS = int(t)
	hook, err := s.chat.SetWebhook(r.Context(), app.ID, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "设置成功", hook)
}

func (s *Server) webhookList(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	list, err := s.chat.Webhooks(r.Context(), app.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", list)
}

// webhookDelete: {id} or {url}.
func (s *Server) webhookDelete(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	id, _ := p.String("id")
	u, _ := p.String("url")
	if err := s.chat.DeleteWebhook(r.Context(), app.ID, id, u); err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "删除成功", nil)
}

// webhookDeliveries: {status?, limit?, cursor?}, newest first.
func (s *Server) webhookDeliveries(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	status, _ := p.String("status")
	cursor, _ := p.String("cursor")
	limit, _, err := p.Int("limit")
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: limit must be an integer", chat.ErrInvalid))
		return
	}
	page, err := s.chat.Deliveries(r.Context(), app.ID, status, int(limit), cursor)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", page)
}

// webhookRedeliver: {id} of a delivery.
func (s *Server) webhookRedeliver(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	id, _ := p.String("id")
	if err := s.chat.Redeliver(r.Context(), app.ID, id); err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "已重新投递", nil)
}
