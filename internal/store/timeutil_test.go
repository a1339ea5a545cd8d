package store

import (
	"testing"
	"time"
)

func TestUnixMS(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 678_901_234, time.UTC)
	for _, tc := range []struct {
		name string
		in   time.Time
		want int64
	}{
		{"zero is never", time.Time{}, 0},
		{"milliseconds, rest dropped", at, at.UnixMilli()},
		{"the epoch itself", time.UnixMilli(0), 0},
	} {
		if got := UnixMS(tc.in); got != tc.want {
			t.Errorf("%s: UnixMS = %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := FromUnixMS(0); !got.IsZero() {
		t.Errorf("FromUnixMS(0) = %v, want the zero time", got)
	}
	if got := FromUnixMS(UnixMS(at)); !got.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("round trip = %v, want %v", got, at.Truncate(time.Millisecond))
	}
}

func TestNowOr(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 678_901_234, time.UTC)
	if got := NowOr(at); !got.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("NowOr(t) = %v, want t at millisecond resolution %v", got, at.Truncate(time.Millisecond))
	}
	before := time.Now().Truncate(time.Millisecond)
	got := NowOr(time.Time{})
	if got.Before(before) || got.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("NowOr(zero) = %v, want now (after %v) at millisecond resolution", got, before)
	}
}
