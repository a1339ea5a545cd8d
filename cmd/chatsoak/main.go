// Command chatsoak is chatd's soak test: it starts a chatd binary on
// loopback, holds thousands of authenticated sockets (10,000 by default),
// sends one-to-one messages at a fixed rate for a few minutes, lets every
// client leave, and reads chatd's /metrics before, during and after to show
// that goroutines and memory return to where they started. Load is bounded
// in count and time and targets 127.0.0.1 only.
//
//	go build -o bin/chatd ./cmd/chatd && go run ./cmd/chatsoak -chatd bin/chatd
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/signature"
	"github.com/chatd/chatd/internal/socketio/sioclient"
)

func main() {
	var (
		bin      = flag.String("chatd", "bin/chatd", "chatd binary to run")
		sockets  = flag.Int("sockets", 10000, "sockets to hold (one user each)")
		senders  = flag.Int("senders", 1000, "sockets that send")
		rate     = flag.Float64("rate", 1, "messages per second per sender")
		duration = flag.Duration("duration", 3*time.Minute, "how long to send")
		attack   = flag.Bool("attack", false, "run the transport attacks during the second half (default limits; see attack.go)")
		maxRSS   = flag.Float64("max-rss", 512, "with -attack: chatd's RSS bound in MiB")
		only     = flag.String("attacks", "", "with -attack: comma-separated subset of upgrade,frame,body,v3,slowreader (empty: all)")
	)
	flag.Parse()
	if *senders > *sockets/2 {
		log.Fatal("-senders must be at most half of -sockets (each sender writes to a peer that does not send)")
	}
	if *attack {
		set := map[string]bool{}
		for name := range strings.SplitSeq(*only, ",") {
			if name != "" {
				set[name] = true
			}
		}
		if err := runAttack(*bin, *sockets, *senders, *rate, *duration, *maxRSS*(1<<20), set); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*bin, *sockets, *senders, *rate, *duration); err != nil {
		log.Fatal(err)
	}
}

type app struct {
	AppID     string `json:"appId"`
	AppSecret string `json:"appSecret"`
}

const adminKey = "soak-admin-key"

// startChatd runs bin on a free loopback port with a fresh store in dir and
// env added, and waits until it answers. stop kills it, also on Ctrl-C.
func startChatd(bin, dir string, env ...string) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(),
		"CHATD_ADDR="+addr,
		"CHATD_STORE=sqlite:"+filepath.Join(dir, "chatd.db"),
		"CHATD_BLOBS=file:"+filepath.Join(dir, "files"),
		"CHATD_ADMIN_KEY="+adminKey,
		"CHATD_LOG_LEVEL=warn",
	), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	// Interrupted (Ctrl-C, timeout), take chatd down too rather than leave it running.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() { <-sigs; stop(); os.Exit(1) }()
	base = "http://" + addr
	if err := waitUp(&http.Client{Timeout: 5 * time.Second}, base); err != nil {
		stop()
		return "", nil, err
	}
	return base, stop, nil
}

func run(bin string, sockets, senders int, rate float64, duration time.Duration) error {
	dir, err := os.MkdirTemp("", "chatsoak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Every client comes from 127.0.0.1 and the load is the point here.
	base, stop, err := startChatd(bin, dir, "CHATD_HANDSHAKE_RATE_IP=0", "CHATD_USER_SEND_RATE=0", "CHATD_APP_SEND_RATE=0",
		"CHATD_USER_EVENT_RATE=0", "CHATD_MAX_CONNS_PER_IP=0")
	if err != nil {
		return err
	}
	defer stop()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	a, err := createApp(hc, base)
	if err != nil {
		return err
	}

	log.Printf("issuing %d tokens", sockets)
	tokens := make([]string, sockets)
	if err := parallel(32, sockets, func(i int) error {
		t, err := getToken(hc, base, a, userID(i))
		tokens[i] = t
		return err
	}); err != nil {
		return err
	}

	baseline, err := metrics(hc, base)
	if err != nil {
		return err
	}

	log.Printf("connecting %d sockets", sockets)
	clients := make([]*client, sockets)
	var pushes, acks, nacks atomic.Int64
	if err := parallel(128, sockets, func(i int) error {
		c, err := dial(ws.Dialer{Timeout: 10 * time.Second}, base, a.AppID, tokens[i])
		if err != nil {
			return fmt.Errorf("socket %d: %w", i, err)
		}
		clients[i] = c
		go c.read(&pushes, &acks, &nacks)
		return nil
	}); err != nil {
		return err
	}
	connected, _ := metrics(hc, base)
	log.Printf("holding %d sockets: chatd_sockets=%v rss=%.1f MiB (%.1f KiB/socket over baseline)",
		sockets, connected["chatd_sockets"], connected["process_resident_memory_bytes"]/(1<<20),
		(connected["process_resident_memory_bytes"]-baseline["process_resident_memory_bytes"])/1024/float64(sockets))

	log.Printf("%d senders at %.1f msg/s each for %s", senders, rate, duration)
	var sent atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	for i := 0; i < senders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, peer := clients[i], userID(i+sockets/2)
			// Spread the senders over the first interval.
			time.Sleep(time.Duration(int64(interval) * int64(i) / int64(senders)))
			t := time.NewTicker(interval)
			defer t.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				body := fmt.Sprintf(`42%d["send-private-message",{"targetId":%q,"messageType":1,"content":{"content":"soak %d"},"clientMsgId":"%d-%d"}]`, n, peer, n, i, n)
				if c.send(body) == nil {
					sent.Add(1)
				}
			}
		}()
	}
	progress := time.NewTicker(15 * time.Second)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-progress.C:
			m, _ := metrics(hc, base)
			log.Printf("sent %d acked %d refused %d pushed %d | goroutines %v rss %.1f MiB heap %.1f MiB",
				sent.Load(), acks.Load(), nacks.Load(), pushes.Load(), m["go_goroutines"],
				m["process_resident_memory_bytes"]/(1<<20), m["go_memstats_heap_alloc_bytes"]/(1<<20))
		}
	}
	progress.Stop()
	cancel()
	wg.Wait()
	// Let the last acks and pushes arrive.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if acks.Load()+nacks.Load() >= sent.Load() && pushes.Load() >= acks.Load() {
			break
		}
	}
	loaded, _ := metrics(hc, base)

	log.Printf("closing %d sockets", sockets)
	for _, c := range clients {
		c.conn.Close()
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if m, err := metrics(hc, base); err == nil && m["chatd_sockets"] == 0 && m["chatd_engine_sessions"] == 0 {
			break
		}
	}
	// Wait for two garbage collections after the clients left, so the heap
	// figure reflects what is still live (the runtime collects at least every
	// two minutes even when idle).
	left, _ := metrics(hc, base)
	after := left
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if after, err = metrics(hc, base); err == nil && after["go_gc_cycles_total"] >= left["go_gc_cycles_total"]+2 {
			break
		}
	}

	fmt.Printf("\n| metric | before clients | %d sockets under load | after clients left |\n|---|---|---|---|\n", sockets)
	for _, k := range []string{"chatd_sockets", "go_goroutines", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes", "process_open_fds"} {
		fmt.Printf("| %s | %s | %s | %s |\n", k, human(k, baseline[k]), human(k, loaded[k]), human(k, after[k]))
	}
	fmt.Printf("\nsent %d, acknowledged %d, refused %d, pushed to recipients %d, messages stored %v\n",
		sent.Load(), acks.Load(), nacks.Load(), pushes.Load(), after["chatd_messages_sent_total"])

	var problems []string
	if g := after["go_goroutines"]; g > baseline["go_goroutines"]+10 {
		problems = append(problems, fmt.Sprintf("goroutines grew from %v to %v", baseline["go_goroutines"], g))
	}
	if h := after["go_memstats_heap_alloc_bytes"]; h > 2*baseline["go_memstats_heap_alloc_bytes"]+16<<20 {
		problems = append(problems, fmt.Sprintf("heap grew from %s to %s", human("b_bytes", baseline["go_memstats_heap_alloc_bytes"]), human("b_bytes", h)))
	}
	if f := after["process_open_fds"]; f > baseline["process_open_fds"]+10 {
		problems = append(problems, fmt.Sprintf("open files grew from %v to %v", baseline["process_open_fds"], f))
	}
	if nacks.Load() > 0 || acks.Load() != sent.Load() {
		problems = append(problems, fmt.Sprintf("%d of %d sends were not acknowledged", sent.Load()-acks.Load(), sent.Load()))
	}
	if pushes.Load() != acks.Load() {
		problems = append(problems, fmt.Sprintf("%d pushes for %d acknowledged messages", pushes.Load(), acks.Load()))
	}
	if len(problems) > 0 {
		return errors.New("FAIL: " + strings.Join(problems, "; "))
	}
	fmt.Println("PASS: goroutines, heap and open files returned to their baseline; every send acknowledged and pushed once")
	return nil
}

func userID(i int) string { return fmt.Sprintf("soak%05d", i) }

func human(k string, v float64) string {
	if strings.HasSuffix(k, "_bytes") {
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// client is one socket. Sends are serialised: the reader answers pings on
// the same connection.
type client struct {
	conn *sioclient.WS
	mu   sync.Mutex
}

func (c *client) send(text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.conn.Send(text)
}

func dial(d ws.Dialer, base, appID, token string) (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := sioclient.DialWSWith(ctx, d, base, 4, url.Values{})
	if err != nil {
		return nil, err
	}
	// Pings are answered through send, which serialises writes and sets a
	// fresh write deadline each time.
	conn.AutoPong = false
	c := &client{conn: conn}
	if err := c.send(`40{"token":"` + token + `","appId":"` + appID + `"}`); err != nil {
		conn.Close()
		return nil, err
	}
	for {
		m, err := conn.NextText()
		if err != nil {
			conn.Close()
			return nil, err
		}
		if m == "2" {
			c.send("3")
			continue
		}
		if strings.HasPrefix(m, "40") {
			return c, nil
		}
		conn.Close()
		return nil, fmt.Errorf("connect refused: %s", m)
	}
}

// read counts pushes and acks until the connection closes.
func (c *client) read(pushes, acks, nacks *atomic.Int64) { c.readAcks(pushes, acks, nacks, nil) }

// readAcks is read that also hands each ack packet to onAck, if not nil.
func (c *client) readAcks(pushes, acks, nacks *atomic.Int64, onAck func(m string)) {
	for {
		m, err := c.conn.NextText()
		if err != nil {
			return
		}
		switch {
		case m == "2":
			c.send("3")
		case strings.HasPrefix(m, `42["message"`):
			pushes.Add(1)
		case strings.HasPrefix(m, "43"):
			if onAck != nil {
				onAck(m)
			}
			if strings.Contains(m, "[null,") {
				acks.Add(1)
			} else {
				nacks.Add(1)
			}
		}
	}
}

func parallel(workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func waitUp(hc *http.Client, base string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if res, err := hc.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
	}
	return fmt.Errorf("chatd did not start on %s", base)
}

type envelope struct {
	Status  int             `json:"status"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func post(hc *http.Client, url, body, auth string) (envelope, error) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := hc.Do(req)
	if err != nil {
		return envelope{}, err
	}
	defer res.Body.Close()
	var e envelope
	if err := json.NewDecoder(res.Body).Decode(&e); err != nil {
		return e, err
	}
	if e.Status != 1 {
		return e, fmt.Errorf("%s: %d %s", url, e.Status, e.Message)
	}
	return e, nil
}

func createApp(hc *http.Client, base string) (app, error) {
	e, err := post(hc, base+"/app/create", `{"appName":"soak"}`, "Bearer "+adminKey)
	var a app
	if err == nil {
		err = json.Unmarshal(e.Data, &a)
	}
	return a, err
}

var nonces atomic.Int64

func getToken(hc *http.Client, base string, a app, user string) (string, error) {
	m := map[string]any{
		"userId": user, "name": user, "avatarUri": "",
		"app_id": a.AppID, "time_stamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"nonce_str": fmt.Sprintf("soak-%d", nonces.Add(1)),
	}
	b, _ := json.Marshal(m)
	p, err := params.FromJSON(b)
	if err != nil {
		return "", err
	}
	m["sign"] = signature.Sign(p, a.AppSecret)
	b, _ = json.Marshal(m)
	e, err := post(hc, base+"/user/getToken", string(b), "")
	if err != nil {
		return "", err
	}
	var d struct{ Token string }
	return d.Token, json.Unmarshal(e.Data, &d)
}

// metrics reads chatd's /metrics into a map of unlabelled samples.
func metrics(hc *http.Client, base string) (map[string]float64, error) {
	res, err := hc.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(res.Body, 1<<20))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}
