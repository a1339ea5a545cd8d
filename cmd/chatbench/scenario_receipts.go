package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/store"
)

// The group-receipts scenario (docs/benchmarks.md, Presence, group receipts
// and conversation settings): every member of a 500-member group connected,
// one of them (declaring the receipts capability) sends messages one after
// the other, and after each every other member marks the group read (the
// next message waits out the batch interval).
// Measured are the pushes the sender's socket gets per message (batched:
// at most one read-receipts a second, not one per reader), the server's CPU
// per mark-read and the broker messages. chatd only: the peer has no
// receipts.

func init() {
	metricDefs = append(metricDefs,
		metricDef{"receipts", "pushes_per_msg", "group receipts: pushes to the sender's socket per message (500 members, all read)", "pushes", true, 0, 0},
		metricDef{"receipts", "cpu_us_per_read", "group receipts: server CPU per mark-read", "µs", true, 0, 0},
		metricDef{"receipts", "broker_msgs_per_msg", "group receipts: broker messages per message (its send and every read)", "msgs", true, 0, 0},
	)
}

// receiptsSettle is how long after the last mark-read the batched pushes
// are awaited: the batch interval (1 s) and room.
const receiptsSettle = 2500 * time.Millisecond

// receiptsPause separates the messages: more than the batch interval
// (chatd's 1 s), so that one message's readers are not pushed together
// with the next one's and the pushes counted are those of one message read
// by everyone.
const receiptsPause = 1200 * time.Millisecond

// seedReceiptsGroup creates the receipts scenario's group of
// cfg.ReceiptsMembers users (none when 0) and records their sessions.
func seedReceiptsGroup(ctx context.Context, svc *chat.Service, st store.Store, appID string, cfg runConfig, fx *fixture) error {
	n := min(cfg.ReceiptsMembers, len(fx.Users))
	if n < 2 {
		return nil
	}
	if fx.ReceiptsGroup == "" {
		fx.ReceiptsGroup = "receipts"
	}
	if err := svc.CreateGroup(ctx, appID, fx.ReceiptsGroup, "Receipts", "", fx.Users[:n]); err != nil {
		return fmt.Errorf("receipts group: %w", err)
	}
	conv, err := st.ConversationByKey(ctx, appID, store.Group, fx.ReceiptsGroup)
	if err != nil {
		return err
	}
	members, _, err := st.Members(ctx, conv.ID)
	if err != nil {
		return err
	}
	fx.ReceiptsSIDs = map[string]string{}
	for _, m := range members {
		fx.ReceiptsSIDs[m.UserID] = m.SID
	}
	return nil
}

// pushCounter counts the pushes one socket gets, by event name, and the
// readers the read-receipts pushes carried.
type pushCounter struct {
	mu      sync.Mutex
	byEvent map[string]int
	readers int
}

func (c *pushCounter) onEvent(ev []byte) {
	name, arg := pushEvent(ev)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byEvent == nil {
		c.byEvent = map[string]int{}
	}
	c.byEvent[name]++
	if name == "read-receipts" {
		var p struct {
			Readers []json.RawMessage `json:"readers"`
		}
		if json.Unmarshal(arg, &p) == nil {
			c.readers += len(p.Readers)
		}
	}
}

func (c *pushCounter) counts() (total, receipts, readers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.byEvent {
		total += n
	}
	return total, c.byEvent["read-receipts"], c.readers
}

// pushEvent splits a push (a "42" packet without its prefix: `["name",arg]`)
// into its event name and first argument; a malformed one has name "".
func pushEvent(ev []byte) (name string, arg json.RawMessage) {
	var a []json.RawMessage
	if err := json.Unmarshal(ev, &a); err != nil || len(a) == 0 {
		return "", nil
	}
	if err := json.Unmarshal(a[0], &name); err != nil {
		return "", nil
	}
	if len(a) > 1 {
		arg = a[1]
	}
	return name, arg
}

// receiptsResult is what one run of the scenario counted.
type receiptsResult struct {
	Members, Messages, Reads, ReadErrors int
	Pushes, ReceiptPushes, ReadersPushed int
	BrokerMsgs                           int64
	ReadCPU                              time.Duration
}

// figures turns the counts into the scenario's figures (per message and
// per mark-read; zero when there was nothing to divide by).
func (r receiptsResult) figures() figures {
	f := figures{
		"members":     float64(r.Members),
		"messages":    float64(r.Messages),
		"reads":       float64(r.Reads),
		"read_errors": float64(r.ReadErrors),
	}
	if r.Messages > 0 {
		m := float64(r.Messages)
		f["pushes_per_msg"] = float64(r.Pushes) / m
		f["receipt_pushes_per_msg"] = float64(r.ReceiptPushes) / m
		f["broker_msgs_per_msg"] = float64(r.BrokerMsgs) / m
	}
	if r.Reads > 0 {
		f["cpu_us_per_read"] = us(r.ReadCPU) / float64(r.Reads)
		f["broker_msgs_per_read"] = float64(r.BrokerMsgs) / float64(r.Reads)
	}
	if r.ReceiptPushes > 0 {
		f["readers_per_push"] = float64(r.ReadersPushed) / float64(r.ReceiptPushes)
	}
	return f
}

func groupReceipts(ctx context.Context, e env) (figures, error) {
	if e.r.kind.Name != "chatd" || len(e.fx.ReceiptsSIDs) < 2 {
		return figures{}, nil
	}
	n := min(e.cfg.ReceiptsMembers, len(e.fx.Users))
	senderID := e.fx.Users[0]
	var pc pushCounter
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	sender, err := dialClientCaps(dctx, e.r.addr, srcIPs[0], e.r.kind.AppID, e.r.kind.Tokens[senderID], "receipts", pc.onEvent)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	defer sender.close()
	readers, got, err := connectMany(ctx, e.r, e.fx.Users, 1, n, 128, 10, nil)
	defer closeAll(readers)
	if got < n-1 {
		return nil, fmt.Errorf("connected %d of %d readers: %v", got, n-1, err)
	}
	readArgs := make([][]byte, len(readers))
	for i := range readers {
		readArgs[i] = []byte(strconv.Quote(e.fx.ReceiptsSIDs[e.fx.Users[1+i]]))
	}
	time.Sleep(500 * time.Millisecond) // the connects' own work done

	res := receiptsResult{Members: n}
	pub0, err := brokerPublished(e.r.addr)
	if err != nil {
		return nil, err
	}
	for m := range e.cfg.ReceiptsMessages {
		arg := []byte(`{"targetId":"` + e.fx.ReceiptsGroup + `","messageType":1,"content":{"content":"receipts ` + strconv.Itoa(m) + `"}}`)
		if _, err := sender.call(ctx, "send-group-message", arg); err != nil {
			return nil, fmt.Errorf("send %d: %w", m, err)
		}
		p0, err := readProc(e.r.pid())
		if err != nil {
			return nil, err
		}
		failed := markAllRead(ctx, readers, readArgs, 64)
		p1, err := readProc(e.r.pid())
		if err != nil {
			return nil, err
		}
		res.Messages++
		res.Reads += len(readers) - failed
		res.ReadErrors += failed
		res.ReadCPU += p1.CPU - p0.CPU
		time.Sleep(receiptsPause)
	}
	time.Sleep(receiptsSettle)
	pub1, err := brokerPublished(e.r.addr)
	if err != nil {
		return nil, err
	}
	res.BrokerMsgs = pub1 - pub0
	res.Pushes, res.ReceiptPushes, res.ReadersPushed = pc.counts()
	f := res.figures()
	e.logf("  chatd: %d messages in a %d-member group, %d reads (%d failed): %d pushes to the sender (%d read-receipts, %d readers), %d broker messages, read CPU %v",
		res.Messages, n, res.Reads, res.ReadErrors, res.Pushes, res.ReceiptPushes, res.ReadersPushed, res.BrokerMsgs, res.ReadCPU.Round(time.Millisecond))
	if res.ReadErrors > 0 {
		return f, fmt.Errorf("%d mark-reads failed", res.ReadErrors)
	}
	return f, nil
}

// markAllRead has every client mark its session read (set-session-read),
// conc at a time, and returns how many failed.
func markAllRead(ctx context.Context, cs []*client, args [][]byte, conc int) int {
	var failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i, c := range cs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := c.call(ctx, "set-session-read", args[i]); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(failed.Load())
}
