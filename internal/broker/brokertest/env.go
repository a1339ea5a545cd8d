package brokertest

import (
	"testing"
)

// LogWriter adapts t.Log to an io.Writer (for slog handlers in tests).
type LogWriter struct{ TB testing.TB }

func (w LogWriter) Write(p []byte) (int, error) {
	w.TB.Helper()
	w.TB.Log(string(p))
	return len(p), nil
}
