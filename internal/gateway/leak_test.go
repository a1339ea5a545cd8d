package gateway

import (
	"os"
	"testing"

	"github.com/chatd/chatd/internal/testenv"
)

// TestMain fails the package if goroutines outlive its tests: every server,
// transport and client a test starts must be stopped by its Close.
func TestMain(m *testing.M) { os.Exit(testenv.MainCheckGoroutines(m)) }
