// Command searchbench measures message search at scale (docs/benchmarks.md,
// "Search"): it fills a store with messages (mixed Chinese and English,
// realistic lengths) across conversations, inserted directly in big
// transactions rather than sent, then reports the latency of searches of one
// user's history, the index size as a ratio of the messages table, and the
// one-to-one send throughput of a fresh store with and without the search
// index (its trigger).
//
//	go run ./cmd/searchbench -store sqlite:/tmp/search.db
//	go run ./cmd/searchbench -store 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=searchbench'
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/postgres"
	"github.com/chatd/chatd/internal/store/sqlite"
)

var dropTrigger = flag.String("drop-trigger", "messages_search_ai", "SQLite: the trigger dropped for the runs without the index (search_docs_ai: keep the docs, drop only the FTS index)")

func main() {
	dsn := flag.String("store", "sqlite:/tmp/searchbench.db", "sqlite:PATH or postgres://…?search_path=SCHEMA (use a schema of its own)")
	messages := flag.Int("messages", 1_000_000, "messages to generate (kept when the store already has them)")
	convs := flag.Int("convs", 10_000, "conversations (80% private, 20% groups of 3-30)")
	users := flag.Int("users", 20_000, "users")
	queries := flag.Int("queries", 2000, "searches to time")
	sendFor := flag.Duration("send-for", 10*time.Second, "how long each send throughput run lasts (0: skip)")
	senders := flag.Int("senders", 64, "concurrent senders in the throughput runs")
	serial := flag.Int("serial", 1000, "sends of the serial latency runs (0: skip)")
	heavy := flag.Int("heavy", 3, "heavy users: each joins the busiest groups until it may see more than -heavy-messages (the full-text index path)")
	heavyMessages := flag.Int64("heavy-messages", 120_000, "visible messages of each heavy user")
	heavyQueries := flag.Int("heavy-queries", 500, "searches of the heavy users to time")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the send runs with the index to this file")
	flag.Parse()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))

	b := backendOf(*dsn)
	st, app := b.open(ctx)
	if n := b.count(ctx); n < int64(*messages)*9/10 {
		log.Printf("generating %d messages in %d conversations of %d users…", *messages, *convs, *users)
		t := time.Now()
		generate(ctx, st, b, app, rng, *messages, *convs, *users)
		log.Printf("generated in %s", time.Since(t).Round(time.Second))
	}
	userIDs := b.users(ctx, app)
	log.Printf("%d messages, %d users with conversations", b.count(ctx), len(userIDs))

	timeSearches(ctx, st, app, userIDs, rng, *queries)
	if *heavy > 0 && *heavyQueries > 0 {
		heavyIDs := heavyUsers(ctx, b, app, *heavy, *heavyMessages)
		fmt.Print("heavy users, ")
		timeSearches(ctx, st, app, heavyIDs, rng, *heavyQueries)
	}
	msgBytes, idxBytes := b.sizes(ctx)
	fmt.Printf("size: messages %.1f MB, search index %.1f MB, ratio %.2f\n", mb(msgBytes), mb(idxBytes), float64(idxBytes)/float64(msgBytes))
	st.Close()

	if *sendFor > 0 || *serial > 0 {
		for i, withIndex := range []bool{true, false, true, false} {
			fresh, app, cleanup := b.fresh(ctx, withIndex)
			if *cpuprofile != "" && i == 0 {
				f, err := os.Create(*cpuprofile)
				if err != nil {
					log.Fatal(err)
				}
				pprof.StartCPUProfile(f)
			}
			sendRun(ctx, fresh, app, withIndex, *senders, *sendFor, *serial)
			if *cpuprofile != "" && i == 0 {
				pprof.StopCPUProfile()
			}
			fresh.Close()
			cleanup()
		}
	}
	fmt.Println("load average:", loadavg())
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// ---- text

var (
	zhWords = strings.Fields(`我们 你们 他们 今天 明天 昨天 晚上 上午 下午 北京 上海 广州 深圳 杭州 成都 公司 项目 会议 报告 客户 产品 设计 开发 测试 上线 问题 需求 文档 邮件 电话
		时间 地点 工作 周末 吃饭 火锅 咖啡 奶茶 电影 音乐 旅行 机票 酒店 高铁 地铁 出租车 天气 下雨 太阳 朋友 家人 孩子 学校 老师 作业 考试 医院 银行 发票 合同 预算
		价格 折扣 快递 外卖 红包 生日 礼物 图片 视频 链接 文件 版本 服务器 数据库 接口 手机 电脑 网络 密码 账号 登录 注册 支付 订单 退款 发货 收到 谢谢 好的 没问题
		可以 不行 马上 稍等 辛苦 加油 哈哈 晚安 早上好 恭喜 抱歉 麻烦 确认 安排 讨论 决定 计划 目标 结果 进度 延期 提前 完成 开始 结束 准备 检查 修改 更新 发布`)
	enWords = strings.Fields(`the a to and of in is it for on that you this with we be are can have will do at not meeting project report client product design build test
		release issue doc email call time place work working weekend lunch dinner coffee tea movie music trip flight hotel train metro taxi weather rain sun friend family
		kids school teacher homework exam hospital bank invoice contract budget price discount delivery order refund shipped received thanks okay sure later tomorrow today
		tonight morning afternoon evening please check update deploy server database api phone laptop network password account login payment review draft final version
		plan goal result progress delay early finish start end ready fix change publish Zürich café résumé naïve Beijing Shanghai Shenzhen`)
)

// text is a chat line: mostly short, sometimes long; 60% Chinese, 30%
// English, 10% both.
func text(rng *rand.Rand) string {
	n := 2 + int(math.Min(60, rng.ExpFloat64()*6))
	lang := rng.IntN(10)
	var b strings.Builder
	for i := range n {
		zh := lang < 6 || (lang == 9 && rng.IntN(2) == 0)
		if zh {
			b.WriteString(zhWords[rng.IntN(len(zhWords))])
			if rng.IntN(8) == 0 {
				b.WriteString("，")
			}
		} else {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(enWords[rng.IntN(len(enWords))])
		}
	}
	return b.String()
}

// queryText is what a user types: a Chinese word or two, a Chinese
// character, an English word or a prefix of one, two English words.
func queryText(rng *rand.Rand) (kind, q string) {
	switch rng.IntN(6) {
	case 0:
		return "zh-word", zhWords[rng.IntN(len(zhWords))]
	case 1:
		return "zh-char", string([]rune(zhWords[rng.IntN(len(zhWords))])[:1])
	case 2:
		return "zh-2words", zhWords[rng.IntN(len(zhWords))] + zhWords[rng.IntN(len(zhWords))]
	case 3:
		return "en-word", enWords[20+rng.IntN(len(enWords)-20)]
	case 4:
		w := enWords[20+rng.IntN(len(enWords)-20)]
		return "en-prefix", string([]rune(w)[:min(len([]rune(w)), 3+rng.IntN(2))])
	}
	return "en-2words", enWords[20+rng.IntN(len(enWords)-20)] + " " + enWords[20+rng.IntN(len(enWords)-20)]
}

// ---- generation

type convInfo struct {
	id      string
	members []string
	n       int // messages
}

func generate(ctx context.Context, st store.Store, b backend, app string, rng *rand.Rand, messages, convs, users int) {
	user := func() string { return fmt.Sprintf("u%d", rng.IntN(users)) }
	// Zipf-like sizes: a few busy conversations, many quiet ones.
	weights := make([]float64, convs)
	var sum float64
	for i := range weights {
		weights[i] = 1 / math.Pow(float64(i+1), 0.7)
		sum += weights[i]
	}
	list := make([]convInfo, 0, convs)
	for i := range convs {
		var c store.Conversation
		var members []string
		var err error
		if i%5 == 4 {
			members = []string{user()}
			for range 2 + rng.IntN(28) {
				members = append(members, user())
			}
			slices.Sort(members)
			members = slices.Compact(members)
			c, err = st.UpsertGroup(ctx, app, fmt.Sprintf("g%d", i), "group", "", members)
		} else {
			a, bb := user(), user()
			for bb == a {
				bb = user()
			}
			members = []string{a, bb}
			c, err = st.OpenPrivate(ctx, app, a, bb)
		}
		if err != nil {
			log.Fatalf("conversation %d: %v", i, err)
		}
		list = append(list, convInfo{id: c.ID, members: members, n: max(1, int(float64(messages)*weights[i]/sum))})
	}
	b.insert(ctx, list, rng)
}

type row struct {
	conv    string
	seq     int64
	id      string
	sender  string
	content string
	at      int64
}

// rows calls fn for every message, conversation by conversation, with
// times spread over the last year (the conversations' creation and last
// message times are then set to match, as sends would have).
func rows(list []convInfo, rng *rand.Rand, fn func(row)) {
	start := time.Now().Add(-365 * 24 * time.Hour).UnixMilli()
	for _, c := range list {
		at := start + rng.Int64N(30*24*3600*1000)
		step := (time.Now().UnixMilli() - at) / int64(c.n+1)
		for seq := 1; seq <= c.n; seq++ {
			at += 1 + rng.Int64N(2*step+1)
			content, _ := json.Marshal(map[string]string{"content": text(rng)})
			fn(row{c.id, int64(seq), store.NewID(), c.members[rng.IntN(len(c.members))], string(content), at})
		}
	}
}

// ---- searches

func timeSearches(ctx context.Context, st store.Store, app string, users []string, rng *rand.Rand, n int) {
	byKind := map[string][]time.Duration{}
	var all []time.Duration
	hits, partial, errs := 0, 0, 0
	// Warm the caches with a few searches first.
	for i := range n + 50 {
		kind, q := queryText(rng)
		u := users[rng.IntN(len(users))]
		t := time.Now()
		page, err := st.Search(ctx, store.SearchQuery{AppID: app, UserID: u, Terms: store.ParseSearchTerms(q), Limit: 20})
		d := time.Since(t)
		if i < 50 {
			continue
		}
		if err != nil {
			errs++
			continue
		}
		hits += len(page.Messages)
		if page.Partial {
			partial++
		}
		byKind[kind] = append(byKind[kind], d)
		all = append(all, d)
	}
	fmt.Printf("search (%d queries, limit 20, one user's history each): %s; %.1f hits/query, %d partial, %d errors\n",
		len(all), pct(all), float64(hits)/float64(max(1, len(all))), partial, errs)
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Printf("  %-10s %s\n", k, pct(byKind[k]))
	}
}

func pct(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	slices.Sort(ds)
	p := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("p50 %s ms, p90 %s ms, p99 %s ms, max %s ms", ms(p(0.5)), ms(p(0.9)), ms(p(0.99)), ms(ds[len(ds)-1]))
}

// heavyUsers makes n users who each may see more than min messages, the
// searches that go through the full-text index (docs/architecture.md,
// "Search"): user i joins the busiest groups from the i-th on, with their
// whole history, until their groups hold min messages. Joining twice is
// harmless, so an existing store keeps its heavy users.
func heavyUsers(ctx context.Context, b backend, app string, n int, min int64) []string {
	groups, sizes := b.groups(ctx, app)
	var ids []string
	for i := range n {
		u := fmt.Sprintf("heavy%d", i)
		var sum int64
		var k int
		for j := i; j < len(groups) && sum <= min; j++ {
			b.join(ctx, app, groups[j], u)
			sum += sizes[j]
			k++
		}
		log.Printf("%s: %d groups, %d messages", u, k, sum)
		ids = append(ids, u)
	}
	return ids
}

// ---- sends

func sendRun(ctx context.Context, st store.Store, app string, withIndex bool, senders int, d time.Duration, serial int) {
	const pairs = 1000
	conv := make([]string, pairs)
	for i := range conv {
		c, err := st.OpenPrivate(ctx, app, fmt.Sprintf("s%d", i), fmt.Sprintf("r%d", i))
		if err != nil {
			log.Fatal(err)
		}
		conv[i] = c.ID
	}
	rng := rand.New(rand.NewPCG(3, 4))
	texts := make([]string, 4096)
	for i := range texts {
		b, _ := json.Marshal(map[string]string{"content": text(rng)})
		texts[i] = string(b)
	}
	label := map[bool]string{true: "index on ", false: "index off"}[withIndex]
	if serial > 0 {
		t := time.Now()
		for i := range serial {
			if _, _, err := st.Send(ctx, store.NewMessage{ConversationID: conv[i%pairs], SenderID: fmt.Sprintf("s%d", i%pairs), Type: 1,
				Content: json.RawMessage(texts[i%len(texts)]), At: time.Now()}); err != nil {
				log.Fatal(err)
			}
		}
		fmt.Printf("send serial, %s: %.3f ms per send\n", label, float64(time.Since(t).Microseconds())/1000/float64(serial))
	}
	if d <= 0 {
		return
	}
	// The store's background indexer runs as chatd runs it; after the run,
	// one search indexes what is left: the lag.
	ictx, cancel := context.WithCancel(ctx)
	var indexer sync.WaitGroup
	if b, ok := st.(store.SearchBackfiller); ok {
		indexer.Add(1)
		go func() { defer indexer.Done(); b.BackfillSearch(ictx, nil) }()
	}
	defer func() { cancel(); indexer.Wait() }()
	var n atomic.Int64
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	stop := time.Now().Add(d)
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(stop); i += senders {
				if _, _, err := st.Send(ctx, store.NewMessage{ConversationID: conv[i%pairs], SenderID: fmt.Sprintf("s%d", i%pairs), Type: 1,
					Content: json.RawMessage(texts[i%len(texts)]), At: time.Now()}); err != nil {
					log.Fatal(err)
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	t := time.Now()
	if _, err := st.Search(ctx, store.SearchQuery{AppID: app, UserID: "s0", Terms: []string{"北京"}, Limit: 1}); err != nil {
		log.Fatal(err)
	}
	// The process's CPU per message, the indexing left for the search
	// included: steadier than msg/s when other processes share the cores.
	fmt.Printf("send 1:1 durable, %d senders, %s: %.0f msg/s (then a search in %s); CPU %.0f µs per send\n", senders, label, float64(n.Load())/d.Seconds(),
		time.Since(t).Round(time.Millisecond), float64((cpuTime()-cpu0).Microseconds())/float64(n.Load()))
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ---- backends

type backend interface {
	open(ctx context.Context) (store.Store, string)
	count(ctx context.Context) int64
	insert(ctx context.Context, list []convInfo, rng *rand.Rand)
	users(ctx context.Context, app string) []string
	sizes(ctx context.Context) (messages, index int64)
	fresh(ctx context.Context, withIndex bool) (store.Store, string, func())
	groups(ctx context.Context, app string) ([]string, []int64) // busiest first
	join(ctx context.Context, app, conv, user string)
}

func backendOf(dsn string) backend {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return &sqliteBackend{path: strings.TrimPrefix(dsn, "sqlite:")}
	case strings.HasPrefix(dsn, "postgres://"):
		return &pgBackend{url: dsn}
	}
	log.Fatal("-store: sqlite:PATH or postgres://…")
	return nil
}

// benchApp is the app every generated conversation belongs to.
func benchApp(ctx context.Context, st store.Store) string {
	const id = "5ea2cb000000000000000001"
	if err := st.CreateApp(ctx, store.App{ID: id, Name: "searchbench", Secret: "s"}); err != nil && !strings.Contains(err.Error(), "exist") {
		log.Fatalf("create app: %v", err)
	}
	return id
}

type sqliteBackend struct {
	path string
	db   *sql.DB
}

func (b *sqliteBackend) open(ctx context.Context) (store.Store, string) {
	st, err := sqlite.Open(ctx, b.path)
	if err != nil {
		log.Fatal(err)
	}
	b.db, err = sql.Open("sqlite", b.path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)")
	if err != nil {
		log.Fatal(err)
	}
	return st, benchApp(ctx, st)
}

func (b *sqliteBackend) count(ctx context.Context) (n int64) {
	b.db.QueryRowContext(ctx, `SELECT count(*) FROM messages`).Scan(&n)
	return n
}

func (b *sqliteBackend) insert(ctx context.Context, list []convInfo, rng *rand.Rand) {
	var tx *sql.Tx
	var ins *sql.Stmt
	k := 0
	begin := func() {
		var err error
		if tx, err = b.db.BeginTx(ctx, nil); err != nil {
			log.Fatal(err)
		}
		if ins, err = tx.PrepareContext(ctx, `INSERT INTO messages (conversation_id, seq, msg_id, sender_id, type, content, created_at)
			VALUES (?, ?, ?, ?, 1, ?, ?)`); err != nil {
			log.Fatal(err)
		}
	}
	begin()
	rows(list, rng, func(r row) {
		if _, err := ins.ExecContext(ctx, r.conv, r.seq, r.id, r.sender, r.content, r.at); err != nil {
			log.Fatal(err)
		}
		if k++; k%50_000 == 0 {
			if err := tx.Commit(); err != nil {
				log.Fatal(err)
			}
			log.Printf("  %d", k)
			begin()
		}
	})
	for _, c := range list {
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET last_seq = ?1,
			last_msg_at = (SELECT max(created_at) FROM messages WHERE conversation_id = ?2),
			created_at = (SELECT min(created_at) FROM messages WHERE conversation_id = ?2) WHERE id = ?2`, c.n, c.id); err != nil {
			log.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
}

func (b *sqliteBackend) users(ctx context.Context, app string) []string {
	return queryStrings(b.db.QueryContext(ctx, `SELECT DISTINCT user_id FROM members WHERE app_id = ?`, app))
}

func (b *sqliteBackend) sizes(ctx context.Context) (int64, int64) {
	// dbstat, when compiled in, gives each table's pages.
	var msgs, idx int64
	if err := b.db.QueryRowContext(ctx, `SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = 'messages' OR name LIKE 'sqlite_autoindex_messages%' OR name LIKE 'messages_%'`).Scan(&msgs); err != nil {
		log.Printf("dbstat: %v", err)
	}
	b.db.QueryRowContext(ctx, `SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE 'search%' OR name LIKE 'sqlite_autoindex_search%'`).Scan(&idx)
	return msgs, idx
}

func (b *sqliteBackend) fresh(ctx context.Context, withIndex bool) (store.Store, string, func()) {
	dir, err := os.MkdirTemp("", "searchbench")
	if err != nil {
		log.Fatal(err)
	}
	path := dir + "/send.db"
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	if !withIndex {
		st.Close()
		db, _ := sql.Open("sqlite", path)
		if _, err := db.ExecContext(ctx, `DROP TRIGGER `+*dropTrigger); err != nil {
			log.Fatal(err)
		}
		db.Close()
		if st, err = sqlite.Open(ctx, path); err != nil {
			log.Fatal(err)
		}
	}
	return st, benchApp(ctx, st), func() { os.RemoveAll(dir) }
}

func (b *sqliteBackend) groups(ctx context.Context, app string) (ids []string, sizes []int64) {
	rows, err := b.db.QueryContext(ctx, `SELECT id, last_seq FROM conversations WHERE app_id = ? AND type = ? ORDER BY last_seq DESC`, app, store.Group)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			log.Fatal(err)
		}
		ids, sizes = append(ids, id), append(sizes, n)
	}
	return ids, sizes
}

func (b *sqliteBackend) join(ctx context.Context, app, conv, user string) {
	if _, err := b.db.ExecContext(ctx, `INSERT INTO members (conversation_id, app_id, user_id, sid, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, conv, app, user, store.NewID(), time.Now().UnixMilli()); err != nil {
		log.Fatal(err)
	}
}

type pgBackend struct {
	url  string
	pool *pgxpool.Pool
}

func (b *pgBackend) open(ctx context.Context) (store.Store, string) {
	st, err := postgres.Open(ctx, b.url)
	if err != nil {
		log.Fatal(err)
	}
	if b.pool, err = pgxpool.New(ctx, b.url); err != nil {
		log.Fatal(err)
	}
	return st, benchApp(ctx, st)
}

func (b *pgBackend) count(ctx context.Context) (n int64) {
	b.pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&n)
	return n
}

func (b *pgBackend) insert(ctx context.Context, list []convInfo, rng *rand.Rand) {
	// The trigger off and the trigram index dropped while copying, then
	// the index filled in one statement and rebuilt: the same content as
	// sends would give, much sooner.
	var indexdef string
	if err := b.pool.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE indexname = 'search_docs_trgm' AND schemaname = current_schema()`).Scan(&indexdef); err != nil {
		log.Fatal(err)
	}
	for _, q := range []string{`ALTER TABLE messages DISABLE TRIGGER messages_search`, `DROP INDEX search_docs_trgm`} {
		if _, err := b.pool.Exec(ctx, q); err != nil {
			log.Fatal(err)
		}
	}
	var batch [][]any
	flush := func() {
		if _, err := b.pool.CopyFrom(ctx, pgx.Identifier{"messages"}, []string{"conversation_id", "seq", "msg_id", "sender_id", "type", "content", "created_at"},
			pgx.CopyFromRows(batch)); err != nil {
			log.Fatal(err)
		}
		batch = batch[:0]
	}
	k := 0
	rows(list, rng, func(r row) {
		batch = append(batch, []any{r.conv, r.seq, r.id, r.sender, 1, r.content, r.at})
		if k++; k%50_000 == 0 {
			flush()
			log.Printf("  %d", k)
		}
	})
	flush()
	for _, c := range list {
		if _, err := b.pool.Exec(ctx, `UPDATE conversations SET last_seq = $1,
			last_msg_at = (SELECT max(created_at) FROM messages WHERE conversation_id = $2),
			created_at = (SELECT min(created_at) FROM messages WHERE conversation_id = $2) WHERE id = $2`, c.n, c.id); err != nil {
			log.Fatal(err)
		}
	}
	for _, q := range []string{`INSERT INTO search_docs (conversation_id, seq, text)
		SELECT conversation_id, seq, t FROM (SELECT conversation_id, seq, left(search_fold(search_text(type, content)), 500) AS t FROM messages) x WHERE t <> ''`,
		indexdef, `ALTER TABLE messages ENABLE TRIGGER messages_search`, `ANALYZE`} {
		if _, err := b.pool.Exec(ctx, q); err != nil {
			log.Fatal(err)
		}
	}
}

func (b *pgBackend) users(ctx context.Context, app string) []string {
	rows, err := b.pool.Query(ctx, `SELECT DISTINCT user_id FROM members WHERE app_id = $1`, app)
	if err != nil {
		log.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		log.Fatal(err)
	}
	return out
}

func (b *pgBackend) sizes(ctx context.Context) (m, i int64) {
	b.pool.QueryRow(ctx, `SELECT pg_total_relation_size('messages'), pg_total_relation_size('search_docs')`).Scan(&m, &i)
	return m, i
}

func (b *pgBackend) fresh(ctx context.Context, withIndex bool) (store.Store, string, func()) {
	schema := fmt.Sprintf("searchbench_send_%d", time.Now().UnixNano())
	u := b.url
	if i := strings.Index(u, "search_path="); i >= 0 {
		j := strings.IndexByte(u[i:], '&')
		if j < 0 {
			j = len(u) - i
		}
		u = u[:i] + u[i+j:]
	}
	u = strings.TrimRight(u, "&?")
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	u += sep + "search_path=" + schema
	st, err := postgres.Open(ctx, u)
	if err != nil {
		log.Fatal(err)
	}
	if !withIndex {
		if _, err := b.pool.Exec(ctx, `ALTER TABLE `+schema+`.messages DISABLE TRIGGER messages_search`); err != nil {
			log.Fatal(err)
		}
	}
	return st, benchApp(ctx, st), func() {
		if _, err := b.pool.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			log.Print(err)
		}
	}
}

func queryStrings(rows *sql.Rows, err error) []string {
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

func (b *pgBackend) groups(ctx context.Context, app string) (ids []string, sizes []int64) {
	rows, err := b.pool.Query(ctx, `SELECT id, last_seq FROM conversations WHERE app_id = $1 AND type = $2 ORDER BY last_seq DESC`, app, store.Group)
	if err != nil {
		log.Fatal(err)
	}
	var id string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		ids, sizes = append(ids, id), append(sizes, n)
		return nil
	}); err != nil {
		log.Fatal(err)
	}
	return ids, sizes
}

func (b *pgBackend) join(ctx context.Context, app, conv, user string) {
	if _, err := b.pool.Exec(ctx, `INSERT INTO members (conversation_id, app_id, user_id, sid, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`, conv, app, user, store.NewID(), time.Now().UnixMilli()); err != nil {
		log.Fatal(err)
	}
}
