// Package config holds chatd's settings: documented defaults, overridden by
// CHATD_* environment variables, overridden in turn by command-line flags.
package config

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of a chatd node. The zero value is not useful; start
// from Default.
type Config struct {
	Addr      string // listen address
	Store     string // sqlite:PATH or postgres://...
	Broker    string // memory, redis://..., nats://...
	Blobs     string // file:DIR or s3://BUCKET/PREFIX?endpoint=…&region=…&path_style=…
	AdminKey  string // guards /app/create; empty disables it
	PublicURL string // base URL used in upload fullUrl; empty: derived from the request
	Demo      bool   // create a demo app and serve the demo chat
	Origins   string // comma-separated Origin allow-list for CORS and sockets; empty: any
	LogLevel  string // debug, info, warn, error

	MaxBodyBytes    int64         // any HTTP request body except uploads
	MaxUploadBytes  int64         // /file/upload file size
	MaxContentBytes int           // a message's content, as JSON
	HistoryLimit    int           // cap on history page size
	MaxGroupSize    int           // members per group
	MaxUserSockets  int           // sockets one user may hold on one node; 0: unlimited
	SignatureWindow time.Duration // accepted clock skew of signed requests
	ShutdownTimeout time.Duration // graceful shutdown budget
	TokenTTL        time.Duration // user token lifetime; 0: until revoked

	// Abuse limits (events per second and bursts); a rate of 0 disables one.
	UserSendRate     float64
	UserSendBurst    int
	AppSendRate      float64
	AppSendBurst     int
	HandshakeRateIP  float64
	HandshakeBurstIP int
	UserEventRate    float64 // socket events per second per user (every event)
	UserEventBurst   int
	AuthFailRateIP   float64 // failed admin-key and signature checks per second per IP
	AuthFailBurstIP  int

	// Message lifecycle: how long a sender may recall or edit a message
	// (0: never), and how many different emoji one message may carry.
	RecallWindow time.Duration
	EditWindow   time.Duration
	MaxReactions int

	// Object storage and upload limits.
	BlobsRedirect   bool    // downloads answer 302 to a presigned URL (s3: only)
	UserUploadRate  float64 // bytes per second one user may upload; 0: unlimited
	UserUploadBurst int64   // bytes one user may upload at once before the rate applies
	AppUploadRate   float64 // bytes per second one app's users may upload together; 0: unlimited
	AppUploadBurst  int64
	UserUploadFiles int   // uploads per minute per user; 0: unlimited
	AppUploadFiles  int   // uploads per minute per app; 0: unlimited
	AppStorageQuota int64 // bytes of uploads an app may keep; 0: unlimited
	// Transport limits (SECURITY.md, Limits).
	MaxConnsPerIP        int           // connections open at once from one IPv4 address or IPv6 /64; 0: unlimited
	MaxSocketBufferBytes int64         // pending output of one socket; over it the socket is disconnected
	SocketConnectTimeout time.Duration // a socket connection must be authenticated by then
	HTTPReadTimeout      time.Duration // a request body must arrive within it (uploads: no gap longer)
	HTTPWriteTimeout     time.Duration // an answer must be written within it (downloads: each write)
	HTTPIdleTimeout      time.Duration // an idle keep-alive connection is closed after it
	UploadMinRate        int64         // bytes/s an upload must average after the read timeout

	// Groups over the socket.
	GroupSocketManage string  // apps (comma-separated ids, or *) whose owners/admins manage groups over the socket
	GroupEventRate    float64 // group and profile socket events per second per user
	GroupEventBurst   int
	// Typing, receipts and presence (docs/socket-protocol.md).
	TypingMaxGroup   int           // typing is not pushed in conversations of more members
	ReceiptsMaxGroup int           // message-readers lists readers up to this many members, counts above
	PresenceGrace    time.Duration // a user with no socket left is announced offline after it
	PresenceMaxSubs  int           // users one socket may watch with presence-subscribe
	// Webhooks (docs/webhooks.md).
	WebhookAllowPrivate bool          // endpoints may be loopback, private or link-local addresses
	WebhookRetryBase    time.Duration // first retry delay; doubles at each attempt, at most an hour
	WebhookRetryFor     time.Duration // a delivery failing this long is marked failed and its endpoint paused
	WebhookTimeout      time.Duration // one delivery attempt
	WebhookConcurrency  int           // requests in flight per endpoint and node
	WebhookPoll         time.Duration // how often each node reads the outbox for events written elsewhere or due again
	// Bytes of socket answers (acks) per user: history, sync, session
	// lists… (docs/soak.md, Under attack).
	UserAnswerRate  int64 // bytes per second
	UserAnswerBurst int64
}

// Default returns the settings that work with zero set-up: one process, a
// SQLite file and uploads under ./data.
func Default() Config {
	return Config{
		Addr:            ":3000",
		Store:           "sqlite:./data/chatd.db",
		Broker:          "memory",
		Blobs:           "file:./data/files",
		LogLevel:        "info",
		MaxBodyBytes:    1 << 20,
		MaxUploadBytes:  20 << 20,
		MaxContentBytes: 64 << 10,
		HistoryLimit:    100,
		MaxGroupSize:    10000,
		MaxUserSockets:  100,
		SignatureWindow: 5 * time.Minute,
		ShutdownTimeout: 15 * time.Second,

		UserSendRate:     20,
		UserSendBurst:    50,
		AppSendRate:      5000,
		AppSendBurst:     10000,
		HandshakeRateIP:  20,
		HandshakeBurstIP: 200,
		UserEventRate:    50,
		UserEventBurst:   300,
		AuthFailRateIP:   2,
		AuthFailBurstIP:  30,

		RecallWindow:         2 * time.Minute,
		EditWindow:           24 * time.Hour,
		MaxReactions:         20,
		UserUploadRate:       1 << 20,
		UserUploadBurst:      64 << 20,
		AppUploadRate:        64 << 20,
		AppUploadBurst:       1 << 30,
		UserUploadFiles:      60,
		AppUploadFiles:       6000,
		MaxConnsPerIP:        1000,
		MaxSocketBufferBytes: 4 << 20,
		SocketConnectTimeout: 10 * time.Second,
		HTTPReadTimeout:      20 * time.Second,
		HTTPWriteTimeout:     30 * time.Second,
		HTTPIdleTimeout:      60 * time.Second,
		UploadMinRate:        4 << 10,
		GroupEventRate:       5,
		GroupEventBurst:      20,

		TypingMaxGroup:   100,
		ReceiptsMaxGroup: 100,
		PresenceGrace:    5 * time.Second,
		PresenceMaxSubs:  500,

		WebhookRetryBase:   10 * time.Second,
		WebhookRetryFor:    24 * time.Hour,
		WebhookTimeout:     10 * time.Second,
		WebhookConcurrency: 4,
		WebhookPoll:        time.Second,
		UserAnswerRate:     1 << 20,
		UserAnswerBurst:    16 << 20,
	}
}

// setting ties one field to its environment variable and flag.
type setting struct {
	name  string // flag name; env is CHATD_ + upper(name) with - → _
	usage string
	ptr   any
}

func (c *Config) settings() []setting {
	return []setting{
		{"addr", "listen address", &c.Addr},
		{"store", "store: sqlite:PATH or postgres://USER@HOST/DB", &c.Store},
		{"broker", "cross-node broker: memory, redis://HOST:PORT or nats://HOST:PORT", &c.Broker},
		{"blobs", "upload storage: file:DIR or s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true|false (credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)", &c.Blobs},
		{"admin-key", "bearer key that guards POST /app/create (empty: disabled)", &c.AdminKey},
		{"public-url", "external base URL for upload links (empty: from the request)", &c.PublicURL},
		{"demo", "create a demo app and serve the demo chat at /", &c.Demo},
		{"allowed-origins", "comma-separated browser origins allowed to call the HTTP API and open sockets (empty: any)", &c.Origins},
		{"log-level", "debug, info, warn or error", &c.LogLevel},
		{"max-body-bytes", "largest HTTP request body (uploads excepted)", &c.MaxBodyBytes},
		{"max-upload-bytes", "largest uploaded file", &c.MaxUploadBytes},
		{"max-content-bytes", "largest message content (JSON bytes)", &c.MaxContentBytes},
		{"history-limit", "largest history page", &c.HistoryLimit},
		{"max-group-size", "most members in a group", &c.MaxGroupSize},
		{"max-user-sockets", "most sockets one user may hold on one node (0: unlimited)", &c.MaxUserSockets},
		{"signature-window", "accepted clock skew of signed requests", &c.SignatureWindow},
		{"shutdown-timeout", "time allowed for in-flight work at shutdown", &c.ShutdownTimeout},
		{"token-ttl", "user token lifetime (0: until revoked)", &c.TokenTTL},
		{"user-send-rate", "messages per second one user may send (0: unlimited)", &c.UserSendRate},
		{"user-send-burst", "burst of messages one user may send", &c.UserSendBurst},
		{"app-send-rate", "messages per second one app may send (0: unlimited)", &c.AppSendRate},
		{"app-send-burst", "burst of messages one app may send", &c.AppSendBurst},
		{"handshake-rate-ip", "new socket sessions per second from one IP (0: unlimited)", &c.HandshakeRateIP},
		{"handshake-burst-ip", "burst of new socket sessions from one IP", &c.HandshakeBurstIP},
		{"user-event-rate", "socket events per second one user may emit, all events counted (0: unlimited)", &c.UserEventRate},
		{"user-event-burst", "burst of socket events one user may emit", &c.UserEventBurst},
		{"auth-fail-rate-ip", "failed admin-key and signature checks per second from one IP (0: unlimited)", &c.AuthFailRateIP},
		{"auth-fail-burst-ip", "burst of failed admin-key and signature checks from one IP", &c.AuthFailBurstIP},
		{"recall-window", "how long a sender may recall a message (0: never; the app may always)", &c.RecallWindow},
		{"edit-window", "how long a sender may edit a text or custom message (0: never)", &c.EditWindow},
		{"max-reactions", "most different emoji one message may carry", &c.MaxReactions},
		{"blobs-redirect", "downloads answer 302 to a short-lived presigned URL of the object store (s3: only)", &c.BlobsRedirect},
		{"user-upload-rate", "bytes per second one user may upload (0: unlimited)", &c.UserUploadRate},
		{"user-upload-burst", "bytes one user may upload at once before user-upload-rate applies", &c.UserUploadBurst},
		{"app-upload-rate", "bytes per second one app's users may upload together (0: unlimited)", &c.AppUploadRate},
		{"app-upload-burst", "bytes one app may upload at once before app-upload-rate applies", &c.AppUploadBurst},
		{"user-upload-files", "files per minute one user may upload (0: unlimited)", &c.UserUploadFiles},
		{"app-upload-files", "files per minute one app's users may upload together (0: unlimited)", &c.AppUploadFiles},
		{"app-storage-quota", "bytes of uploaded files one app may keep (0: unlimited)", &c.AppStorageQuota},
		{"max-conns-per-ip", "connections open at once from one IPv4 address or IPv6 /64 (0: unlimited)", &c.MaxConnsPerIP},
		{"max-socket-buffer-bytes", "pending output of one socket in bytes; over it the socket is disconnected", &c.MaxSocketBufferBytes},
		{"socket-connect-timeout", "time a socket connection has to upgrade and authenticate", &c.SocketConnectTimeout},
		{"http-read-timeout", "time a request body has to arrive (uploads: longest gap)", &c.HTTPReadTimeout},
		{"http-write-timeout", "time an answer has to be written (downloads: each write)", &c.HTTPWriteTimeout},
		{"http-idle-timeout", "time an idle keep-alive connection stays open", &c.HTTPIdleTimeout},
		{"upload-min-rate", "bytes per second an upload must average after the read timeout (0: no minimum)", &c.UploadMinRate},
		{"group-socket-manage", "apps (comma-separated ids, or *) whose group owners and admins may add, remove and update over the socket (empty: none)", &c.GroupSocketManage},
		{"group-event-rate", "group and profile socket events per second one user may make (0: unlimited)", &c.GroupEventRate},
		{"group-event-burst", "burst of group and profile socket events of one user", &c.GroupEventBurst},
		{"typing-max-group", "typing indicators are not pushed in conversations of more members", &c.TypingMaxGroup},
		{"presence-grace", "time a user with no socket left stays online (no flapping when a phone switches networks)", &c.PresenceGrace},
		{"presence-max-subscriptions", "users one socket may watch with presence-subscribe", &c.PresenceMaxSubs},
		{"user-answer-rate", "bytes per second of socket answers (history, sync, session lists…) one user may ask for (0: unlimited)", &c.UserAnswerRate},
		{"user-answer-burst", "bytes of socket answers one user may ask for at once before user-answer-rate applies", &c.UserAnswerBurst},
		{"receipts-max-group", "message-readers lists the readers in conversations up to this many members, counts only above", &c.ReceiptsMaxGroup},
		{"webhook-allow-private", "webhook endpoints may be loopback, private or link-local addresses (checked when connecting)", &c.WebhookAllowPrivate},
		{"webhook-retry-base", "first webhook retry delay; doubles at each attempt up to an hour, with jitter", &c.WebhookRetryBase},
		{"webhook-retry-for", "a webhook delivery failing this long is marked failed and its endpoint paused", &c.WebhookRetryFor},
		{"webhook-timeout", "time allowed for one webhook delivery attempt", &c.WebhookTimeout},
		{"webhook-concurrency", "webhook requests in flight per endpoint and node", &c.WebhookConcurrency},
		{"webhook-poll", "how often each node reads the webhook outbox for events due again or written by other nodes", &c.WebhookPoll},
	}
}

// EnvName is the environment variable of a flag name.
func EnvName(flagName string) string {
	return "CHATD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load builds the configuration: defaults, then the environment (getenv,
// normally os.Getenv), then args parsed as flags. A bad value is an error
// naming its variable or flag.
func Load(args []string, getenv func(string) string) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("chatd serve", flag.ContinueOnError)
	for _, s := range c.settings() {
		v, want := valueOf(s.name, s.ptr)
		if env := getenv(EnvName(s.name)); env != "" {
			if err := v.Set(env); err != nil {
				return c, fmt.Errorf("%s: want %s, got %q", EnvName(s.name), want, env)
			}
		}
		fs.Var(v, s.name, s.usage+" (env "+EnvName(s.name)+")")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.Validate()
}

// valueOf returns the flag.Value of a setting's field (the flag package's
// own, so that help shows its type) and what a valid value looks like: the
// one place that knows each kind of setting.
func valueOf(name string, ptr any) (v flag.Value, want string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	switch p := ptr.(type) {
	case *string:
		fs.StringVar(p, name, *p, "")
	case *bool:
		fs.BoolVar(p, name, *p, "")
		want = "true or false"
	case *int:
		fs.IntVar(p, name, *p, "")
		want = "an integer"
	case *int64:
		fs.Int64Var(p, name, *p, "")
		want = "an integer"
	case *time.Duration:
		fs.DurationVar(p, name, *p, "")
		want = "a duration such as 5m"
	case *float64:
		fs.Float64Var(p, name, *p, "")
		want = "a number"
	default:
		panic(fmt.Sprintf("config: setting -%s has unsupported type %T", name, ptr))
	}
	return fs.Lookup(name).Value, want
}

// Validate reports every setting that cannot work, together.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, fmt.Errorf("%s is empty", named("addr")))
	}
	if !strings.HasPrefix(c.Store, "sqlite:") && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		// The value is not echoed: it may hold a password.
		errs = append(errs, fmt.Errorf("%s: want postgres://... or sqlite:PATH", named("store")))
	}
	if scheme, _, _ := strings.Cut(c.Broker, "://"); c.Broker != "memory" && !slices.Contains([]string{"redis", "rediss", "unix", "nats", "tls"}, scheme) {
		errs = append(errs, fmt.Errorf("%s: want redis://..., rediss://..., nats://..., tls://... or memory", named("broker")))
	}
	if err := validBlobs(c.Blobs); err != nil {
		errs = append(errs, err)
	}
	if c.UserUploadRate < 0 || c.AppUploadRate < 0 || c.UserUploadFiles < 0 || c.AppUploadFiles < 0 || c.AppStorageQuota < 0 ||
		c.UserUploadBurst < 0 || c.AppUploadBurst < 0 {
		errs = append(errs, errors.New("upload rates, bursts and file counts (-user-upload-*, -app-upload-*) and -app-storage-quota must not be negative"))
	}
	if c.BlobsRedirect && !strings.HasPrefix(c.Blobs, "s3://") {
		errs = append(errs, fmt.Errorf("%s needs s3:// blobs", named("blobs-redirect")))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("%s %q: want debug, info, warn or error", named("log-level"), c.LogLevel))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("%s must be at least 1024", named("max-body-bytes")))
	}
	if c.MaxUploadBytes < 1 {
		errs = append(errs, fmt.Errorf("%s must be positive", named("max-upload-bytes")))
	}
	if c.MaxContentBytes < 16 {
		errs = append(errs, fmt.Errorf("%s must be at least 16", named("max-content-bytes")))
	}
	if c.HistoryLimit < 1 {
		errs = append(errs, fmt.Errorf("%s must be positive", named("history-limit")))
	}
	if c.MaxGroupSize < 2 {
		errs = append(errs, fmt.Errorf("%s must be at least 2", named("max-group-size")))
	}
	if c.TokenTTL != 0 && c.TokenTTL < time.Minute {
		errs = append(errs, fmt.Errorf("%s must be 0 or at least 1m", named("token-ttl")))
	}
	for _, v := range []struct {
		name string
		n    float64
	}{{"user-send-rate", c.UserSendRate}, {"app-send-rate", c.AppSendRate},
		{"handshake-rate-ip", c.HandshakeRateIP}, {"max-user-sockets", float64(c.MaxUserSockets)},
		{"user-event-rate", c.UserEventRate}, {"auth-fail-rate-ip", c.AuthFailRateIP},
		{"group-event-rate", c.GroupEventRate}} {
		if v.n < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", named(v.name)))
		}
	}
	if c.RecallWindow < 0 || c.EditWindow < 0 || c.MaxReactions < 1 {
		errs = append(errs, errors.New("recall-window and edit-window must not be negative, max-reactions must be positive"))
	}
	if c.SignatureWindow < time.Second {
		errs = append(errs, fmt.Errorf("%s must be at least 1s", named("signature-window")))
	}
	if c.MaxConnsPerIP < 0 || c.UploadMinRate < 0 {
		errs = append(errs, fmt.Errorf("%s and %s must not be negative", named("max-conns-per-ip"), named("upload-min-rate")))
	}
	if c.MaxSocketBufferBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("%s must be at least 65536", named("max-socket-buffer-bytes")))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"socket-connect-timeout", c.SocketConnectTimeout}, {"http-read-timeout", c.HTTPReadTimeout}, {"http-write-timeout", c.HTTPWriteTimeout}, {"http-idle-timeout", c.HTTPIdleTimeout}} {
		if d.v < 100*time.Millisecond {
			errs = append(errs, fmt.Errorf("%s must be at least 100ms", named(d.name)))
		}
	}
	return errors.Join(errs...)
}

// named names a setting in an error: its flag and its variable.
func named(name string) string { return "-" + name + " (" + EnvName(name) + ")" }

// validBlobs checks the shape of a CHATD_BLOBS value; the S3 URL's
// parameters and credentials are checked when the store opens.
func validBlobs(b string) error {
	switch {
	case strings.HasPrefix(b, "file:") && len(b) > len("file:"):
		return nil
	case strings.HasPrefix(b, "s3://") && len(b) > len("s3://") && b[len("s3://")] != '/':
		return nil
	}
	return fmt.Errorf("%s %q: want file:DIR or s3://BUCKET/PREFIX?endpoint=…&region=…&path_style=true|false", named("blobs"), b)
}

// AllowedOrigins is the Origin allow-list as a slice.
func (c Config) AllowedOrigins() []string {
	var out []string
	for _, o := range strings.Split(c.Origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// Usage writes the flag list with defaults and environment names.
func Usage() string {
	c := Default()
	var b strings.Builder
	for _, s := range c.settings() {
		v, _ := valueOf(s.name, s.ptr)
		def := v.String()
		if _, ok := s.ptr.(*string); ok {
			def = strconv.Quote(def)
		}
		fmt.Fprintf(&b, "  -%s (env %s)\n    \t%s (default %s)\n", s.name, EnvName(s.name), s.usage, def)
	}
	return b.String()
}
