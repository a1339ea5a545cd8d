//go:build !linux

package engineio

import "net"

// wsReader is the readiness-driven reader of Linux; elsewhere every
// websocket has a reader goroutine.
type wsReader struct{}

func (*wsReader) stop() {}

// poller is Linux's epoll goroutine; elsewhere there is none.
type poller struct{}

func (*poller) wake()  {}
func (*poller) close() {}

func (t *transport) startPollers() {}

// serveWS reads the session's websocket conn, starting with early, the bytes
// that arrived with the upgrade.
func (s *Conn) serveWS(conn net.Conn, early []byte) {
	go s.readLoop(conn, &earlyReader{early: early, conn: conn}, false)
}

func (t *transport) pollerRegistrations() int { return 0 }
