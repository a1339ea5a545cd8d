package signature

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/params"
)

// bigBody is a signed-request body of about size bytes whose content is
// text; worst adds what makes every accepted convention differ (an empty
// value, a nested object out of order, numbers JavaScript prints otherwise),
// so that a forged signature is checked against all of them.
func bigBody(size int, worst bool) *params.Params {
	content := map[string]any{"content": strings.Repeat("你好, chat! ", size/16)}
	m := map[string]any{
		"app_id": "0123456789abcdef01234567", "time_stamp": fmt.Sprint(time.Now().UnixMilli()),
		"nonce_str": "n", "senderUserId": "a", "targetId": "b", "messageType": 1,
		"sign": strings.Repeat("0", 32),
	}
	b, _ := json.Marshal(m)
	c, _ := json.Marshal(content)
	body := string(b[:len(b)-1]) + `,"content":` + string(c[:len(c)-1])
	if worst {
		body += `,"z":{"b":"1","a":1.50},"e":""`
	}
	p, err := params.FromJSON([]byte(body + "}}"))
	if err != nil {
		panic(err)
	}
	return p
}

// TestConventionsBound: a plain request's signature is checked against one
// canonical form; none against more than 8.
func TestConventionsBound(t *testing.T) {
	if n := len(conventions(bigBody(1<<10, false))); n != 1 {
		t.Fatalf("a plain request builds %d canonical forms; want 1", n)
	}
	if n := len(conventions(bigBody(1<<10, true))); n != 8 {
		t.Fatalf("the worst request builds %d canonical forms; want 8", n)
	}
}

// BenchmarkRejectForged is the CPU a forged 1 MiB request costs before it is
// refused (app known, timestamp fresh, nonce new, signature wrong): the
// figure SECURITY.md quotes.
func BenchmarkRejectForged(b *testing.B) {
	for _, worst := range []bool{false, true} {
		p := bigBody(1<<20, worst)
		b.Run(fmt.Sprintf("1MiB/worst=%v", worst), func(b *testing.B) {
			v := NewVerifier(0)
			start := cpuTime()
			for b.Loop() {
				if err := v.Verify(context.Background(), p, "secret"); err == nil {
					b.Fatal("a forged request was accepted")
				}
			}
			// CPU time, not wall time: on a busy machine the two differ.
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLargeChecksBounded: large signature checks wait for a slot (a request
// that gives up waiting is told to retry); small ones never wait.
func TestLargeChecksBounded(t *testing.T) {
	v := NewVerifier(0)
	v.MaxLargeChecks = 1
	release, err := v.acquireLarge(context.Background()) // the one slot is busy
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	gaveUp, cancel := context.WithCancel(context.Background())
	cancel()
	var se *Error
	big := bigBody(1<<20, false)
	if err := v.Verify(gaveUp, big, "secret"); !errors.As(err, &se) || se.Code != CodeOther || !strings.Contains(se.Message, "retry later") {
		t.Fatalf("a large check with no slot free: %v; want retry later", err)
	}
	small := signed("secret", time.Now().UnixMilli(), "small", "userId", "u")
	if err := v.Verify(gaveUp, small, "secret"); err != nil {
		t.Fatalf("a small check waited for the large ones: %v", err)
	}
}
