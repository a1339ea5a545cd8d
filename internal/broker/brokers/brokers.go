// Package brokers opens the broker named by chatd's CHATD_BROKER setting. It lives
// apart from package broker so that only binaries that want every backend link them.
package brokers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/broker/nats"
	"github.com/chatd/chatd/internal/broker/redis"
)

// Open returns the broker for spec: "" or "memory" (in-process, one node),
// "redis://…" or "rediss://…" (Redis pub/sub), "nats://…" or "tls://…" (core NATS).
// logger may be nil.
func Open(ctx context.Context, spec string, logger *slog.Logger) (broker.Broker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	scheme, _, _ := strings.Cut(spec, "://")
	var b broker.Broker
	var err error
	switch {
	case spec == "" || spec == "memory":
		return broker.NewMemory(), nil
	case scheme == "redis" || scheme == "rediss" || scheme == "unix":
		b, err = redis.Open(ctx, spec, redis.Options{Logger: logger})
	case scheme == "nats" || scheme == "tls":
		b, err = nats.Open(ctx, spec, nats.Options{Logger: logger})
	default:
		return nil, fmt.Errorf("broker: unknown broker %q (want memory, redis://… or nats://…)", redactURL(spec))
	}
	if err != nil {
		// The clients' errors may quote the URL (a parse error does).
		return nil, redactErr(err, spec)
	}
	return b, nil
}

// redactErr hides spec's credentials wherever err's message quotes them;
// errors.Is and errors.As still see err.
func redactErr(err error, spec string) error {
	_, rest, _ := strings.Cut(spec, "://")
	at := strings.LastIndex(rest, "@")
	if at <= 0 {
		return err
	}
	userinfo := rest[:at]
	msg := strings.ReplaceAll(err.Error(), userinfo, "…")
	if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "…")
	}
	if msg == err.Error() {
		return err
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// redactURL drops credentials from a URL-ish string before it is shown.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "…@" + rest[at+1:]
	}
	return scheme + "://" + rest
}
