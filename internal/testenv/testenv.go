// Package testenv gives tests the outside services they need (PostgreSQL,
// Redis, NATS, server binaries). A test whose service is not configured is
// skipped on a developer's machine but fails under CI=true, where every
// service must be there.
package testenv

import (
	"os"
	"testing"
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
