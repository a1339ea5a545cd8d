package testenv

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// leakWait bounds how long goroutines get to end once their owner is closed:
// connections and timers wind down asynchronously.
const leakWait = 10 * time.Second

// CheckGoroutines fails tb if, once tb and its cleanups registered later have
// finished, more goroutines run than when it was called. Call it first in a
// test that does not run in parallel with others.
func CheckGoroutines(tb testing.TB) {
	tb.Helper()
	base := runtime.NumGoroutine()
	tb.Cleanup(func() {
		if err := waitGoroutines(base); err != nil {
			tb.Error(err)
		}
	})
}

// MainCheckGoroutines runs m's tests and then fails the package if more
// goroutines run than before them: whatever a test started, its Close must
// end. Use it as TestMain's body: os.Exit(testenv.MainCheckGoroutines(m)).
func MainCheckGoroutines(m *testing.M) int {
	base := runtime.NumGoroutine()
	code := m.Run()
	if code != 0 {
		return code
	}
	if err := waitGoroutines(base); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	return 0
}

// waitGoroutines polls until at most base goroutines run, for up to leakWait.
func waitGoroutines(base int) error {
	deadline := time.Now().Add(leakWait)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("%d goroutines still running %v after the test, %d before it:\n%s", n, leakWait, base, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
