package store

import "time"

// Backends store times as Unix milliseconds, the resolution node-chat's
// clients see, with 0 for "never" (docs/architecture.md, The store
// contract). These helpers are the one conversion both backends use, so a
// time a write returns equals the time a later read returns.

// UnixMS returns t in stored form: Unix milliseconds, 0 for the zero time.
func UnixMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromUnixMS is the inverse of UnixMS: 0 gives the zero time.
func FromUnixMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// NowOr returns t, or the current time when t is zero, truncated to the
// stored resolution.
func NowOr(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return time.UnixMilli(t.UnixMilli())
}
