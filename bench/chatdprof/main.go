// Command chatdprof is chatd's serve command with net/http/pprof on a second
// listener (CHATD_PPROF_ADDR, default 127.0.0.1:6060), for profiling chatd
// under chatbench's load:
//
//	go build -o bin/chatdprof ./bench/chatdprof
//	chatbench -chatd bin/chatdprof -only p2p &
//	go tool pprof -seconds 5 http://127.0.0.1:6060/debug/pprof/profile
//
// With CHATD_PPROF_CONTENTION=1 the mutex and block profiles are sampled too.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on the default mux
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "chatdprof:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context) error {
	cfg, err := config.Load(os.Args[1:], os.Getenv)
	if err != nil {
		return err
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	pprofAddr := os.Getenv("CHATD_PPROF_ADDR")
	if pprofAddr == "" {
		pprofAddr = "127.0.0.1:6060"
	}
	// CHATD_PPROF_CONTENTION=1 also samples lock contention and blocking
	// (/debug/pprof/mutex and /debug/pprof/block; docs/soak.md, Under attack).
	if os.Getenv("CHATD_PPROF_CONTENTION") == "1" {
		runtime.SetMutexProfileFraction(10)
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	}
	go func() { log.Warn("pprof stopped", "err", http.ListenAndServe(pprofAddr, nil)) }()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	return srv.Serve(ctx, ln)
}
