package brokertest

import (
	"os"
	"testing"
)

// URL returns the server URL in the environment variable env. When it is unset the
// test is skipped, except under CI=true, where a missing server is a failure.
func URL(tb testing.TB, env string) string {
	tb.Helper()
	u := os.Getenv(env)
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is not set (required when CI=true)", env)
		}
		tb.Skipf("%s is not set", env)
	}
	return u
}

// Binary returns path if it is an executable file. Otherwise the test is skipped,
// except under CI=true, where it fails.
func Binary(tb testing.TB, path string) string {
	tb.Helper()
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is required when CI=true: %v", path, err)
		}
		tb.Skipf("%s not available", path)
	}
	return path
}

// LogWriter adapts t.Log to an io.Writer (for slog handlers in tests).
type LogWriter struct{ TB testing.TB }

func (w LogWriter) Write(p []byte) (int, error) {
	w.TB.Helper()
	w.TB.Log(string(p))
	return len(p), nil
}
