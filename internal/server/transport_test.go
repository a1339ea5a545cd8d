package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// These tests reproduce, against a real chatd, the attacks on its transport
// that SECURITY.md (Limits) bounds: each fails without its limit.

// closedWithin reports whether the server closes c within d, reading (and
// discarding) whatever it sends until then.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// rawUpgrade opens a websocket upgrade of an existing polling session and
// returns the connection once the server accepted it, sending nothing more.
func rawUpgrade(t *testing.T, base, sid string, proto int) net.Conn {
	t.Helper()
	u, _ := url.Parse(sioclient.URL(base, proto, "websocket", sid, nil))
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", u.RequestURI(), u.Host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return c
}

// Item: silent websocket upgrades stayed open for ever, outside any limit.
func TestSilentUpgradeIsClosed(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.SocketConnectTimeout = 300 * time.Millisecond })
	ctx := context.Background()
	for _, proto := range []int{3, 4} {
		p, _, err := sioclient.DialPolling(ctx, n.ts.URL, proto, url.Values{"token": {n.token("u1")}, "appId": {n.app.AppID}})
		if err != nil {
			t.Fatal(err)
		}
		c := rawUpgrade(t, n.ts.URL, p.SID, proto)
		if !closedWithin(c, 5*time.Second) {
			t.Fatalf("EIO%d: a silent upgrade connection is still open after the connect timeout", proto)
		}
		c.Close()
	}
}

// Item: upgrades with a sid skipped the per-IP handshake limit.
func TestUpgradesCountAgainstHandshakeLimit(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.HandshakeRateIP = 0.001; c.HandshakeBurstIP = 2 })
	ctx := context.Background()
	p, _, err := sioclient.DialPolling(ctx, n.ts.URL, 4, nil) // takes one token
	if err != nil {
		t.Fatal(err)
	}
	c := rawUpgrade(t, n.ts.URL, p.SID, 4) // the second
	defer c.Close()
	_, err = sioclient.DialRaw(ctx, sioclient.URL(n.ts.URL, 4, "websocket", p.SID, nil), 4, nil)
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("third upgrade from the address: %v, want 429", err)
	}
}

// Item: connections per address were unbounded.
func TestConnectionsPerAddressCapped(t *testing.T) {
	const max = 8
	n := startNode(t, func(c *config.Config) { c.MaxConnsPerIP = max })
	host := strings.TrimPrefix(n.ts.URL, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// A websocket counts like any connection.
	p, _, err := sioclient.DialPolling(context.Background(), n.ts.URL, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, rawUpgrade(t, n.ts.URL, p.SID, 4))
	p.HTTP.CloseIdleConnections()
	// Keep-alive connections, each proven accepted by an answer, until one
	// is refused.
	get := func() (net.Conn, int) {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatal(err)
		}
		resp.Body.Close()
		return c, resp.StatusCode
	}
	accepted := 0
	for {
		c, code := get()
		if code == http.StatusTooManyRequests {
			c.Close()
			break
		}
		held = append(held, c)
		if accepted++; accepted > 3*max {
			t.Fatalf("%d connections open from one address, limit %d", accepted+1, max)
		}
	}
	// The polling client's connection may still be counted while it closes.
	if total := accepted + 1; total != max && total != max-1 {
		t.Fatalf("refused after %d connections, limit %d", total, max)
	}
	held[len(held)-1].Close()
	held = held[:len(held)-1]
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, code := get()
		c.Close()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still refused after closing a connection")
		}
		time.Sleep(10 * time.Millisecond) // the server sees the close asynchronously
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(n.metrics(), "chatd_http_conns_refused_total "); {
		if time.Now().After(deadline) {
			t.Fatal("no refused-connections metric")
		}
		time.Sleep(10 * time.Millisecond) // the server sees the closes asynchronously
	}
}

func (n *node) metrics() string {
	n.t.Helper()
	resp, err := http.Get(n.ts.URL + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Item: an EIO3 session refused on "/" (bad token) lived as long as it pinged.
func TestUnauthenticatedV3SessionExpires(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.SocketConnectTimeout = 300 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, first, err := sioclient.DialPolling(ctx, n.ts.URL, 3, url.Values{"token": {"forged"}, "appId": {n.app.AppID}})
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, pk := range first {
		refused = refused || strings.HasPrefix(string(pk.Data), "4")
	}
	for {
		if ctx.Err() != nil {
			t.Fatal("the refused EIO3 session is still open while it pings")
		}
		if code, err := p.Post(ctx, p.Encode("2")); err != nil || code != http.StatusOK {
			break // unknown sid: closed
		}
		code, pkts, err := p.Get(ctx)
		if err != nil || code != http.StatusOK {
			break
		}
		closed := false
		for _, pk := range pkts {
			refused = refused || (pk.Type == 4 && strings.HasPrefix(string(pk.Data), "4"))
			closed = closed || pk.Type == 1
		}
		if closed {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the refused EIO3 session is still open while it pings")
	}
	if !refused {
		t.Fatal("the client never got the error packet")
	}
}

// Item: incomplete binary attachments were parked without limit.
func TestIncompleteAttachmentsBounded(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.SocketConnectTimeout = 300 * time.Millisecond })
	ctx := context.Background()
	// Not connected to the namespace: refused at once.
	c, err := sioclient.DialWS(ctx, n.ts.URL, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(`451-["send-private-message",{"_placeholder":true,"num":0}]`); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(c.Conn, 5*time.Second) {
		t.Fatal("a binary packet before CONNECT was kept")
	}
	// Connected, attachments never sent: closed after the connect timeout.
	c2, err := sioclient.DialWS(ctx, n.ts.URL, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Send(`40{"token":"` + n.token("u2") + `","appId":"` + n.app.AppID + `"}`)
	if ack, err := c2.NextText(); err != nil || !strings.HasPrefix(ack, "40{") {
		t.Fatalf("connect: %q %v", ack, err)
	}
	c2.Send(`452-["send-private-message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c2.SendBinary(make([]byte, 500_000))
	if !closedWithin(c2.Conn, 5*time.Second) {
		t.Fatal("a binary packet missing an attachment was kept")
	}
}

// Item: one user's socket could hold hundreds of MB of unread output.
func TestSlowReaderDisconnected(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.UserSendRate = 0
		c.MaxSocketBufferBytes = 1 << 20
	})
	ctx := context.Background()
	tok := n.token("reader")
	n.token("writer")
	big := strings.Repeat("x", 60<<10)
	for range 40 {
		if _, err := n.srv.Chat.SendPrivate(ctx, chat.SendInput{AppID: n.app.AppID, SenderID: "writer", TargetID: "reader", Type: 1,
			Content: json.RawMessage(`{"content":"` + big + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	ss, err := n.srv.Chat.Sessions(ctx, n.app.AppID, "reader")
	if err != nil || len(ss) != 1 {
		t.Fatalf("sessions: %v %v", ss, err)
	}
	c, err := sioclient.DialWS(ctx, n.ts.URL, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Send(`40{"token":"` + tok + `","appId":"` + n.app.AppID + `"}`)
	if ack, err := c.NextText(); err != nil || !strings.HasPrefix(ack, "40{") {
		t.Fatalf("connect: %q %v", ack, err)
	}
	// Ask for ~2.4 MB at a time and never read: the answers pile up.
	before := n.srv.Sockets.SlowConsumers()
	req := fmt.Sprintf(`42%%d["sync",{"sid":%q,"afterSeq":0,"limit":100}]`, ss[0].SID)
	// 60 answers are 144 MB: far more than the socket buffers take.
	for i := range 60 {
		if err := c.Send(fmt.Sprintf(req, i)); err != nil {
			break // closed by the server
		}
	}
	for deadline := time.Now().Add(20 * time.Second); n.srv.Sockets.SlowConsumers() == before; {
		if time.Now().After(deadline) {
			t.Fatal("144 MB of unread sync answers and the socket is still connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !closedWithin(c.Conn, 10*time.Second) {
		t.Fatal("slow consumer counted but not closed")
	}
	if !strings.Contains(n.metrics(), "chatd_socket_slow_disconnects_total 1") {
		t.Fatal("the slow disconnect is not in /metrics")
	}
}

// Item: a POST that announced a body and never sent it held its connection.
func TestSilentBodyIsCut(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.HTTPReadTimeout = 300 * time.Millisecond })
	host := strings.TrimPrefix(n.ts.URL, "http://")
	for _, path := range []string{"/user/getToken", "/file/upload?appId=" + n.app.AppID + "&token=" + n.token("u"), "/socket.io/?EIO=4&transport=polling&sid=x"} {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", path, host)
		closed := closedWithin(c, 5*time.Second)
		c.Close()
		if !closed {
			t.Fatalf("%s: the connection is still open after the read timeout", path)
		}
	}
}

// trickleUpload sends a multipart upload of a PNG of size bytes, trickled in
// chunks with pause between them.
func trickleUpload(t *testing.T, n *node, size, chunk int, pause time.Duration) (int, error) {
	t.Helper()
	const boundary = "XbOuNdArY"
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, size)...)
	body := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"up_file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n" +
		string(png) + "\r\n--" + boundary + "--\r\n"
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		for b := []byte(body); len(b) > 0; {
			k := min(chunk, len(b))
			if _, err := pw.Write(b[:k]); err != nil {
				return
			}
			b = b[k:]
			time.Sleep(pause)
		}
	}()
	req, _ := http.NewRequest("POST", n.ts.URL+"/file/upload?appId="+n.app.AppID+"&token="+n.token("up"), pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// Uploads get a progress-based limit: one that keeps coming may take longer
// than the read timeout; one slower than the minimum rate is cut.
func TestUploadDeadlineFollowsProgress(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.HTTPReadTimeout = 300 * time.Millisecond
		c.UploadMinRate = 16 << 10
	})
	// 64 KiB in 8 KiB chunks every 50ms: about 160 KiB/s, 400ms in all.
	if code, err := trickleUpload(t, n, 64<<10, 8<<10, 50*time.Millisecond); err != nil || code != http.StatusOK {
		t.Fatalf("upload that keeps coming: %d %v", code, err)
	}
	// 64 KiB in 1 KiB chunks every 100ms: 10 KiB/s, under the minimum.
	// The client may see its write fail first; an answer, if it reads one,
	// is 408, not a server error.
	if code, err := trickleUpload(t, n, 64<<10, 1<<10, 100*time.Millisecond); err == nil && code != http.StatusRequestTimeout {
		t.Fatalf("an upload under the minimum rate: %d, want 408", code)
	}
}

// A connection that has not authenticated may only send small packets: one
// IP's connections cannot each park a 1 MB frame.
func TestUnauthenticatedFramesSmall(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	c, err := sioclient.DialWS(ctx, n.ts.URL, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Send(`40{"pad":"` + strings.Repeat("x", 100_000) + `"}`)
	if !closedWithin(c.Conn, 5*time.Second) {
		t.Fatal("a 100 KB frame before authentication was accepted")
	}
	// Once authenticated, the full limit applies.
	n.token("peer")
	c2, err := sioclient.DialWS(ctx, n.ts.URL, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Send(`40{"token":"` + n.token("big") + `","appId":"` + n.app.AppID + `"}`)
	if ack, err := c2.NextText(); err != nil || !strings.HasPrefix(ack, "40{") {
		t.Fatalf("connect: %q %v", ack, err)
	}
	c2.Send(`420["send-private-message",{"targetId":"peer","messageType":1,"content":{"content":"` + strings.Repeat("y", 60_000) + `"}}]`)
	if ack, err := c2.NextText(); err != nil || !strings.HasPrefix(ack, "430[null") {
		t.Fatalf("60 KB send after authentication: %.80q %v", ack, err)
	}
}
