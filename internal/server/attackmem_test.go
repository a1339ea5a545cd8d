package server_test

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// TestMeasureAttackMemory measures what the transport attacks cost chatd per
// connection, for SECURITY.md; it runs only with CHATD_MEASURE=1.
func TestMeasureAttackMemory(t *testing.T) {
	if os.Getenv("CHATD_MEASURE") == "" {
		t.Skip("set CHATD_MEASURE=1 to measure")
	}
	const conns = 300
	n := startNode(t, func(c *config.Config) { c.HandshakeRateIP = 0; c.MaxConnsPerIP = 0; c.MaxUserSockets = 0 })
	tok := n.token("m")
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	measure := func(name string, open func() net.Conn) {
		base := heap()
		var held []net.Conn
		for range conns {
			held = append(held, open())
		}
		// Let the server read what they sent.
		time.Sleep(time.Second)
		after := heap()
		t.Logf("%s: %d connections, %.1f KiB heap each", name, conns, float64(int64(after)-int64(base))/conns/1024)
		for _, c := range held {
			c.Close()
		}
		time.Sleep(500 * time.Millisecond) // the server sees them close
	}
	ctx := context.Background()
	// An authenticated websocket that announces a 1 MB frame and sends 64
	// KiB of it (unauthenticated, it is closed at once: 16 KiB limit).
	measure("authenticated websocket, 1 MB frame announced, 64 KiB sent", func() net.Conn {
		c, err := sioclient.DialWS(ctx, n.ts.URL, 4, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Send(`40{"token":"` + tok + `","appId":"` + n.app.AppID + `"}`)
		if ack, err := c.NextText(); err != nil || !strings.HasPrefix(ack, "40{") {
			t.Fatalf("connect: %q %v", ack, err)
		}
		hdr := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
		binary.BigEndian.PutUint64(hdr[2:], 999_000)
		c.Conn.Write(append(hdr, make([]byte, 64<<10)...))
		return c.Conn
	})
	// A silent polling upgrade.
	measure("silent websocket upgrade of a polling session", func() net.Conn {
		p, _, err := sioclient.DialPolling(ctx, n.ts.URL, 4, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.HTTP.CloseIdleConnections()
		return rawUpgrade(t, n.ts.URL, p.SID, 4)
	})
	// A POST announcing a 1 MiB body, sending 64 KiB.
	host := strings.TrimPrefix(n.ts.URL, "http://")
	measure("POST, 1 MiB body announced, 64 KiB sent", func() net.Conn {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("POST /user/getToken HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048000\r\n\r\n"))
		c.Write(make([]byte, 64<<10))
		return c
	})
}
