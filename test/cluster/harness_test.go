// Package cluster_test runs several chatd processes as one cluster on a shared
// PostgreSQL and a shared broker (Redis or NATS) and checks, from real
// clients, that they behave as one server: delivery across nodes, unread
// counts, and recovery from node and broker outages.
package cluster_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/signature"
	"github.com/chatd/chatd/internal/testenv"
)

const adminKey = "cluster-admin-key"

// waitLimit bounds every wait for something that should happen "soon". It is a
// deadlock guard, not a performance assertion: the machine is shared and slow.
const waitLimit = 30 * time.Second

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

// TestMain removes the chatd binary built for the package.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// chatdBinary builds cmd/chatd once per package run, without the race
// detector: only the test process is instrumented.
func chatdBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "chatd-cluster-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "chatd")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/chatd/chatd/cmd/chatd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freshSchema creates a PostgreSQL schema for one test, drops it when the test
// ends, and returns a store URL whose search_path selects it.
func freshSchema(t testing.TB) string {
	t.Helper()
	base := testenv.URL(t, "CHATD_TEST_POSTGRES")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	schema := "chatd_cluster_" + randHex(6)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("CHATD_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// proc is a child process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(t testing.TB, name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to go.
func (p *proc) kill() {
	if !p.exited() {
		p.cmd.Process.Kill()
	}
	<-p.done
}

// stop asks the process to shut down gracefully, then kills it if it lingers.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

// tail returns the end of the process log.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// node is one chatd process of a cluster.
type node struct {
	idx  int
	base string // http://127.0.0.1:PORT
	p    *proc
}

// cluster is a set of chatd nodes sharing a store, a broker and a blob directory.
type cluster struct {
	t      testing.TB
	bin    string
	store  string
	broker string
	blobs  string // CHATD_BLOBS
	dir    string
	mu     sync.Mutex // guards nodes: a restart replaces one while clients look them up
	nodes  []*node
	app    appCreds
	http   *http.Client
	env    []string // more settings of every node (withEnv)
}

// withEnv gives every node of the cluster these KEY=value settings; unlike
// t.Setenv it lets the test run in parallel.
func withEnv(kv ...string) func(*cluster) {
	return func(c *cluster) { c.env = append(c.env, kv...) }
}

type appCreds struct {
	AppName   string `json:"appName"`
	AppID     string `json:"appId"`
	AppSecret string `json:"appSecret"`
}

// newCluster starts n nodes at once (concurrent migrations included) and
// registers an application.
func newCluster(t testing.TB, n int, storeURL, brokerURL string, opts ...func(*cluster)) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{
		t: t, bin: chatdBinary(t), store: storeURL, broker: brokerURL,
		blobs: "file:" + filepath.Join(dir, "files"), dir: dir, nodes: make([]*node, n),
		http: &http.Client{Timeout: 15 * time.Second},
	}
	for _, o := range opts {
		o(c)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, nd := range c.nodes {
			if nd != nil {
				nd.p.stop()
			}
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				if nd != nil {
					t.Logf("node %d log (end):\n%s", nd.idx, nd.p.tail())
				}
			}
		}
	})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd, err := c.launch(i)
			c.mu.Lock()
			c.nodes[i], errs[i] = nd, err
			c.mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	r := c.do(0, "POST", "/app/create", `{"appName":"cluster","description":"multi-node test"}`, "Bearer "+adminKey)
	if r.Status != 1 {
		t.Fatalf("app create: %+v", r)
	}
	if err := json.Unmarshal(r.Data, &c.app); err != nil {
		t.Fatal(err)
	}
	return c
}

// launch starts node i on a free port and waits until it is ready, retrying
// with another port if the chosen one was taken meanwhile.
func (c *cluster) launch(i int) (*node, error) {
	var last error
	for attempt := range 3 {
		port := testenv.FreePort(c.t)
		env := append(os.Environ(),
			"CHATD_ADDR=127.0.0.1:"+strconv.Itoa(port),
			"CHATD_STORE="+c.store,
			"CHATD_BROKER="+c.broker,
			"CHATD_BLOBS="+c.blobs,
			"CHATD_ADMIN_KEY="+adminKey,
			"CHATD_LOG_LEVEL=warn",
			"CHATD_SHUTDOWN_TIMEOUT=5s",
			// These tests are about clustering, not abuse limits: every client
			// connects from 127.0.0.1 and the fault test sends in bursts.
			"CHATD_USER_SEND_RATE=0",
			"CHATD_HANDSHAKE_RATE_IP=0",
			"CHATD_USER_EVENT_RATE=0",
		)
		env = append(env, c.env...)
		logPath := filepath.Join(c.dir, fmt.Sprintf("node%d.log", i))
		p, err := startProc(c.t, fmt.Sprintf("node%d", i), logPath, env, c.bin)
		if err != nil {
			return nil, err
		}
		nd := &node{idx: i, base: "http://127.0.0.1:" + strconv.Itoa(port), p: p}
		if err := c.waitReady(nd); err != nil {
			p.kill()
			last = fmt.Errorf("node %d (attempt %d): %w\n%s", i, attempt+1, err, p.tail())
			continue
		}
		return nd, nil
	}
	return nil, last
}

func (c *cluster) waitReady(nd *node) error {
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if nd.p.exited() {
			return fmt.Errorf("exited: %v", nd.p.err)
		}
		if code, _ := c.readyz(nd); code == http.StatusOK {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not ready in time")
}

// readyz returns the HTTP status of /readyz (0 when the node cannot be reached).
func (c *cluster) readyz(nd *node) (int, error) {
	res, err := c.http.Get(nd.base + "/readyz")
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// restart starts node i again (on a new port) after it was killed.
func (c *cluster) restart(i int) {
	c.t.Helper()
	nd, err := c.launch(i)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[i] = nd
	c.mu.Unlock()
}

// node returns node i.
func (c *cluster) node(i int) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

type reply struct {
	HTTP    int
	Status  int             `json:"status"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// tryDo sends one request to node i and decodes the envelope.
func (c *cluster) tryDo(i int, method, path, body, auth string) (reply, error) {
	req, err := http.NewRequest(method, c.node(i).base+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return reply{}, err
	}
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		return reply{}, fmt.Errorf("%s %s: not an envelope: %q", method, path, b)
	}
	r.HTTP = res.StatusCode
	return r, nil
}

func (c *cluster) do(i int, method, path, body, auth string) reply {
	c.t.Helper()
	r, err := c.tryDo(i, method, path, body, auth)
	if err != nil {
		c.t.Fatalf("node %d: %v", i, err)
	}
	return r
}

// signed returns a JSON body carrying fields plus node-chat's signature.
func (c *cluster) signed(fields map[string]any) string {
	c.t.Helper()
	m := map[string]any{"app_id": c.app.AppID, "time_stamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "nonce_str": randHex(8)}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	p, err := params.FromJSON(b)
	if err != nil {
		c.t.Fatal(err)
	}
	m["sign"] = signature.Sign(p, c.app.AppSecret)
	b, _ = json.Marshal(m)
	return string(b)
}

// call makes a signed API call on node i and fails the test unless it succeeds.
func (c *cluster) call(i int, method, path string, fields map[string]any) reply {
	c.t.Helper()
	r := c.do(i, method, path, c.signed(fields), "")
	if r.Status != 1 {
		c.t.Fatalf("node %d %s %s: %+v", i, method, path, r)
	}
	return r
}

func (c *cluster) token(i int, userID string) string {
	c.t.Helper()
	r := c.call(i, "POST", "/user/getToken", map[string]any{"userId": userID, "name": displayName(userID), "avatarUri": "https://a.example/" + userID})
	var d struct{ Token string }
	json.Unmarshal(r.Data, &d)
	return d.Token
}

func displayName(userID string) string { return "Name " + userID }

// sessionsHTTP lists a user's sessions through node i's HTTP API.
func (c *cluster) sessionsHTTP(i int, userID string) []listedSession {
	c.t.Helper()
	r := c.call(i, "GET", "/user/sessions", map[string]any{"userId": userID})
	var ss []listedSession
	if err := json.Unmarshal(r.Data, &ss); err != nil {
		c.t.Fatalf("sessions: %v: %s", err, r.Data)
	}
	return ss
}

// liveNodes are the indexes of nodes whose process runs.
func (c *cluster) liveNodes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, nd := range c.nodes {
		if nd != nil && !nd.p.exited() {
			out = append(out, i)
		}
	}
	return out
}

// privateServer is a broker server owned by one test, so that it can be killed
// and restarted without touching the machine's shared services.
type privateServer struct {
	t    testing.TB
	name string
	bin  string
	args []string
	log  string
	port int
	p    *proc
}

func newPrivateRedis(t testing.TB) *privateServer {
	bin := testenv.Binary(t, "/usr/bin/redis-server")
	dir := t.TempDir()
	port := testenv.FreePort(t)
	s := &privateServer{t: t, name: "redis", bin: bin, port: port, log: filepath.Join(dir, "redis.log"),
		args: []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}}
	s.start()
	t.Cleanup(func() { s.p.kill() })
	return s
}

func newPrivateNATS(t testing.TB) *privateServer {
	bin := testenv.Binary(t, "/usr/sbin/nats-server")
	dir := t.TempDir()
	port := testenv.FreePort(t)
	s := &privateServer{t: t, name: "nats", bin: bin, port: port, log: filepath.Join(dir, "nats.log"),
		args: []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}}
	s.start()
	t.Cleanup(func() { s.p.kill() })
	return s
}

func (s *privateServer) url() string {
	if s.name == "redis" {
		return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", s.port)
}

// start runs the server and waits until it accepts connections.
func (s *privateServer) start() {
	s.t.Helper()
	p, err := startProc(s.t, s.name, s.log, os.Environ(), s.bin, s.args...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.p = p
	testenv.WaitFor(s.t, s.name+" to accept connections", func() bool {
		if p.exited() {
			s.t.Fatalf("%s exited: %v\n%s", s.name, p.err, p.tail())
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), time.Second)
		if err != nil {
			return false
		}
		defer conn.Close()
		if s.name == "redis" {
			conn.SetDeadline(time.Now().Add(time.Second))
			conn.Write([]byte("PING\r\n"))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			return strings.HasPrefix(line, "+PONG")
		}
		return true
	})
}
