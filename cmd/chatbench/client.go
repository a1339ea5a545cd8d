package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// client is a lean Socket.IO v4 client over one websocket: just what the
// scenarios need (connect with query auth, emit with ack, receive pushes),
// with a small read buffer so that tens of thousands fit in one process.
type client struct {
	conn net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex
	ids  atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]func(ack []byte, err error)
	closed  bool

	onEvent func(event []byte) // a "42[...]" packet without its prefix; called on the reader goroutine
	done    chan struct{}
}

var errClosed = errors.New("connection closed")

// dialClient opens a websocket to the server at addr (host:port) from the
// source address src (nil: any), performs the Socket.IO connect with the
// token in the query and starts the reader.
func dialClient(ctx context.Context, addr string, src net.IP, appID, token string, onEvent func([]byte)) (*client, error) {
	return dialClientCaps(ctx, addr, src, appID, token, "", onEvent)
}

// dialClientCaps is dialClient declaring capabilities (a comma list; empty:
// none), for the scenarios that measure pushes only capable clients get.
func dialClientCaps(ctx context.Context, addr string, src net.IP, appID, token, caps string, onEvent func([]byte)) (*client, error) {
	q := url.Values{"EIO": {"4"}, "transport": {"websocket"}, "token": {token}, "appId": {appID}}
	if caps != "" {
		q.Set("capabilities", caps)
	}
	nd := net.Dialer{Timeout: 15 * time.Second}
	if src != nil {
		nd.LocalAddr = &net.TCPAddr{IP: src}
	}
	d := ws.Dialer{
		Timeout: 15 * time.Second,
		NetDial: func(ctx context.Context, network, a string) (net.Conn, error) { return nd.DialContext(ctx, network, a) },
	}
	conn, br, _, err := d.Dial(ctx, "ws://"+addr+"/socket.io/?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &client{conn: conn, pending: map[uint64]func([]byte, error){}, onEvent: onEvent, done: make(chan struct{})}
	// The handshake may have read ahead; keep those bytes in front.
	var r io.Reader = conn
	if br != nil && br.Buffered() > 0 {
		r = io.MultiReader(br, conn)
	}
	c.br = bufio.NewReaderSize(r, 2048)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	}
	open, err := c.readPacket()
	if err != nil || len(open) == 0 || open[0] != '0' {
		conn.Close()
		return nil, fmt.Errorf("engine.io open: %q: %w", open, err)
	}
	if err := c.write([]byte("40")); err != nil {
		conn.Close()
		return nil, err
	}
	for {
		p, err := c.readPacket()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("socket.io connect: %w", err)
		}
		if string(p) == "2" {
			c.write([]byte("3"))
			continue
		}
		if bytes.HasPrefix(p, []byte("40")) {
			break
		}
		conn.Close()
		return nil, fmt.Errorf("socket.io connect refused: %.200s", p)
	}
	conn.SetReadDeadline(time.Time{})
	go c.readLoop()
	return c, nil
}

// readPacket returns the payload of the next data frame, answering pings
// and assembling fragments.
func (c *client) readPacket() ([]byte, error) {
	var msg []byte
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			return nil, err
		}
		if h.Length > 1<<24 {
			return nil, fmt.Errorf("frame of %d bytes", h.Length)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.br, p); err != nil {
			return nil, err
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpPing:
			c.writeFrame(ws.NewPongFrame(p))
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			return nil, io.EOF
		}
		msg = append(msg, p...)
		if h.Fin {
			return msg, nil
		}
	}
}

func (c *client) readLoop() {
	defer c.shutdown()
	for {
		p, err := c.readPacket()
		if err != nil {
			return
		}
		switch {
		case string(p) == "2":
			if c.write([]byte("3")) != nil {
				return
			}
		case bytes.HasPrefix(p, []byte("43")):
			c.ack(p[2:])
		case bytes.HasPrefix(p, []byte("42")):
			if c.onEvent != nil {
				c.onEvent(p[2:])
			}
		case bytes.HasPrefix(p, []byte("41")), bytes.HasPrefix(p, []byte("1")):
			return
		}
	}
}

// ack dispatches "<id>[...]" to the pending call.
func (c *client) ack(p []byte) {
	i := bytes.IndexByte(p, '[')
	if i <= 0 {
		return
	}
	id, err := strconv.ParseUint(string(p[:i]), 10, 64)
	if err != nil {
		return
	}
	c.mu.Lock()
	fn := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if fn != nil {
		fn(p[i:], nil)
	}
}

func (c *client) shutdown() {
	c.mu.Lock()
	pending := c.pending
	c.pending = map[uint64]func([]byte, error){}
	c.closed = true
	c.mu.Unlock()
	for _, fn := range pending {
		fn(nil, errClosed)
	}
	c.conn.Close()
	close(c.done)
}

func (c *client) writeFrame(f ws.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return ws.WriteFrame(c.conn, ws.MaskFrameInPlace(f))
}

func (c *client) write(p []byte) error { return c.writeFrame(ws.NewTextFrame(p)) }

// emit sends event with a JSON argument; fn, when not nil, gets the ack's
// argument array (error first) or an error when the connection dies first.
func (c *client) emit(event string, arg []byte, fn func(ack []byte, err error)) error {
	var b bytes.Buffer
	b.WriteString("42")
	if fn != nil {
		id := c.ids.Add(1)
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return errClosed
		}
		c.pending[id] = fn
		c.mu.Unlock()
		b.WriteString(strconv.FormatUint(id, 10))
	}
	b.WriteString(`["`)
	b.WriteString(event)
	b.WriteString(`"`)
	if arg != nil {
		b.WriteByte(',')
		b.Write(arg)
	}
	b.WriteByte(']')
	return c.write(b.Bytes())
}

// call emits and waits for the ack; it returns the data of an error-first
// ack and fails on an error ack.
func (c *client) call(ctx context.Context, event string, arg []byte) (json.RawMessage, error) {
	ch := make(chan struct {
		b   []byte
		err error
	}, 1)
	if err := c.emit(event, arg, func(b []byte, err error) {
		ch <- struct {
			b   []byte
			err error
		}{b, err}
	}); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		var a []json.RawMessage
		if err := json.Unmarshal(r.b, &a); err != nil || len(a) == 0 {
			return nil, fmt.Errorf("%s: bad ack %.200s", event, r.b)
		}
		if string(a[0]) != "null" {
			return nil, fmt.Errorf("%s: error ack %s", event, a[0])
		}
		if len(a) < 2 {
			return nil, nil
		}
		return a[1], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ackFailed reports whether an ack array is an error ack.
func ackFailed(b []byte) bool {
	return !bytes.HasPrefix(b, []byte("[null"))
}

func (c *client) close() {
	c.conn.Close()
}
