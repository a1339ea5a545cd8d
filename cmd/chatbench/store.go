package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/postgres"
	"github.com/chatd/chatd/internal/store/sqlite"
)

// storeSends measures durable one-to-one sends in the store alone: conc
// goroutines calling Send (each returns after its commit) for dur.
func storeSends(ctx context.Context, st store.Store, conc int, dur time.Duration) (float64, error) {
	conv, err := st.OpenPrivate(ctx, "benchapp", "alice", "bob")
	if err != nil {
		return 0, err
	}
	content := json.RawMessage(`{"content":"benchmark message"}`)
	var n atomic.Int64
	var firstErr atomic.Value
	dctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sender := "alice"
			if i%2 == 1 {
				sender = "bob"
			}
			for dctx.Err() == nil {
				_, _, err := st.Send(ctx, store.NewMessage{ConversationID: conv.ID, SenderID: sender, Type: 1, Content: content})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// storeBench runs the store-only scenario: chatd's SQLite store (and
// PostgreSQL when CHATD_TEST_POSTGRES is set) against better-sqlite3 doing
// the same transaction in Node.
func storeBench(ctx context.Context, cfg runConfig, dir string, logf func(string, ...any)) (chatdF, peerF figures, err error) {
	chatdF, peerF = figures{}, figures{}
	// Two interleaved rounds, best of each: the disk is shared, and one
	// checkpoint stalled by another process's fsync would decide a single try.
	for round := range 2 {
		st, err := sqlite.Open(ctx, filepath.Join(dir, fmt.Sprintf("store-chatd-%d.db", round)))
		if err != nil {
			return nil, nil, err
		}
		for _, conc := range []int{1, cfg.StoreConc} {
			rate, err := storeSends(ctx, st, conc, cfg.StoreDur)
			if err != nil {
				st.Close()
				return nil, nil, fmt.Errorf("sqlite sends: %w", err)
			}
			logf("  chatd sqlite store, %d senders: %.0f msgs/s", conc, rate)
			k := "sqlite_msgs_per_s_c" + strconv.Itoa(conc)
			chatdF[k] = max(chatdF[k], rate)
		}
		st.Close()

		out, err := exec.CommandContext(ctx, "node", filepath.Join(cfg.PeerDir, "storebench.mjs"),
			filepath.Join(dir, fmt.Sprintf("store-peer-%d.db", round)), strconv.FormatFloat(cfg.StoreDur.Seconds(), 'f', 1, 64)).Output()
		if err != nil {
			return nil, nil, fmt.Errorf("node store bench: %w", err)
		}
		var nr struct {
			PerSec float64 `json:"msgsPerSec"`
		}
		if err := json.Unmarshal(out, &nr); err != nil {
			return nil, nil, fmt.Errorf("node store bench output %q: %w", out, err)
		}
		logf("  peer better-sqlite3 (synchronous, one at a time): %.0f msgs/s", nr.PerSec)
		// Node runs one transaction at a time whatever the number of callers.
		for _, conc := range []int{1, cfg.StoreConc} {
			k := "sqlite_msgs_per_s_c" + strconv.Itoa(conc)
			peerF[k] = max(peerF[k], nr.PerSec)
		}
	}

	if pg := os.Getenv("CHATD_TEST_POSTGRES"); pg != "" {
		rate, err := postgresSends(ctx, pg, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("postgres sends: %w", err)
		}
		logf("  chatd postgres store, %d senders: %.0f msgs/s", cfg.StoreConc, rate)
		chatdF["postgres_msgs_per_s_c"+strconv.Itoa(cfg.StoreConc)] = rate
	}
	return chatdF, peerF, nil
}

// postgresSends runs the send measurement in a fresh schema, dropped after.
func postgresSends(ctx context.Context, pgURL string, cfg runConfig) (float64, error) {
	b := make([]byte, 6)
	rand.Read(b)
	schema := "chatbench_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	defer conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	u := pgURL
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	u += sep + "search_path=" + url.QueryEscape(schema)
	st, err := postgres.Open(ctx, u)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	return storeSends(ctx, st, cfg.StoreConc, cfg.StoreDur)
}
