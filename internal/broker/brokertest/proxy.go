package brokertest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP forwarder to a broker server that can simulate a half-open network
// failure: after Blackhole, its connections stay open but carry nothing, which only a
// client's own health checks can detect. Heal makes new connections work again while
// the blackholed ones stay dead, so recovery proves the client reconnected.
type Proxy struct {
	t      testing.TB
	target string
	ln     net.Listener

	mu    sync.Mutex
	live  []*proxyConn
	dead  []net.Conn
	black bool
	wg    sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn
}

// NewProxy listens on a free loopback port and forwards to target (host:port).
func NewProxy(t testing.TB, target string) *Proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{t: t, target: target, ln: ln}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.black {
			// Accepted but never answered, like a server behind a partition.
			p.dead = append(p.dead, c)
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxyConn{client: c, server: s}
		p.mu.Lock()
		p.live = append(p.live, pc)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
}

// Blackhole silences every connection without closing it, and holds new ones silent.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.black = true
	for _, pc := range p.live {
		// Cut the server side only: the client's socket stays open and silent.
		pc.server.Close()
		p.dead = append(p.dead, pc.client)
	}
	p.live = nil
}

// Heal forwards new connections again; blackholed ones stay silent.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.black = false
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, pc := range p.live {
		pc.client.Close()
		pc.server.Close()
	}
	for _, c := range p.dead {
		c.Close()
	}
	p.live, p.dead = nil, nil
	p.mu.Unlock()
	p.wg.Wait()
}
