package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/sqlite"
)

// fixture is the data both servers are seeded with: the same users, groups,
// sessions and messages, and each server's tokens for the users.
type fixture struct {
	Users        []string // u00000…
	FanoutGroup  string   // members Users[:fanout]
	StormGroup   string   // members Users[:storm]
	HistoryA     string   // the two ends of the long private conversation
	HistoryB     string
	HistoryCount int
	HistorySID   string            // HistoryA's session of that conversation
	StormSIDs    map[string]string // user → sid in the storm group
	// ReceiptsGroup has members Users[:cfg.ReceiptsMembers] (chatd only:
	// the receipts scenario); ReceiptsSIDs are their sessions of it.
	ReceiptsGroup string
	ReceiptsSIDs  map[string]string
}

// serverKind is one of the two servers under test.
type serverKind struct {
	Name   string
	AppID  string
	Secret string // the app's secret, for the signed API (chatd only)
	Tokens map[string]string
	dir    string
	db     string // the SQLite file, whose WAL the p2p scenario reports
	start  func(ctx context.Context, addr string) (*exec.Cmd, error)
}

const (
	historyIDBase = "5eed" // seeded message ids: base + zero-padded hex seq
	seedStartMs   = 1_700_000_000_000
)

func msgIDFor(base string, i int) string {
	s := strconv.FormatInt(int64(i), 16)
	return base + strings.Repeat("0", 24-len(base)-len(s)) + s
}

func userID(i int) string { return fmt.Sprintf("u%05d", i) }

// seedChatd builds chatd's SQLite file through its own store and chat
// service (users, tokens, groups), then bulk-inserts the long conversation
// with plain SQL, as a migration tool would.
func seedChatd(ctx context.Context, dir string, cfg runConfig, fx *fixture) (*serverKind, error) {
	path := filepath.Join(dir, "chatd.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	svc := chat.New(st, chat.Options{})
	app, err := svc.CreateApp(ctx, "bench", "chatbench fixture")
	if err != nil {
		st.Close()
		return nil, err
	}
	k := &serverKind{Name: "chatd", AppID: app.ID, Secret: app.Secret, Tokens: map[string]string{}, dir: dir, db: path}
	for _, u := range append(fx.Users, fx.HistoryA, fx.HistoryB) {
		tok, err := svc.GetToken(ctx, app, u, "Name "+u, "")
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("token %s: %w", u, err)
		}
		k.Tokens[u] = tok
	}
	if err := svc.CreateGroup(ctx, app.ID, fx.FanoutGroup, "Fan-out", "", fx.Users[:cfg.FanoutMembers]); err != nil {
		st.Close()
		return nil, fmt.Errorf("fan-out group: %w", err)
	}
	if err := svc.CreateGroup(ctx, app.ID, fx.StormGroup, "Storm", "", fx.Users[:cfg.StormClients]); err != nil {
		st.Close()
		return nil, fmt.Errorf("storm group: %w", err)
	}
	storm, err := st.ConversationByKey(ctx, app.ID, store.Group, fx.StormGroup)
	if err != nil {
		st.Close()
		return nil, err
	}
	members, _, err := st.Members(ctx, storm.ID)
	if err != nil {
		st.Close()
		return nil, err
	}
	fx.StormSIDs = map[string]string{}
	for _, m := range members {
		fx.StormSIDs[m.UserID] = m.SID
	}
	if err := seedReceiptsGroup(ctx, svc, st, app.ID, cfg, fx); err != nil {
		st.Close()
		return nil, err
	}
	hist, err := st.OpenPrivate(ctx, app.ID, fx.HistoryA, fx.HistoryB)
	if err != nil {
		st.Close()
		return nil, err
	}
	ma, err := st.Member(ctx, hist.ID, fx.HistoryA)
	if err != nil {
		st.Close()
		return nil, err
	}
	fx.HistorySID = ma.SID
	if err := st.Close(); err != nil {
		return nil, err
	}

	db, err := sql.Open(sqlite.SQLDriver, path) // the driver chatd's store was built with
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // so that the pragma holds for the bulk insert
	if _, err := db.ExecContext(ctx, `PRAGMA synchronous=OFF`); err != nil {
		return nil, err
	}
	if err := bulkMessages(ctx, db, hist.ID, fx.HistoryCount, historyIDBase, []string{fx.HistoryA, fx.HistoryB}, true); err != nil {
		return nil, err
	}
	if err := bulkMessages(ctx, db, storm.ID, cfg.StormMessages, "57a1", fx.Users[:2], true); err != nil {
		return nil, err
	}
	// The seeded messages are left out of the search index: no scenario
	// searches, the peer has no search index, and indexing a million
	// messages would take minutes of the run (and, queued, would run in
	// chatd's background during the scenarios).
	if _, err := db.ExecContext(ctx, `DELETE FROM search_queue`); err != nil {
		return nil, fmt.Errorf("empty the search queue: %w", err)
	}
	k.start = func(ctx context.Context, addr string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, cfg.ChatdBin)
		cmd.Env = append(os.Environ(),
			"CHATD_ADDR="+addr, "CHATD_STORE=sqlite:"+path, "CHATD_BLOBS=file:"+filepath.Join(dir, "files"),
			"CHATD_LOG_LEVEL=warn", "CHATD_USER_SEND_RATE=0", "CHATD_APP_SEND_RATE=0",
			"CHATD_HANDSHAKE_RATE_IP=0", "CHATD_MAX_USER_SOCKETS=0", "CHATD_USER_EVENT_RATE=0", "CHATD_MAX_CONNS_PER_IP=0", "CHATD_USER_ANSWER_RATE=0",
			// The receipts scenario's group gets receipts (no other scenario marks read).
			"CHATD_RECEIPTS_MAX_GROUP="+strconv.Itoa(max(100, cfg.ReceiptsMembers)),
			// The webhooks scenario's receiver is on loopback.
			"CHATD_WEBHOOK_ALLOW_PRIVATE=true")
		return cmd, nil
	}
	return k, nil
}

// bulkMessages inserts count messages 1..count into a conversation in one
// transaction and moves its last_seq. chatd's schema has client_msg_id.
func bulkMessages(ctx context.Context, db *sql.DB, convID string, count int, idBase string, senders []string, chatdSchema bool) error {
	if count <= 0 {
		return nil
	}
	var restore func() error
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if chatdSchema {
		// chatd's triggers on messages (the search queue) are dropped for the
		// bulk insert and put back as they were: a fixture of a million
		// messages is seeded in seconds, and ends up as a stored database
		// whose history was never queued for search (see seedChatd).
		if restore, err = suspendTriggers(ctx, tx, "messages"); err != nil {
			return err
		}
	}
	q := `INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, created_at) VALUES (?, ?, ?, ?, 1, ?, ?)`
	stmt, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return fmt.Errorf("prepare bulk insert: %w", err)
	}
	defer stmt.Close()
	for i := 1; i <= count; i++ {
		if _, err := stmt.ExecContext(ctx, convID, i, msgIDFor(idBase, i), senders[i%len(senders)],
			`{"content":"history message `+strconv.Itoa(i)+`"}`, seedStartMs+int64(i)); err != nil {
			return fmt.Errorf("bulk insert %d: %w", i, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET last_seq = ?, last_msg_at = ? WHERE id = ?`, count, seedStartMs+int64(count), convID); err != nil {
		return err
	}
	if restore != nil {
		if err := restore(); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// suspendTriggers drops the triggers on table inside tx and returns a
// function that creates them again from their stored SQL.
func suspendTriggers(ctx context.Context, tx *sql.Tx, table string) (func() error, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?`, table)
	if err != nil {
		return nil, err
	}
	var names, defs []string
	for rows.Next() {
		var n, d string
		if err := rows.Scan(&n, &d); err != nil {
			rows.Close()
			return nil, err
		}
		names, defs = append(names, n), append(defs, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, err := tx.ExecContext(ctx, `DROP TRIGGER "`+n+`"`); err != nil {
			return nil, err
		}
	}
	return func() error {
		for _, d := range defs {
			if _, err := tx.ExecContext(ctx, d); err != nil {
				return fmt.Errorf("restore trigger: %w", err)
			}
		}
		return nil
	}, nil
}

// seedPeer writes a spec with the same users, groups, sids and messages and
// has the peer load it into its own SQLite file.
func seedPeer(ctx context.Context, dir string, cfg runConfig, fx *fixture) (*serverKind, error) {
	k := &serverKind{Name: "peer", AppID: "be4c4be4c4be4c4be4c4be4c", Tokens: map[string]string{}, dir: dir}
	type user struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Token string `json:"token"`
	}
	type group struct {
		ID      string      `json:"id"`
		Name    string      `json:"name"`
		Members [][2]string `json:"members"`
	}
	type history struct {
		Type    int      `json:"type"`
		Key     string   `json:"key"`
		Count   int      `json:"count"`
		IDBase  string   `json:"idBase"`
		Senders []string `json:"senders"`
		StartMs int64    `json:"startMs"`
	}
	spec := struct {
		AppID     string              `json:"appId"`
		Users     []user              `json:"users"`
		Groups    []group             `json:"groups"`
		Privates  []map[string]string `json:"privates"`
		Histories []history           `json:"histories"`
	}{AppID: k.AppID}
	for _, u := range append(fx.Users, fx.HistoryA, fx.HistoryB) {
		b := make([]byte, 18)
		rand.Read(b)
		tok := base64.RawURLEncoding.EncodeToString(b)
		k.Tokens[u] = tok
		spec.Users = append(spec.Users, user{ID: u, Name: "Name " + u, Token: tok})
	}
	fan := group{ID: fx.FanoutGroup, Name: "Fan-out"}
	for _, u := range fx.Users[:cfg.FanoutMembers] {
		fan.Members = append(fan.Members, [2]string{u, store.NewID()})
	}
	storm := group{ID: fx.StormGroup, Name: "Storm"}
	for _, u := range fx.Users[:cfg.StormClients] {
		storm.Members = append(storm.Members, [2]string{u, fx.StormSIDs[u]})
	}
	spec.Groups = []group{fan, storm}
	spec.Privates = []map[string]string{{"a": fx.HistoryA, "b": fx.HistoryB, "sidA": fx.HistorySID, "sidB": store.NewID()}}
	spec.Histories = []history{
		{Type: store.Private, Key: store.PrivateKey(fx.HistoryA, fx.HistoryB), Count: fx.HistoryCount, IDBase: historyIDBase,
			Senders: []string{fx.HistoryA, fx.HistoryB}, StartMs: seedStartMs},
		{Type: store.Group, Key: fx.StormGroup, Count: cfg.StormMessages, IDBase: "57a1", Senders: fx.Users[:2], StartMs: seedStartMs},
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	specPath := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(specPath, b, 0o644); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(dir, "peer.db")
	k.db = dbPath
	script := filepath.Join(cfg.PeerDir, "server.mjs")
	cmd := exec.CommandContext(ctx, "node", script, "--seed", specPath)
	cmd.Env = append(os.Environ(), "PEER_DB="+dbPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("seed peer: %w: %s", err, out)
	}
	k.start = func(ctx context.Context, addr string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, "node", script)
		cmd.Env = append(os.Environ(), "PEER_ADDR="+addr, "PEER_DB="+dbPath, "NODE_ENV=production")
		return cmd, nil
	}
	return k, nil
}

// running is a started server.
type running struct {
	kind   *serverKind
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	extra  []int // other processes counted as the server's (cluster)
}

// startServer runs the server on a free loopback port, pinned to cpu when
// cpu >= 0, and waits until /healthz answers.
func startServer(ctx context.Context, k *serverKind, cpu int) (*running, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd, err := k.start(ctx, addr)
	if err != nil {
		return nil, err
	}
	if cpu >= 0 {
		args := append([]string{"-c", strconv.Itoa(cpu), cmd.Path}, cmd.Args[1:]...)
		env := cmd.Env
		cmd = exec.CommandContext(ctx, "taskset", args...)
		cmd.Env = env
	}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 64 << 10}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", k.Name, err)
	}
	r := &running{kind: k, cmd: cmd, addr: addr, stderr: &stderr}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return r, nil
			}
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			r.stop()
			return nil, fmt.Errorf("%s did not start: %s", k.Name, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pid is the server process (taskset execs it, so the pid is the same).
func (r *running) pid() int { return r.cmd.Process.Pid }

// pids are the processes whose CPU is the server's: the server and, in the
// cluster scenario, the other node and the broker.
func (r *running) pids() []int { return append([]int{r.pid()}, r.extra...) }

// readCPUs reads each process's CPU time (0 for one that is gone).
func readCPUs(pids []int) []time.Duration {
	out := make([]time.Duration, len(pids))
	for i, p := range pids {
		if ps, err := readProc(p); err == nil {
			out[i] = ps.CPU
		}
	}
	return out
}

func (r *running) stop() {
	if r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
}

// procStats is a process's CPU time and resident memory.
type procStats struct {
	CPU time.Duration
	RSS int64 // bytes
}

// readProc reads /proc/<pid>/stat (utime+stime) and /proc/<pid>/status (VmRSS).
func readProc(pid int) (procStats, error) {
	var ps procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// The command name may hold spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ps, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return ps, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	ps.CPU = time.Duration(ut+st) * time.Second / clockTicks
	s, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	defer s.Close()
	sc := bufio.NewScanner(s)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			ps.RSS = kb << 10
		}
	}
	return ps, sc.Err()
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		l.w.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
