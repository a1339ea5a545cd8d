// Package sioclient is a minimal Engine.IO/Socket.IO client for chatd's
// tests: raw websocket frames via gobwas/ws and long-polling via net/http.
package sioclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/chatd/chatd/internal/socketio/engineio"
)

// Open is the Engine.IO open packet.
type Open struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   *int64   `json:"maxPayload"`
}

// Msg is one websocket message.
type Msg struct {
	Binary bool
	Data   []byte
}

// String returns the message as text.
func (m Msg) String() string { return string(m.Data) }

// WS is a websocket Engine.IO client.
type WS struct {
	Conn  net.Conn
	r     io.Reader
	Proto int
	Open  Open
	// AutoPong answers EIO4 pings and hides them from Next.
	AutoPong bool
}

// URL builds an Engine.IO URL from an http:// base.
func URL(base string, proto int, transport, sid string, extra url.Values) string {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("EIO", fmt.Sprint(proto))
	q.Set("transport", transport)
	if sid != "" {
		q.Set("sid", sid)
	}
	return strings.TrimSuffix(base, "/") + "/socket.io/?" + q.Encode()
}

// DialWS opens a websocket-only session and reads its open packet.
func DialWS(ctx context.Context, base string, proto int, extra url.Values) (*WS, error) {
	return DialWSWith(ctx, ws.Dialer{Timeout: 10 * time.Second}, base, proto, extra)
}

// DialWSWith is DialWS through d (a source address, a timeout).
func DialWSWith(ctx context.Context, d ws.Dialer, base string, proto int, extra url.Values) (*WS, error) {
	c, err := DialRawWith(ctx, d, URL(base, proto, "websocket", "", extra), proto, nil)
	if err != nil {
		return nil, err
	}
	m, err := c.Next()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read open: %w", err)
	}
	if len(m.Data) == 0 || m.Data[0] != '0' || json.Unmarshal(m.Data[1:], &c.Open) != nil {
		c.Close()
		return nil, fmt.Errorf("bad open packet %q", m.Data)
	}
	return c, nil
}

// DialRaw opens a websocket to u (ws:// or http://) without reading anything.
func DialRaw(ctx context.Context, u string, proto int, header http.Header) (*WS, error) {
	return DialRawWith(ctx, ws.Dialer{Timeout: 10 * time.Second}, u, proto, header)
}

// DialRawWith is DialRaw with a dialer of the caller's (socket options).
func DialRawWith(ctx context.Context, d ws.Dialer, u string, proto int, header http.Header) (*WS, error) {
	u = strings.Replace(u, "http://", "ws://", 1)
	if header != nil {
		d.Header = ws.HandshakeHeaderHTTP(header)
	}
	conn, br, _, err := d.Dial(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	c := &WS{Conn: conn, r: conn, Proto: proto, AutoPong: true}
	if br != nil {
		c.r = io.MultiReader(br, conn)
	}
	return c, nil
}

// Send writes a text frame.
func (c *WS) Send(text string) error {
	return wsutil.WriteClientMessage(c.Conn, ws.OpText, []byte(text))
}

// SendBinary writes a binary frame (EIO3 frames get their type byte).
func (c *WS) SendBinary(b []byte) error {
	if c.Proto == 3 {
		b = append([]byte{4}, b...)
	}
	return wsutil.WriteClientMessage(c.Conn, ws.OpBinary, b)
}

// Next returns the next data message; EIO3 binary frames lose their type byte.
func (c *WS) Next() (Msg, error) {
	for {
		data, op, err := wsutil.ReadServerData(rw{c.r, c.Conn})
		if err != nil {
			return Msg{}, err
		}
		if op == ws.OpBinary {
			if c.Proto == 3 && len(data) > 0 {
				data = data[1:]
			}
			return Msg{Binary: true, Data: data}, nil
		}
		if c.AutoPong && c.Proto == 4 && string(data) == "2" {
			if err := c.Send("3"); err != nil {
				return Msg{}, err
			}
			continue
		}
		return Msg{Data: data}, nil
	}
}

// NextText returns the next text message, failing on binary ones.
func (c *WS) NextText() (string, error) {
	m, err := c.Next()
	if err != nil {
		return "", err
	}
	if m.Binary {
		return "", fmt.Errorf("unexpected binary message %v", m.Data)
	}
	return string(m.Data), nil
}

// Close closes the connection.
func (c *WS) Close() error { return c.Conn.Close() }

type rw struct {
	io.Reader
	io.Writer
}

// Polling is a long-polling Engine.IO client.
type Polling struct {
	Base  string
	Proto int
	SID   string
	Open  Open
	HTTP  *http.Client
	Extra url.Values
}

// DialPolling performs the polling handshake and returns the packets that
// followed the open packet in the same response.
func DialPolling(ctx context.Context, base string, proto int, extra url.Values) (*Polling, []engineio.Packet, error) {
	p := &Polling{Base: base, Proto: proto, HTTP: &http.Client{}, Extra: extra}
	status, packets, err := p.get(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	if status != http.StatusOK || len(packets) == 0 || packets[0].Type != engineio.Open {
		return nil, nil, fmt.Errorf("handshake: status %d packets %v", status, packets)
	}
	if err := json.Unmarshal(packets[0].Data, &p.Open); err != nil {
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	p.SID = p.Open.SID
	return p, packets[1:], nil
}

// Get long-polls once.
func (p *Polling) Get(ctx context.Context) (int, []engineio.Packet, error) {
	return p.get(ctx, p.SID)
}

func (p *Polling) get(ctx context.Context, sid string) (int, []engineio.Packet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, URL(p.Base, p.Proto, "polling", sid, p.Extra), nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := p.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, nil
	}
	var packets []engineio.Packet
	if p.Proto == 4 {
		packets, err = engineio.DecodePayloadV4(body)
	} else {
		packets, err = engineio.DecodePayloadV3(body)
	}
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("decode %q: %w", body, err)
	}
	return resp.StatusCode, packets, nil
}

// Post sends raw payload text and returns the HTTP status.
func (p *Polling) Post(ctx context.Context, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, URL(p.Base, p.Proto, "polling", p.SID, p.Extra), strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := p.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// Encode builds a polling payload from text packets in the client's revision.
func (p *Polling) Encode(packets ...string) string {
	var b strings.Builder
	for i, pk := range packets {
		if p.Proto == 4 {
			if i > 0 {
				b.WriteByte(0x1e)
			}
		} else {
			fmt.Fprintf(&b, "%d:", len([]rune(pk))) // tests use BMP text only
		}
		b.WriteString(pk)
	}
	return b.String()
}
