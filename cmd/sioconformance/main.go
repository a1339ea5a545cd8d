// Command sioconformance serves chatd's Socket.IO stack the way the official
// Engine.IO v4 and Socket.IO v5 conformance suites expect their reference
// server to behave, plus a few extra events used by chatd's Node tests.
//
//	/engine.io/  raw Engine.IO: every message is echoed back
//	/socket.io/  Socket.IO: "/" and "/custom" emit "auth" on connect; "/"
//	             echoes "message" as "message-back" and acks
//	             "message-with-ack" with its arguments; "/secure" refuses
//	             clients whose auth or query token is not "secret".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -debug-addr
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/chatd/chatd/internal/socketio"
	"github.com/chatd/chatd/internal/socketio/engineio"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen address (port 0 picks a free one)")
	pingInterval := flag.Duration("ping-interval", 300*time.Millisecond, "Engine.IO ping interval")
	pingTimeout := flag.Duration("ping-timeout", 200*time.Millisecond, "Engine.IO ping timeout")
	connectTimeout := flag.Duration("connect-timeout", time.Second, "Socket.IO connect timeout")
	maxPayload := flag.Int64("max-payload", 1_000_000, "max payload in bytes")
	verbose := flag.Bool("v", false, "debug logging")
	debugAddr := flag.String("debug-addr", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	eio := engineio.NewServer(engineio.Options{
		PingInterval: *pingInterval, PingTimeout: *pingTimeout, MaxPayload: *maxPayload, Logger: log,
		OnConn: func(s *engineio.Conn) { s.SetHandler(echo{}) },
	})
	sio := socketio.NewServer(socketio.Options{
		PingInterval: *pingInterval, PingTimeout: *pingTimeout, MaxPayload: *maxPayload,
		ConnectTimeout: *connectTimeout, Logger: log,
	})
	setup(sio)

	if *debugAddr != "" {
		go func() { log.Info("pprof", "err", http.ListenAndServe(*debugAddr, nil)) }()
	}

	mux := http.NewServeMux()
	mux.Handle("/engine.io/", eio)
	mux.Handle("/socket.io/", sio)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	// The Node tests read the port from this line.
	fmt.Printf("listening on %s\n", ln.Addr())

	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sio.Close()
		eio.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}

type echo struct{}

func (echo) HandleMessage(s *engineio.Conn, data []byte, binary bool) {
	if binary {
		_ = s.Send(engineio.BinaryFrame(data))
		return
	}
	_ = s.Send(engineio.MessageFrame(data))
}

func (echo) HandleClose(*engineio.Conn, string) {}

func authOf(s *socketio.Socket) any {
	if a := s.Handshake().Auth; a != nil {
		return a
	}
	return struct{}{}
}

func setup(sio *socketio.Server) {
	sio.Of("/").OnConnection(func(s *socketio.Socket) {
		_ = s.Emit("auth", authOf(s))
		s.On("message", func(s *socketio.Socket, args []json.RawMessage, _ socketio.AckFunc) {
			_ = s.Emit("message-back", s.BinaryArgs(args)...)
		})
		s.On("message-with-ack", func(s *socketio.Socket, args []json.RawMessage, ack socketio.AckFunc) {
			if ack != nil {
				_ = ack(s.BinaryArgs(args)...)
			}
		})
		s.On("join", func(s *socketio.Socket, args []json.RawMessage, ack socketio.AckFunc) {
			var room string
			if len(args) > 0 && json.Unmarshal(args[0], &room) == nil {
				s.Join(room)
			}
			if ack != nil {
				_ = ack(s.Rooms())
			}
		})
		s.On("broadcast", func(s *socketio.Socket, args []json.RawMessage, ack socketio.AckFunc) {
			var room string
			if len(args) > 0 && json.Unmarshal(args[0], &room) == nil {
				_ = s.To(room).Emit("broadcast", s.BinaryArgs(args[1:])...)
			}
			if ack != nil {
				_ = ack()
			}
		})
	})
	sio.Of("/custom").OnConnection(func(s *socketio.Socket) {
		_ = s.Emit("auth", authOf(s))
	})
	secure := sio.Of("/secure")
	secure.Use(func(h *socketio.Handshake) (any, error) {
		token := h.Query.Get("token")
		if h.Auth != nil {
			var a struct {
				Token string `json:"token"`
			}
			_ = json.Unmarshal(h.Auth, &a)
			token = a.Token
		}
		if token != "secret" {
			return nil, errors.New("unauthorized: bad token")
		}
		return token, nil
	})
	secure.OnConnection(func(s *socketio.Socket) {
		s.On("whoami", func(s *socketio.Socket, _ []json.RawMessage, ack socketio.AckFunc) {
			if ack != nil {
				_ = ack(s.Data())
			}
		})
	})
}
