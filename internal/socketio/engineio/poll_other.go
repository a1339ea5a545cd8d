//go:build !linux

package engineio

import "net"

// wsReader is the readiness-driven reader of Linux; elsewhere every
// websocket has a reader goroutine.
type wsReader struct{}

func (*wsReader) stop() {}

// serveWS reads the session's websocket conn, starting with early, the bytes
// that arrived with the upgrade.
func (s *Session) serveWS(conn net.Conn, early []byte) {
	go s.readLoop(conn, &earlyReader{early: early, conn: conn}, false)
}

func pollerRegistrations() int { return 0 }
