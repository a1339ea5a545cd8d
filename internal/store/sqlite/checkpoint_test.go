package sqlite

import (
	"bytes"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCheckpointErrorsLogged: a failed WAL checkpoint is logged (once while
// it keeps failing within a minute), and so is the recovery.
func TestCheckpointErrorsLogged(t *testing.T) {
	s := openTemp(t)
	var out syncBuffer
	s.SetLogger(slog.New(slog.NewTextHandler(&out, nil)))
	broken, err := sql.Open(driverName, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	broken.Close()
	s.checkpoint(broken, "test")
	s.checkpoint(broken, "test")
	if got := strings.Count(out.String(), "WAL checkpoint failed"); got != 1 {
		t.Fatalf("%d failure lines for two failures within a minute; want 1:\n%s", got, out.String())
	}
	if !strings.Contains(out.String(), "database is closed") {
		t.Fatalf("the failure line lacks its cause:\n%s", out.String())
	}
	s.checkpoint(s.c, "test")
	if !strings.Contains(out.String(), "checkpoints work again") {
		t.Fatalf("no recovery line:\n%s", out.String())
	}
}
