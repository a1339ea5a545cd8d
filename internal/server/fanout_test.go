package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/socketio/sioclient"
	"github.com/chatd/chatd/internal/store"
)

// TestGroupFanoutToThousands holds a few thousand authenticated sockets,
// one per member of a group, and checks that every message sent to the group
// reaches every one of them exactly once, in order, with its own session.
func TestGroupFanoutToThousands(t *testing.T) {
	t.Parallel()
	const members, messages = 2000, 5
	n := startNode(t, func(c *config.Config) { c.HandshakeRateIP = 0; c.UserSendRate = 0; c.MaxConnsPerIP = 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app, err := n.srv.Chat.App(ctx, n.app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, members)
	tokens := make([]string, members)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%04d", i)
		if tokens[i], err = n.srv.Chat.GetToken(ctx, app, ids[i], ids[i], ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.srv.Chat.CreateGroup(ctx, app.ID, "crowd", "Crowd", "", ids); err != nil {
		t.Fatal(err)
	}
	conv, err := n.srv.Store.ConversationByKey(ctx, app.ID, store.Group, "crowd")
	if err != nil {
		t.Fatal(err)
	}
	ms, _, err := n.srv.Store.Members(ctx, conv.ID)
	if err != nil || len(ms) != members {
		t.Fatalf("%d members, %v", len(ms), err)
	}
	sidOf := map[string]string{} // each member's own session of the group
	for _, m := range ms {
		sidOf[m.UserID] = m.SID
	}

	conns := make([]*sioclient.WS, members)
	var wg sync.WaitGroup
	errs := make(chan error, members)
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := sioclient.DialWS(ctx, n.ts.URL, 4, url.Values{})
			if err == nil {
				c.AutoPong = true
				err = c.Send(`40{"token":"` + tokens[i] + `","appId":"` + app.ID + `","capabilities":["own-messages"]}`)
			}
			if err == nil {
				var ack string
				ack, err = c.NextText()
				if err == nil && !strings.HasPrefix(ack, "40{") {
					err = fmt.Errorf("connect refused: %s", ack)
				}
			}
			if err != nil {
				errs <- fmt.Errorf("member %d: %w", i, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if got := n.srv.Gateway.Sockets(); got != members {
		t.Fatalf("%d sockets registered; want %d", got, members)
	}
	// Senders' sockets get the pushes too, marked own: they declared
	// own-messages, and an HTTP send has no origin socket to skip.
	for k := range messages {
		if r := n.call("POST", "/group/send/message", send(ids[k], "crowd", fmt.Sprintf("hello %d", k))); r.Status != 1 {
			t.Fatalf("send: %+v", r)
		}
	}

	type push struct {
		Data struct {
			Seq         int64 `json:"seq"`
			Own         bool  `json:"own"`
			SendSession struct {
				SID   string `json:"sid"`
				Title string `json:"title"`
			} `json:"sendSession"`
		} `json:"data"`
	}
	recv := make(chan error, members)
	for i, c := range conns {
		go func() {
			for k := range messages {
				text, err := c.NextText()
				if err != nil {
					recv <- fmt.Errorf("member %d, push %d: %w", i, k, err)
					return
				}
				var frame []json.RawMessage
				if !strings.HasPrefix(text, "42") || json.Unmarshal([]byte(text[2:]), &frame) != nil || len(frame) != 2 || string(frame[0]) != `"message"` {
					recv <- fmt.Errorf("member %d: unexpected frame %.80s", i, text)
					return
				}
				var p push
				json.Unmarshal(frame[1], &p)
				if p.Data.Seq != int64(k+1) || p.Data.SendSession.Title != "Crowd" {
					recv <- fmt.Errorf("member %d: push %d has seq %d, title %q", i, k, p.Data.Seq, p.Data.SendSession.Title)
					return
				}
				if p.Data.Own != (k == i) {
					recv <- fmt.Errorf("member %d: push %d marked own=%v", i, k, p.Data.Own)
					return
				}
				if want := sidOf[ids[i]]; p.Data.SendSession.SID != want {
					recv <- fmt.Errorf("member %d: push carries sid %s, not the member's own %s", i, p.Data.SendSession.SID, want)
					return
				}
			}
			recv <- nil
		}()
	}
	for range members {
		if err := <-recv; err != nil {
			t.Fatal(err)
		}
	}
}
