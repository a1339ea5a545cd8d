// Package testenv gives tests the outside services they need (PostgreSQL,
// Redis, NATS, server binaries). A test whose service is not configured is
// skipped on a developer's machine but fails under CI=true, where every
// service must be there.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// URL returns the service URL in the environment variable env.
func URL(tb testing.TB, env string) string {
	tb.Helper()
	u := os.Getenv(env)
	if u == "" {
		missing(tb, env+" is not set")
	}
	return u
}

// Binary returns path if it is an executable file.
func Binary(tb testing.TB, path string) string {
	tb.Helper()
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		missing(tb, path+" is not available")
	}
	return path
}

func missing(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s (required when CI=true)", why)
	}
	tb.Skip(why)
}

// Server is a service process owned by one test (redis-server,
// nats-server), so that the test can kill and restart it without touching
// the machine's shared services.
type Server struct {
	Port int
	tb   testing.TB
	bin  string
	args []string
	cmd  *exec.Cmd
}

// StartServer runs bin on a free loopback port with args(port), waits until
// it accepts connections, and stops it when the test ends.
func StartServer(tb testing.TB, bin string, args func(port int) []string) *Server {
	tb.Helper()
	port := FreePort(tb)
	s := &Server{Port: port, tb: tb, bin: bin, args: args(port)}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// Start (re)starts the process and waits until its port accepts connections.
func (s *Server) Start() {
	s.tb.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start %s: %v", s.bin, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	WaitFor(s.tb, s.bin+" to accept connections on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// Stop kills the process (an abrupt outage, as a crash would be).
func (s *Server) Stop() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond until it holds, failing the test after 30 seconds.
// The limit is generous: it bounds a hang, it does not time anything.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
