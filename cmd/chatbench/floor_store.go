package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"time"

	"github.com/chatd/chatd/internal/store/sqlite"
)

// The floors of the history and one-to-one scenarios (issue 17 asks for a
// floor measured in the same run beside each ratio that misses its goal):
// what the SQLite work and the socket writes alone cost per page or per
// message, measured in chatbench's own process between two rounds (the
// servers are stopped), with the SQLite driver chatbench was built with:
// modernc by default, the cgo driver with -tags sqlite_cgo,sqlite_fts5,
// named in each row's label. docs/benchmarks.md reads them against the
// servers' CPU per page and per message.

// Sizes of the frames the floors write: a page of 50 seeded messages as
// chatd sends it (measured on the seed check), and a one-to-one send's ack
// and push.
const (
	floorAckBytes  = 120
	floorPushBytes = 350
)

func init() {
	d := sqlite.DriverName
	metricDefs = append(metricDefs,
		metricDef{"history", "floor_query_us", "history: floor, the SQLite query alone per page (" + d + " driver, no JSON, no socket; same run)", "µs", true, 0, 0},
		metricDef{"history", "floor_store_us", "history: floor, the store's History call per page (" + d + " driver, no JSON, no socket; same run)", "µs", true, 0, 0},
		metricDef{"history", "floor_write_us", "history: floor, one loopback write of the page's bytes (same run)", "µs", true, 0, 0},
		metricDef{"history", "cpu_over_floor", "history: server CPU per page ÷ (store call + page write) floor", "×", true, 0, 0},
		metricDef{"p2p", "floor_commit_us", "one-to-one: floor, one SQLite commit of one message row (" + d + " driver, WAL, synchronous=NORMAL; same run)", "µs", true, 0, 0},
		metricDef{"p2p", "floor_write_us", "one-to-one: floor, two loopback writes (ack and push; same run)", "µs", true, 0, 0},
		metricDef{"p2p", "cpu_over_floor", "one-to-one: server CPU per message at the fixed rate ÷ (commit + writes) floor", "×", true, 0, 0},
	)
}

// roundFloors measures the floors of scenario name before a round; nil when
// it has none. Errors are logged and leave the floors out.
func roundFloors(ctx context.Context, name string, k *serverKind, fx *fixture, dir string, cpu int, logf func(string, ...any)) figures {
	var f figures
	var err error
	switch name {
	case "history":
		f, err = historyFloors(ctx, k, fx, cpu)
	case "p2p":
		f, err = p2pFloors(ctx, dir, cpu)
	default:
		return nil
	}
	if err != nil {
		logf("  %s floors: %v", name, err)
		return nil
	}
	logf("%s floors (%s driver): %v", name, sqlite.DriverName, f)
	return f
}

// addFloors puts a round's floors into chatd's figures and the ratio of
// each server's CPU to their sum into both.
func addFloors(name string, f, floors figures, server string) {
	if floors == nil {
		return
	}
	if server == "chatd" {
		for k, v := range floors {
			f[k] = v
		}
	}
	switch name {
	case "history":
		if c, ok := f["cpu_us_per_query"]; ok {
			f["cpu_over_floor"] = c / (floors["floor_store_us"] + floors["floor_write_us"])
		}
	case "p2p":
		if c, ok := f["cpu_us_per_msg"]; ok {
			f["cpu_over_floor"] = c / (floors["floor_commit_us"] + floors["floor_write_us"])
		}
	}
}

// processCPU is chatbench's CPU time, every thread (the driver's, the GC's).
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// historyFloors: random pages of 50 of the seeded conversation, read from
// chatd's file (1) by the bare query, scanned into reused buffers, and (2)
// through the store's History, which adds the visibility join and builds
// the messages; then one loopback write of a page's bytes.
func historyFloors(ctx context.Context, k *serverKind, fx *fixture, cpu int) (figures, error) {
	const pages = 3000
	st, err := sqlite.Open(ctx, k.db)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	m, err := st.MemberBySID(ctx, k.AppID, fx.HistoryA, fx.HistorySID)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seq := func() int64 { return int64(51 + rng.IntN(fx.HistoryCount-50)) }
	for range 100 { // warm the page cache
		if _, err := st.History(ctx, m.ConversationID, fx.HistoryA, seq(), 50); err != nil {
			return nil, err
		}
	}
	before := processCPU()
	for range pages {
		h, err := st.History(ctx, m.ConversationID, fx.HistoryA, seq(), 50)
		if err != nil || len(h) != 50 {
			return nil, fmt.Errorf("history floor: %d messages, %v", len(h), err)
		}
	}
	storeUS := us(processCPU()-before) / pages

	db, err := sql.Open(sqlite.SQLDriver, k.db)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	stmt, err := db.PrepareContext(ctx, `SELECT m.msg_id, m.seq, m.sender_id, m.type, m.content, m.client_msg_id,
		m.created_at, m.version, m.reply_seq, m.meta, u.name, u.avatar_uri
		FROM messages m JOIN conversations c ON c.id = m.conversation_id
		LEFT JOIN users u ON u.app_id = c.app_id AND u.user_id = m.sender_id
		WHERE m.conversation_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT 50`)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	var cols [12]sql.RawBytes
	dst := make([]any, len(cols))
	for i := range cols {
		dst[i] = &cols[i]
	}
	query := func() (int, error) {
		rows, err := stmt.QueryContext(ctx, m.ConversationID, seq())
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			if err := rows.Scan(dst...); err != nil {
				return n, err
			}
			n++
		}
		return n, rows.Err()
	}
	for range 100 {
		if _, err := query(); err != nil {
			return nil, err
		}
	}
	before = processCPU()
	for range pages {
		if n, err := query(); err != nil || n != 50 {
			return nil, fmt.Errorf("query floor: %d rows, %v", n, err)
		}
	}
	queryUS := us(processCPU()-before) / pages

	// A page of 50 seeded messages is about 9 KB of JSON in chatd's
	// envelope (the history scenario's seed check).
	w, err := loopbackFloorSize(ctx, cpu, 16, 20_000, 9_000)
	if err != nil {
		return nil, err
	}
	return figures{"floor_query_us": queryUS, "floor_store_us": storeUS, "floor_write_us": us(w)}, nil
}

// p2pFloors: the commit of one message row in a transaction of its own (at
// 500 msgs/s every send is its own group commit) in a file of chatd's
// journal settings, and the two writes a send costs the server (the ack
// to the sender, the push to the receiver).
func p2pFloors(ctx context.Context, dir string, cpu int) (figures, error) {
	const commits = 3000
	path := filepath.Join(dir, fmt.Sprintf("floor-%d.db", time.Now().UnixNano()))
	db, err := sql.Open(sqlite.SQLDriver, path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{`PRAGMA journal_mode=WAL`, `PRAGMA synchronous=NORMAL`,
		`CREATE TABLE msgs (conv TEXT NOT NULL, seq INTEGER NOT NULL, msg_id TEXT NOT NULL UNIQUE, body BLOB NOT NULL, PRIMARY KEY (conv, seq))`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("commit floor: %s: %w", q, err)
		}
	}
	ins, err := db.PrepareContext(ctx, `INSERT INTO msgs (conv, seq, msg_id, body) VALUES ('c', ?, ?, ?)`)
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	body := []byte(`{"content":"benchmark message, about as long as the scenario's stamped content"}`)
	commit := func(i int) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, ins).ExecContext(ctx, i, msgIDFor("f100", i), body); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	for i := range 200 {
		if err := commit(i); err != nil {
			return nil, fmt.Errorf("commit floor: %w", err)
		}
	}
	before := processCPU()
	for i := 200; i < 200+commits; i++ {
		if err := commit(i); err != nil {
			return nil, fmt.Errorf("commit floor: %w", err)
		}
	}
	commitUS := us(processCPU()-before) / commits
	ack, err := loopbackFloorSize(ctx, cpu, 200, 50_000, floorAckBytes)
	if err != nil {
		return nil, err
	}
	push, err := loopbackFloorSize(ctx, cpu, 200, 50_000, floorPushBytes)
	if err != nil {
		return nil, err
	}
	return figures{"floor_commit_us": commitUS, "floor_write_us": us(ack + push)}, nil
}
