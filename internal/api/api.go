// Package api serves node-chat's HTTP API: the signed server routes, the
// admin app route, uploads and downloads, and health checks. Every response
// is node-chat's {status, message, data} envelope.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/chatd/chatd/internal/blob"
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/ratelimit"
	"github.com/chatd/chatd/internal/signature"
	"github.com/chatd/chatd/internal/store"
)

// Options configure the API.
type Options struct {
	AdminKey       string // Bearer key for /app/create; empty: the route answers 403
	PublicURL      string // base of upload URLs; empty: from the request
	MaxBodyBytes   int64  // request bodies other than uploads
	MaxUploadBytes int64  // one uploaded file
	Logger         *slog.Logger
	// AuthFailRate and AuthFailBurst bound failed admin-key and signature
	// checks per client address; a rate of 0 disables the limit.
	AuthFailRate  float64
	AuthFailBurst int
	// Ready reports whether the node can serve (store and broker reachable).
	Ready func(ctx context.Context) error
	// Uploads bound upload rates and the per-app storage quota.
	Uploads UploadLimits
	// BlobsRedirect answers downloads with a redirect to a presigned URL
	// when the blob store can make one.
	BlobsRedirect bool
	// Online answers GET /user/online (presence.go); nil: no such route.
	Online func(appID string, userIDs []string) (any, error)
}

// Defaults of Options, the same as config's (CHATD_MAX_BODY_BYTES,
// CHATD_MAX_UPLOAD_BYTES), for an API built without a config.
const (
	defaultMaxBodyBytes   = 1 << 20  // node-chat's JSON bodies are small; 1 MiB leaves room for a long text
	defaultMaxUploadBytes = 20 << 20 // images, voice notes and documents of a chat
)

// Integer parameters are clamped before they are narrowed to int, so that
// a huge number cannot wrap into a valid one; chat refuses what is still out
// of range, or caps it (a page at the history limit).
const (
	maxEnumParam  = 1000    // messageType, conversationType: far above any defined value
	maxLimitParam = 1 << 20 // limit: far above any history limit
)

// Server holds the API's dependencies.
type Server struct {
	chat     *chat.Service
	verifier *signature.Verifier
	blobs    blob.Store
	// authFails counts failed authentication per client address.
	authFails *ratelimit.Limiter
	opts      Options
	log       *slog.Logger
	counters  uploadCounters
}

// New returns the API over a chat service, a signature verifier and blob storage.
func New(svc *chat.Service, verifier *signature.Verifier, blobs blob.Store, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = defaultMaxBodyBytes
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = defaultMaxUploadBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{chat: svc, verifier: verifier, blobs: blobs, opts: opts, log: log,
		authFails: ratelimit.New(opts.AuthFailRate, opts.AuthFailBurst)}
}

// Register adds the API's routes to mux as method patterns (a GET route
// also answers HEAD, as the mux does). Another method on a route's path gets
// the envelope's 405, not the mux's plain-text one.
func (s *Server) Register(mux *http.ServeMux) {
	var paths []string
	methods := map[string][]string{}
	route := func(pattern string, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		if methods[path] == nil {
			paths = append(paths, path)
		}
		methods[path] = append(methods[path], method)
		if method == http.MethodGet {
			methods[path] = append(methods[path], http.MethodHead)
		}
		mux.Handle(pattern, s.recoverer(h))
	}
	route("POST /app/create", s.createApp)
	route("POST /app/update", s.appUpdate)
	route("POST /user/getToken", s.signed(s.getToken))
	route("POST /user/revokeToken", s.signed(s.revokeToken))
	route("GET /user/sessions", s.signed(s.sessions))
	route("POST /user/sessions", s.signed(s.sessions))
	route("POST /group/create", s.signed(s.groupCreate))
	route("POST /group/join", s.signed(s.groupJoin))
	route("POST /group/remove", s.signed(s.groupRemove))
	route("POST /private/send/message", s.signed(s.sendPrivate))
	route("POST /group/send/message", s.signed(s.sendGroup))
	route("GET /session/messages", s.signed(s.messages))
	route("POST /session/messages", s.signed(s.messages))
	route("POST /file/upload", s.upload)
	route("GET /files/{app}/{name}", s.download)
	route("GET /healthz", s.healthz)
	route("GET /readyz", s.readyz)
	s.registerGroups(route)
	for _, path := range paths {
		mux.Handle(path, methodNotAllowed(methods[path]))
	}
	s.registerLifecycle(route)
	s.registerSearch(route)
	s.registerPresence(route)
	s.registerSettings(route)
	s.registerWebhooks(route)
}

// NotFound answers unknown paths with the envelope.
func NotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, envelope{Status: chat.CodeOther, Message: "no such route: " + r.Method + " " + r.URL.Path})
}

type envelope struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"status":1000,"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(b)
}

func ok(w http.ResponseWriter, message string, data any) {
	writeJSON(w, http.StatusOK, envelope{Status: chat.CodeOK, Message: message, Data: data})
}

// fail writes err as a client error; the mapping lives in chat.Describe.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, status, msg := chat.Describe(err)
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, envelope{Status: code, Message: msg})
}

// methodNotAllowed answers a method a route does not serve.
func methodNotAllowed(methods []string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, envelope{Status: chat.CodeOther, Message: "method " + r.Method + " not allowed; use " + strings.Join(methods, " or ")})
	}
}

// recoverer turns a panic into a 500 envelope and a log line; the process lives on.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeJSON(w, http.StatusInternalServerError, envelope{Status: chat.CodeOther, Message: "internal error"})
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// readParams merges query and body parameters (body wins), from a JSON or
// form-encoded body.
func (s *Server) readParams(w http.ResponseWriter, r *http.Request) (*params.Params, error) {
	q, err := params.FromQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: query: %v", chat.ErrInvalid, err)
	}
	if r.Body == nil || r.ContentLength == 0 {
		return q, nil
	}
	body, err := readBody(w, r, s.opts.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return q, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var b *params.Params
	switch ct {
	case "application/json":
		b, err = params.FromJSON(body)
	case "application/x-www-form-urlencoded", "":
		b, err = params.FromForm(body)
	default:
		return nil, fmt.Errorf("%w: Content-Type %q: send application/json or application/x-www-form-urlencoded", chat.ErrInvalid, ct)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: body: %v", chat.ErrInvalid, err)
	}
	return params.Merge(q, b), nil
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: request body is larger than %d bytes", chat.ErrTooLarge, max)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %v", chat.ErrInvalid, err)
	}
	return b, nil
}

type signedHandler func(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params)

// signed verifies node-chat's request signature before calling h.
func (s *Server) signed(h signedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// An address that keeps sending bad signatures is refused before
		// its body is even read.
		if !s.authBudget(r) {
			w.Header().Set("Retry-After", "1")
			s.fail(w, r, errTooManyFailures)
			return
		}
		p, err := s.readParams(w, r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		appID, _ := p.String("app_id")
		if appID == "" {
			s.fail(w, r, fmt.Errorf("%w: missing parameter app_id", chat.ErrInvalid))
			return
		}
		app, err := s.chat.App(r.Context(), appID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// node-chat's recipe signs no route; an app may require one.
		route := ""
		if app.SignRoute {
			route = r.Method + " " + r.URL.EscapedPath()
		}
		if err := s.verifier.VerifyRoute(r.Context(), p, app.Secret, route); err != nil {
			var se *signature.Error
			if errors.As(err, &se) && se.Code == chat.CodeBadSignature {
				s.failed(r)
			}
			if errors.As(err, &se) && se.Code == chat.CodeBadParam {
				err = fmt.Errorf("%w: %s", chat.ErrInvalid, se.Message)
			} else if errors.As(err, &se) && se.Code == chat.CodeOther {
				// Not the caller's fault: the same request may be retried.
				err = fmt.Errorf("%w: %s", chat.ErrUnavailable, se.Message)
			} else if errors.As(err, &se) {
				err = fmt.Errorf("%w: %s", chat.ErrBadSignature, se.Message)
			} else {
				err = fmt.Errorf("%w: %v", chat.ErrBadSignature, err)
			}
			s.fail(w, r, err)
			return
		}
		h(w, r, app, p)
	}
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	p, isAdmin := s.adminParams(w, r)
	if !isAdmin {
		return
	}
	name, _ := p.String("appName")
	desc, _ := p.String("description")
	signRoute, _, err := boolParam(p, "signRoute")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	app, err := s.chat.CreateApp(r.Context(), name, desc)
	if err == nil && signRoute {
		err = s.chat.SetSignRoute(r.Context(), app.ID, true)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := map[string]any{"appName": app.Name, "appId": app.ID, "appSecret": app.Secret}
	if signRoute {
		data["signRoute"] = true
	}
	ok(w, "创建成功", data)
}

func (s *Server) getToken(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	name, _ := p.String("name")
	avatar, _ := p.String("avatarUri")
	token, err := s.chat.GetToken(r.Context(), app, userID, name, avatar)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", map[string]string{"token": token})
}

// revokeToken voids every token of the user and closes their sockets; the
// next getToken returns a new token. (A chatd addition to node-chat's API.)
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	if err := s.chat.RevokeTokens(r.Context(), app, userID); err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "撤销成功", nil)
}

func (s *Server) sessions(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	list, err := s.chat.Sessions(r.Context(), app.ID, userID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", list)
}

func (s *Server) groupCreate(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	name, _ := p.String("name")
	avatar, _ := p.String("avatarUri")
	ownerID, _ := p.String("ownerId")
	full, setFull, err := boolParam(p, "fullHistory")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	err = s.chat.CreateGroupWithOwner(r.Context(), chat.CreateGroupInput{AppID: app.ID, GroupID: groupID, Name: name, AvatarURI: avatar, UserIDs: userIDs(p), OwnerID: ownerID})
	if err == nil && setFull {
		// The group's history setting: every member sees the whole history.
		err = s.chat.SetGroupHistory(r.Context(), app.ID, groupID, full)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "创建成功", nil)
}

func (s *Server) groupJoin(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	full, _, err := boolParam(p, "fullHistory")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	err = s.chat.AddMembers(r.Context(), backend(app), groupID, userIDs(p))
	if err == nil && full {
		// These members see the whole history, not only from now on.
		err = s.chat.GrantHistory(r.Context(), app.ID, groupID, userIDs(p))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "加入成功", nil)
}

func (s *Server) groupRemove(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	groupID, _ := p.String("groupId")
	if err := s.chat.RemoveMembers(r.Context(), backend(app), groupID, userIDs(p)); err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "移除成功", nil)
}

// userIDs reads userIds as an array (userIds[0]=…, userIds[]=…, JSON array),
// a JSON array inside a string, or one scalar.
func userIDs(p *params.Params) []string { return idList(p, "userIds") }

func (s *Server) sendPrivate(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	s.send(w, r, app, p, s.chat.SendPrivate)
}

func (s *Server) sendGroup(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	s.send(w, r, app, p, s.chat.SendGroup)
}

func (s *Server) send(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params,
	do func(context.Context, chat.SendInput) (chat.SendResult, error)) {
	in := chat.SendInput{AppID: app.ID}
	in.SenderID, _ = p.String("senderUserId")
	in.TargetID, _ = p.String("targetId")
	in.ClientMsgID, _ = p.String("clientMsgId")
	typ, present, err := p.Int("messageType")
	switch {
	case err != nil:
		s.fail(w, r, fmt.Errorf("%w: messageType must be an integer from 1 to 6", chat.ErrInvalid))
		return
	case !present:
		s.fail(w, r, fmt.Errorf("%w: missing messageType", chat.ErrInvalid))
		return
	}
	in.Type = int(min(max(typ, -1), maxEnumParam))
	content, err := contentParam(p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in.Content = content
	if err := sendExtras(p, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := do(r.Context(), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "发送成功", res)
}

// contentParam reads the message content: an object, or a string holding a
// JSON object (what some form-posting clients send).
func contentParam(p *params.Params) (json.RawMessage, error) {
	if v, isScalar := p.String("content"); isScalar {
		if strings.HasPrefix(strings.TrimSpace(v), "{") && json.Valid([]byte(v)) {
			return json.RawMessage(v), nil
		}
		return nil, fmt.Errorf("%w: content must be an object", chat.ErrInvalid)
	}
	raw, present := p.JSON("content")
	if !present {
		return nil, fmt.Errorf("%w: missing content", chat.ErrInvalid)
	}
	return raw, nil
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	targetID, _ := p.String("targetId")
	ct, present, err := p.Int("conversationType")
	if err != nil || !present {
		s.fail(w, r, fmt.Errorf("%w: conversationType must be 1 (private) or 2 (group)", chat.ErrInvalid))
		return
	}
	var page chat.Page
	if n, present, err := p.Int("limit"); err != nil {
		s.fail(w, r, fmt.Errorf("%w: limit must be an integer", chat.ErrInvalid))
		return
	} else if present {
		if n <= 0 {
			s.fail(w, r, fmt.Errorf("%w: limit must be positive", chat.ErrInvalid))
			return
		}
		page.Limit = int(min(n, maxLimitParam))
	}
	page.LastMsgID, _ = p.String("lastmsgId")
	msgs, err := s.chat.HistoryWith(r.Context(), app.ID, userID, targetID, int(min(max(ct, -1), maxEnumParam)), page)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "获取成功", msgs)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ok(w, "ok", nil)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(r.Context()); err != nil {
			s.log.Warn("not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, envelope{Status: chat.CodeOther, Message: "not ready"})
			return
		}
	}
	ok(w, "ready", nil)
}
