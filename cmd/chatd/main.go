// Command chatd is an instant-messaging server for application developers.
//
//	chatd [serve] [flags]                        run a node (the default)
//	chatd app create --name N [--description D]  register an application
//	chatd version                                print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "chatd:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stderr, getenv)
	case "app":
		if len(args) == 0 || args[0] != "create" {
			return errors.New("usage: chatd app create --name NAME [--description TEXT] [--store DSN]")
		}
		return appCreate(ctx, args[1:], stdout, getenv)
	case "version":
		fmt.Fprintln(stdout, "chatd", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintf(stdout, "usage: chatd [serve] [flags] | chatd app create --name N [--description D] | chatd version\n\nserve flags:\n%s", config.Usage())
		return nil
	}
	return fmt.Errorf("unknown command %q (want serve, app create or version)", cmd)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func serve(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("chatd listening", "addr", ln.Addr().String(), "version", version, "store", storeKind(cfg.Store), "broker", brokerKind(cfg.Broker))
	return srv.Serve(ctx, ln)
}

// storeKind and brokerKind name a backend without printing credentials.
func storeKind(dsn string) string {
	if len(dsn) >= 7 && dsn[:7] == "sqlite:" {
		return dsn
	}
	return "postgres"
}

func brokerKind(url string) string {
	if scheme, _, ok := strings.Cut(url, "://"); ok {
		return scheme
	}
	return url
}

func appCreate(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("chatd app create", flag.ContinueOnError)
	name := fs.String("name", "", "application name (required)")
	desc := fs.String("description", "", "application description")
	dsn := fs.String("store", config.Default().Store, "store (env "+config.EnvName("store")+")")
	if v := getenv(config.EnvName("store")); v != "" {
		*dsn = v
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := server.OpenStore(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	app, err := chat.New(st, chat.Options{}).CreateApp(ctx, *name, *desc)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "appName:   %s\nappId:     %s\nappSecret: %s\n", app.Name, app.ID, app.Secret)
	return nil
}
