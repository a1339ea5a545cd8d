package engineio

import "sync/atomic"

// CountSlowPaths makes srv count the batches its writer pool hands to a
// session's own goroutine because the socket did not take them whole, and
// returns the count. Call it before srv serves.
func CountSlowPaths(srv *Server) func() uint64 {
	var n atomic.Uint64
	srv.tr.slowPath = func() { n.Add(1) }
	return n.Load
}

// PollerRegistrations counts the websocket readers registered with srv's
// Linux pollers (always 0 elsewhere).
func PollerRegistrations(srv *Server) int { return srv.tr.pollerRegistrations() }

// PollPending reports whether session sid of srv has a GET waiting for
// frames: a test's barrier before it acts on a pending poll.
func PollPending(srv *Server, sid string) bool {
	s := srv.lookup(sid)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getActive
}
