// Package web serves chatd's browser-facing files: the JS SDK at /sdk/, a
// home page at /, and in demo mode the demo chat app with a few demo-only
// endpoints that hand out tokens of a built-in demo app, so that a browser
// can chat without ever seeing an app secret.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/store"
	sdkjs "github.com/chatd/chatd/sdk/js"
	"github.com/chatd/chatd/web"
)

// DemoAppID is the id of the demo app, the same on every start so that demo
// users, groups and messages survive restarts.
const DemoAppID = "de0de0de0de0de0de0de0de0"

// contentSecurityPolicy keeps the pages to their own scripts and styles, so
// markup that slips into the page cannot run. Images may come from anywhere
// because upload URLs follow -public-url.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob: http: https:; connect-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options configure the web handlers.
type Options struct {
	Demo   bool         // serve the demo chat and its endpoints
	Logger *slog.Logger // nil: discard
}

// Web serves the SDK, the home page and, in demo mode, the demo chat.
type Web struct {
	chat  *chat.Service
	opts  Options
	log   *slog.Logger
	files fs.FS
}

// New returns the web handlers. In demo mode it creates the demo app on the
// first start and reuses it afterwards.
func New(ctx context.Context, svc *chat.Service, opts Options) (*Web, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Web{chat: svc, opts: opts, log: opts.Logger, files: web.FS}
	if opts.Demo {
		if err := svc.EnsureApp(ctx, DemoAppID, "chatd demo", "created by chatd -demo"); err != nil {
			return nil, fmt.Errorf("demo app: %w", err)
		}
		// A start without demo mode locked it: open it again.
		if err := svc.SetAppLocked(ctx, DemoAppID, false); err != nil {
			return nil, fmt.Errorf("demo app: %w", err)
		}
		opts.Logger.Info("demo mode: demo chat at /", "app", DemoAppID)
	} else if err := svc.SetAppLocked(ctx, DemoAppID, true); err != nil && !errors.Is(err, chat.ErrUnknownApp) {
		// Anyone could mint the demo app's tokens while demo mode was on,
		// so none may work once it is off.
		return nil, fmt.Errorf("demo app: %w", err)
	}
	return w, nil
}

// Register adds the routes to mux. Paths it does not claim are left to the
// mux's other handlers (the API's not-found answer).
func (w *Web) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /sdk/chatd.js", w.sdkFile("chatd.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /sdk/chatd.d.ts", w.sdkFile("chatd.d.ts", "text/plain; charset=utf-8"))
	if !w.opts.Demo {
		mux.HandleFunc("GET /{$}", w.file(w.files, "home.html", "text/html; charset=utf-8"))
		return
	}
	mux.HandleFunc("GET /{$}", w.file(w.files, "index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /demo/app.js", w.file(w.files, "demo/app.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /demo/social.js", w.file(w.files, "demo/social.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /demo/style.css", w.file(w.files, "demo/style.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /demo/search.js", w.file(w.files, "demo/search.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("POST /demo/token", w.demoToken)
	mux.HandleFunc("POST /demo/user", w.demoUser)
	mux.HandleFunc("POST /demo/group", w.demoGroup)
	w.registerGroups(mux)
}

// sdkFile serves a file of the JS SDK, which apps on other origins load
// with <script type=module>.
func (w *Web) sdkFile(name, contentType string) http.HandlerFunc {
	serve := w.file(sdkjs.FS, name, contentType)
	return func(rw http.ResponseWriter, r *http.Request) {
		// Public to every origin, unless the CORS handler around every
		// route already reflected an allowed one.
		if rw.Header().Get("Access-Control-Allow-Origin") == "" {
			rw.Header().Set("Access-Control-Allow-Origin", "*")
		}
		serve(rw, r)
	}
}

// file serves one embedded file. Pages, demo assets and the SDK are
// revalidated so that a new binary is picked up at once.
func (w *Web) file(fsys fs.FS, name, contentType string) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			http.Error(rw, "not found", http.StatusNotFound)
			return
		}
		h := rw.Header()
		h.Set("Content-Type", contentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		if strings.HasSuffix(name, ".html") {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("Referrer-Policy", "no-referrer")
		}
		rw.Write(b)
	}
}

// --- demo endpoints ---

type envelope struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	json.NewEncoder(rw).Encode(v)
}

func (w *Web) fail(rw http.ResponseWriter, err error) {
	code, status, msg := chat.Describe(err)
	if status >= 500 {
		w.log.Error("demo request failed", "err", err)
	}
	writeJSON(rw, status, envelope{Status: code, Message: msg})
}

// decode reads a small JSON body.
func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("%w: reading body: %v", chat.ErrInvalid, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: want a JSON body: %v", chat.ErrInvalid, err)
	}
	return nil
}

// userName turns what a person typed into a demo user id: control
// characters dropped, runs of spaces folded, at most 32 characters. The id is
// also the display name.
func userName(s string) (string, error) {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 32 {
		s = strings.TrimSpace(string(r[:32]))
	}
	if s == "" {
		return "", fmt.Errorf("%w: type a user name", chat.ErrInvalid)
	}
	return s, nil
}

// ensureUser creates or refreshes a demo user and returns their token.
func (w *Web) ensureUser(ctx context.Context, name string) (string, error) {
	app, err := w.chat.App(ctx, DemoAppID)
	if err != nil {
		return "", err
	}
	return w.chat.GetToken(ctx, app, name, name, "")
}

// demoToken: {userId} → {appId, userId, token}.
func (w *Web) demoToken(rw http.ResponseWriter, r *http.Request) {
	var in struct {
		UserID string `json:"userId"`
	}
	if err := decode(r, &in); err != nil {
		w.fail(rw, err)
		return
	}
	name, err := userName(in.UserID)
	if err != nil {
		w.fail(rw, err)
		return
	}
	token, err := w.ensureUser(r.Context(), name)
	if err != nil {
		w.fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, envelope{Status: chat.CodeOK, Data: map[string]string{"appId": DemoAppID, "userId": name, "token": token}})
}

// caller authenticates the demo user whose token is in the body.
func (w *Web) caller(ctx context.Context, token string) (store.User, error) {
	return w.chat.Authenticate(ctx, DemoAppID, token)
}

// demoUser: {token, userId} → {userId}; makes sure a user exists so that a
// private chat with them can start before they ever open the demo.
func (w *Web) demoUser(rw http.ResponseWriter, r *http.Request) {
	var in struct {
		Token  string `json:"token"`
		UserID string `json:"userId"`
	}
	if err := decode(r, &in); err != nil {
		w.fail(rw, err)
		return
	}
	if _, err := w.caller(r.Context(), in.Token); err != nil {
		w.fail(rw, err)
		return
	}
	name, err := userName(in.UserID)
	if err != nil {
		w.fail(rw, err)
		return
	}
	if _, err := w.ensureUser(r.Context(), name); err != nil {
		w.fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, envelope{Status: chat.CodeOK, Data: map[string]string{"userId": name}})
}

// demoGroup: {token, name, userIds} → {groupId, name}; the caller is always a member.
func (w *Web) demoGroup(rw http.ResponseWriter, r *http.Request) {
	var in struct {
		Token   string   `json:"token"`
		Name    string   `json:"name"`
		UserIDs []string `json:"userIds"`
	}
	if err := decode(r, &in); err != nil {
		w.fail(rw, err)
		return
	}
	ctx := r.Context()
	me, err := w.caller(ctx, in.Token)
	if err != nil {
		w.fail(rw, err)
		return
	}
	title := strings.Join(strings.Fields(in.Name), " ")
	if title == "" {
		w.fail(rw, fmt.Errorf("%w: name the group", chat.ErrInvalid))
		return
	}
	if len(in.UserIDs) > 50 {
		w.fail(rw, fmt.Errorf("%w: a demo group holds at most 50 members", chat.ErrInvalid))
		return
	}
	members := []string{me.UserID}
	for _, u := range in.UserIDs {
		name, err := userName(u)
		if err != nil {
			continue
		}
		if _, err := w.ensureUser(ctx, name); err != nil {
			w.fail(rw, err)
			return
		}
		members = append(members, name)
	}
	groupID := "g-" + store.NewID()
	if err := w.chat.CreateGroupWithOwner(ctx, chat.CreateGroupInput{AppID: DemoAppID, GroupID: groupID, Name: title, UserIDs: members, OwnerID: me.UserID}); err != nil {
		w.fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, envelope{Status: chat.CodeOK, Data: map[string]string{"groupId": groupID, "name": title}})
}
