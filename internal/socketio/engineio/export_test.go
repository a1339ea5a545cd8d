package engineio

// SlowPaths is the number of batches the writer pool has handed to a
// session's own goroutine because the socket did not take them whole.
func SlowPaths() uint64 { return slowPaths.Load() }

// PollerRegistrations counts the websocket readers registered with the
// Linux pollers (always 0 elsewhere).
var PollerRegistrations = pollerRegistrations
