package ratelimit

import (
	"testing"
	"time"
)

func TestBytesDebt(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := NewBytes(100, 1000) // 100 B/s, burst 1000 B
	l.now = c.now
	if ok, _ := l.Admit("u"); !ok {
		t.Fatal("a fresh key is refused")
	}
	// One transfer may overshoot the bucket: it is never cut off.
	l.Charge("u", 1500)
	ok, wait := l.Admit("u")
	if ok || wait != 6*time.Second {
		t.Fatalf("in debt of 500 B at 100 B/s: Admit = %v %v, want refused, retry in 6s", ok, wait)
	}
	if ok, _ := l.Admit("other"); !ok {
		t.Fatal("keys are not independent")
	}
	c.add(5 * time.Second) // debt repaid exactly: still empty
	if ok, _ := l.Admit("u"); ok {
		t.Fatal("admitted with an empty bucket")
	}
	c.add(100 * time.Millisecond)
	if ok, _ := l.Admit("u"); !ok {
		t.Fatal("refused once the bucket refilled")
	}
	// Idle keys are forgotten only once full again: debt is never forgiven.
	l.Charge("d", 5000)
	c.add(20 * time.Second)
	l.Charge("x", 1)
	if ok, _ := l.Admit("d"); ok {
		t.Fatal("debt forgiven by the sweep")
	}
	c.add(time.Hour)
	l.Charge("x", 1)
	if n := l.Len(); n != 1 {
		t.Errorf("%d buckets kept, want 1 (x)", n)
	}
	off := NewBytes(0, 10)
	off.Charge("u", 1<<40)
	if ok, _ := off.Admit("u"); !ok {
		t.Error("a disabled meter refused")
	}
}
