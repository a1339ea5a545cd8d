package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatd/chatd/internal/socketio/sioclient"
)

// The attack soak (-attack, `make soak-attack`): chatd runs with its default
// limits; honest clients come from 127.0.1.x (100 sockets an address) and send
// for one phase alone, then for a second phase while attackers, each from its
// own 127.0.2.x address, run the transport attacks of SECURITY.md (Limits):
// silent websocket upgrades, websockets announcing 1 MB frames, POST bodies
// that never come, refused EIO3 sessions that keep pinging, and a user who
// asks for large sync answers and never reads them. It passes when every
// honest send is acknowledged and pushed once, the honest p99 ack latency
// under attack stays within twice the one without, and chatd's RSS stays
// under -max-rss.

// honestIP is the source address of honest socket i.
func honestIP(i int) net.IP { return net.IPv4(127, 0, 1, byte(1+i/100)) }

// attackerIP is the source address of attacker k.
func attackerIP(k int) net.IP { return net.IPv4(127, 0, 2, byte(1+k)) }

func netDialer(ip net.IP) *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}
}

func wsDialer(ip net.IP) ws.Dialer {
	return ws.Dialer{Timeout: 10 * time.Second, NetDial: netDialer(ip).DialContext}
}

func httpFrom(ip net.IP) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: netDialer(ip).DialContext}}
}

// latencies records honest ack latencies by phase.
type latencies struct {
	mu    sync.Mutex
	phase int
	by    [2][]time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.by[l.phase] = append(l.by[l.phase], d)
	l.mu.Unlock()
}

func (l *latencies) p99(phase int) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return p99of(l.by[phase])
}

// halves is the p99 of the first and of the second half of a phase's acks:
// how far the baseline moves by itself (docs/soak.md, Under attack).
func (l *latencies) halves(phase int) (first, second time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.by[phase]
	first, _ = p99of(d[:len(d)/2])
	second, _ = p99of(d[len(d)/2:])
	return first, second
}

func p99of(acks []time.Duration) (time.Duration, int) {
	d := slices.Clone(acks)
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)*99/100], len(d)
}

// timed is an honest client that remembers when it sent each ack id.
type timed struct {
	*client
	mu   sync.Mutex
	sent map[int]time.Time
}

func (c *timed) sendTimed(id int, text string) error {
	c.mu.Lock()
	c.sent[id] = time.Now()
	c.mu.Unlock()
	return c.send(text)
}

func (c *timed) read(lat *latencies, pushes, acks, nacks *atomic.Int64) {
	c.readAcks(pushes, acks, nacks, func(m string) {
		id, _ := strconv.Atoi(m[2:strings.IndexByte(m, '[')])
		c.mu.Lock()
		at, ok := c.sent[id]
		delete(c.sent, id)
		c.mu.Unlock()
		if ok {
			lat.add(time.Since(at))
		}
	})
}

func runAttack(bin string, sockets, senders int, rate float64, duration time.Duration, maxRSS float64, only map[string]bool) error {
	dir, err := os.MkdirTemp("", "chatsoak-attack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	base, stop, err := startChatd(bin, dir) // default limits
	if err != nil {
		return err
	}
	defer stop()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	a, err := createApp(hc, base)
	if err != nil {
		return err
	}
	log.Printf("issuing %d tokens", sockets+2)
	tokens := make([]string, sockets)
	if err := parallel(16, sockets, func(i int) error {
		t, err := getToken(hc, base, a, userID(i))
		tokens[i] = t
		return err
	}); err != nil {
		return err
	}
	attackerTok, err := getToken(hc, base, a, "attacker")
	if err != nil {
		return err
	}
	fillerTok, err := getToken(hc, base, a, "filler")
	if err != nil {
		return err
	}
	// The slow reader's chat: 40 messages of 60 KiB, a 2.4 MB sync answer.
	filler, err := dial(ws.Dialer{Timeout: 10 * time.Second}, base, a.AppID, fillerTok)
	if err != nil {
		return err
	}
	go filler.read(new(atomic.Int64), new(atomic.Int64), new(atomic.Int64))
	big := strings.Repeat("x", 60<<10)
	for i := range 40 {
		if err := filler.send(fmt.Sprintf(`42%d["send-private-message",{"targetId":"attacker","messageType":1,"content":{"content":%q}}]`, i, big)); err != nil {
			return err
		}
	}

	log.Printf("connecting %d honest sockets from %d addresses", sockets, (sockets+99)/100)
	clients := make([]*timed, sockets)
	var lat latencies
	var pushes, acks, nacks, sent atomic.Int64
	if err := parallel(32, sockets, func(i int) error {
		c, err := dial(wsDialer(honestIP(i)), base, a.AppID, tokens[i])
		if err != nil {
			return fmt.Errorf("socket %d: %w", i, err)
		}
		clients[i] = &timed{client: c, sent: map[int]time.Time{}}
		go clients[i].read(&lat, &pushes, &acks, &nacks)
		return nil
	}); err != nil {
		return err
	}
	baseline, _ := metrics(hc, base)

	load := func(phase time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), phase)
		defer cancel()
		var wg sync.WaitGroup
		interval := time.Duration(float64(time.Second) / rate)
		for i := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, peer := clients[i], userID(i+sockets/2)
				time.Sleep(time.Duration(int64(interval) * int64(i) / int64(senders)))
				t := time.NewTicker(interval)
				defer t.Stop()
				for n := int(sent.Load()); ; n++ {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					body := fmt.Sprintf(`42%d["send-private-message",{"targetId":%q,"messageType":1,"content":{"content":"soak %d"},"clientMsgId":"%d-%d"}]`, n, peer, n, i, n)
					if c.sendTimed(n, body) == nil {
						sent.Add(1)
					}
				}
			}()
		}
		wg.Wait()
	}

	phase := duration / 2
	log.Printf("phase 1: %d senders at %.1f msg/s for %s, no attack", senders, rate, phase)
	load(phase)
	lat.mu.Lock()
	lat.phase = 1
	lat.mu.Unlock()

	actx, stopAttack := context.WithCancel(context.Background())
	att := attackers{only: only}
	att.start(actx, base, a.AppID, attackerTok)
	var peakRSS float64
	sample := time.NewTicker(2 * time.Second)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-sample.C:
				if m, err := metrics(hc, base); err == nil {
					peakRSS = max(peakRSS, m["process_resident_memory_bytes"])
					log.Printf("under attack: rss %.1f MiB, sessions %v, fds %v, slow disconnects %v, refused conns %v",
						m["process_resident_memory_bytes"]/(1<<20), m["chatd_engine_sessions"], m["process_open_fds"],
						m["chatd_socket_slow_disconnects_total"], m["chatd_http_conns_refused_total"])
				}
			}
		}
	}()
	log.Printf("phase 2: the same load while attackers run")
	load(phase)
	sample.Stop()
	close(done)
	stopAttack()
	att.wg.Wait()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if acks.Load()+nacks.Load() >= sent.Load() && pushes.Load() >= acks.Load() {
			break
		}
	}
	after, _ := metrics(hc, base)
	p1, n1 := lat.p99(0)
	p2, n2 := lat.p99(1)
	fmt.Printf("\nhonest sends: %d, acknowledged %d, refused %d, pushed %d\n", sent.Load(), acks.Load(), nacks.Load(), pushes.Load())
	fmt.Printf("honest ack p99: %s without attack (%d acks), %s under attack (%d acks)\n", p1, n1, p2, n2)
	h1, h2 := lat.halves(0)
	fmt.Printf("honest ack p99 without attack, by half: %s then %s (the baseline's own spread)\n", h1, h2)
	fmt.Printf("attacks: %s\n", att.summary())
	fmt.Printf("chatd RSS: %.1f MiB with the honest sockets, peak %.1f MiB under attack (bound %.0f MiB); slow disconnects %v, refused connections %v\n",
		baseline["process_resident_memory_bytes"]/(1<<20), peakRSS/(1<<20), maxRSS/(1<<20),
		after["chatd_socket_slow_disconnects_total"], after["chatd_http_conns_refused_total"])

	var problems []string
	if nacks.Load() > 0 || acks.Load() != sent.Load() {
		problems = append(problems, fmt.Sprintf("%d of %d honest sends were not acknowledged", sent.Load()-acks.Load(), sent.Load()))
	}
	if pushes.Load() != acks.Load() {
		problems = append(problems, fmt.Sprintf("%d pushes for %d acknowledged messages", pushes.Load(), acks.Load()))
	}
	if p2 > 2*p1 { // the plain 2x, no floor (docs/soak.md, Under attack)
		problems = append(problems, fmt.Sprintf("honest p99 went from %s to %s under attack", p1, p2))
	}
	if peakRSS > maxRSS {
		problems = append(problems, fmt.Sprintf("RSS peaked at %.1f MiB", peakRSS/(1<<20)))
	}
	if att.slowDisconnects.Load() == 0 && (len(only) == 0 || only["slowreader"]) {
		problems = append(problems, "the slow reader was never disconnected")
	}
	if len(problems) > 0 {
		return errors.New("FAIL: " + strings.Join(problems, "; "))
	}
	fmt.Println("PASS: under attack every honest send was acknowledged and pushed once, p99 within 2x, memory under the bound")
	return nil
}

// attackers runs the attacks until ctx ends, counting what they got.
type attackers struct {
	only                                             map[string]bool // the attacks to run; empty: all
	wg                                               sync.WaitGroup
	opened, refused, closedByServer, slowDisconnects atomic.Int64
	slowSID                                          atomic.Value // the slow reader's chat
}

func (at *attackers) summary() string {
	return fmt.Sprintf("%d attack connections opened, %d refused (429 or reset), %d closed by chatd, %d slow-reader disconnects",
		at.opened.Load(), at.refused.Load(), at.closedByServer.Load(), at.slowDisconnects.Load())
}

// loop runs workers copies of one attack, each again and again.
func (at *attackers) loop(ctx context.Context, name string, workers int, once func(ctx context.Context) error) {
	if len(at.only) > 0 && !at.only[name] {
		return
	}
	for range workers {
		at.wg.Add(1)
		go func() {
			defer at.wg.Done()
			for ctx.Err() == nil {
				if err := once(ctx); err != nil {
					at.refused.Add(1)
					select { // refused: back off, as a client holding connections would
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				}
			}
		}()
	}
}

// hold waits until chatd closes c or ctx ends.
func (at *attackers) hold(ctx context.Context, c net.Conn) {
	at.opened.Add(1)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	io.Copy(io.Discard, c)
	c.Close()
	if ctx.Err() == nil {
		at.closedByServer.Add(1)
	}
}

func (at *attackers) start(ctx context.Context, base, appID, token string) {
	host := strings.TrimPrefix(base, "http://")
	// Silent websocket upgrades of polling sessions.
	hcUp := httpFrom(attackerIP(0))
	at.loop(ctx, "upgrade", 300, func(ctx context.Context) error {
		res, err := hcUp.Get(base + "/socket.io/?EIO=4&transport=polling")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		i := strings.Index(string(body), `"sid":"`)
		if res.StatusCode != 200 || i < 0 {
			return fmt.Errorf("handshake: %d", res.StatusCode)
		}
		sid := string(body[i+7 : i+7+strings.IndexByte(string(body[i+7:]), '"')])
		c, err := netDialer(attackerIP(0)).DialContext(ctx, "tcp", host)
		if err != nil {
			return err
		}
		fmt.Fprintf(c, "GET /socket.io/?EIO=4&transport=websocket&sid=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", sid, host)
		if res, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			c.Close()
			return fmt.Errorf("upgrade refused")
		}
		at.hold(ctx, c)
		return nil
	})
	// Websockets announcing 1 MB frames, sending 64 KiB of each.
	at.loop(ctx, "frame", 200, func(ctx context.Context) error {
		c, err := sioclient.DialWSWith(ctx, wsDialer(attackerIP(1)), base, 4, nil)
		if err != nil {
			return err
		}
		hdr := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
		binary.BigEndian.PutUint64(hdr[2:], 999_000)
		c.Conn.Write(append(hdr, make([]byte, 64<<10)...))
		at.hold(ctx, c.Conn)
		return nil
	})
	// POST bodies announced and never sent.
	at.loop(ctx, "body", 200, func(ctx context.Context) error {
		c, err := netDialer(attackerIP(2)).DialContext(ctx, "tcp", host)
		if err != nil {
			return err
		}
		fmt.Fprintf(c, "POST /user/getToken HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1048000\r\n\r\n{", host)
		at.hold(ctx, c)
		return nil
	})
	// Refused EIO3 sessions that keep pinging, and park an attachment.
	hcV3 := httpFrom(attackerIP(3))
	at.loop(ctx, "v3", 50, func(ctx context.Context) error {
		p, _, err := sioclient.DialPolling(ctx, base, 3, url.Values{"token": {"forged"}, "appId": {appID}})
		if err != nil {
			return err
		}
		p.HTTP = hcV3
		at.opened.Add(1)
		// Pings once a second (the protocol asks every 25 s): the session is
		// kept alive, the attack is on its lifetime, not a request flood.
		for ctx.Err() == nil {
			if code, err := p.Post(ctx, p.Encode("2")); err != nil || code != 200 {
				break
			}
			if code, _, err := p.Get(ctx); err != nil || code != 200 {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if ctx.Err() == nil {
			at.closedByServer.Add(1)
		}
		return nil
	})
	// A user who asks for 2.4 MB sync answers and never reads them.
	at.loop(ctx, "slowreader", 5, func(ctx context.Context) error {
		c, err := dial(wsDialer(attackerIP(4)), base, appID, token)
		if err != nil {
			return err
		}
		at.opened.Add(1)
		// The chat's sid is asked once: once the user's answer budget is in
		// debt, a session-list is refused too, and waiting for its sid
		// stopped the attack after its first round.
		sid, _ := at.slowSID.Load().(string)
		if sid == "" {
			c.send(`420["session-list"]`)
		}
		for sid == "" {
			m, err := c.conn.NextText()
			if err != nil {
				return err
			}
			if i := strings.Index(m, `"sid":"`); strings.HasPrefix(m, "430") && i >= 0 {
				sid = m[i+7 : i+7+strings.IndexByte(m[i+7:], '"')]
				at.slowSID.Store(sid)
			}
		}
		// Paced like a user within the per-user event limits: the attack is
		// on memory (answers never read), not on the CPU.
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for n := 1; ctx.Err() == nil; n++ {
			if err := c.send(fmt.Sprintf(`42%d["sync",{"sid":%q,"afterSeq":0,"limit":100}]`, n, sid)); err != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
		c.conn.Close()
		if ctx.Err() == nil {
			at.slowDisconnects.Add(1)
		}
		return nil
	})
}
