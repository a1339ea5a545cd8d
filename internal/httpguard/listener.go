package httpguard

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// refusal is what a connection over the per-address limit reads before it is
// closed.
const refusal = "HTTP/1.1 429 Too Many Requests\r\n" +
	"Content-Type: application/json\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 80\r\n\r\n" +
	`{"code":429,"message":"too many connections from this address: close some first"}`

// Listener caps the connections open at once from one address (ClientKey).
// A connection over the cap gets an HTTP 429 and is closed; the count includes
// every connection, websockets and long-polls as well as requests.
type Listener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[string]int

	refused atomic.Uint64
}

// LimitListener wraps ln; max <= 0 returns a Listener without a cap (it still
// counts).
func LimitListener(ln net.Listener, max int) *Listener {
	return &Listener{Listener: ln, max: max, conns: make(map[string]int)}
}

// Refused returns how many connections were refused for the cap.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Open returns the connections open from the address of remoteAddr.
func (l *Listener) Open(remoteAddr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[ClientKey(remoteAddr)]
}

// Accept returns the next connection within the cap.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ClientKey(c.RemoteAddr().String())
		l.mu.Lock()
		n := l.conns[key]
		over := l.max > 0 && n >= l.max
		if !over {
			l.conns[key] = n + 1
		}
		l.mu.Unlock()
		if over {
			l.refused.Add(1)
			go refuse(c)
			continue
		}
		return &conn{Conn: c, l: l, key: key}, nil
	}
}

func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte(refusal))
	_ = c.Close()
}

func (l *Listener) release(key string) {
	l.mu.Lock()
	if n := l.conns[key] - 1; n > 0 {
		l.conns[key] = n
	} else {
		delete(l.conns, key)
	}
	l.mu.Unlock()
}

// conn releases its place once closed, hijacked or not.
type conn struct {
	net.Conn
	l    *Listener
	key  string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// SyscallConn exposes the socket: the websocket reader and writer use it for
// non-blocking reads and writes.
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

// ReadFrom keeps net/http's sendfile path for file downloads.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
