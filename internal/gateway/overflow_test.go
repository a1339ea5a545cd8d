package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/chat"
)

// A push that the node's fan-out queue could not take closes the sockets of
// its recipients (they reconnect and sync), and only theirs; a dropped
// revocation is applied anyway.
func TestOverflowClosesRecipients(t *testing.T) {
	l := startLive(t, "alice", "bob", "carol")
	alice, bob, carol := l.dial(t, "alice", nil, nil), l.dial(t, "bob", nil, nil), l.dial(t, "carol", nil, nil)
	if _, ok := l.g.broker.(broker.OverflowReporter); !ok {
		t.Fatal("the memory broker reports no overflow")
	}
	d := chat.Delivery{AppID: l.app.ID, Recipients: []chat.Recipient{{UserID: "alice"}, {UserID: "bob"}}}
	b, _ := json.Marshal(d)
	// As the in-process broker hands it, and as a remote one does (JSON).
	l.g.overflow(topicMessages, d)
	l.g.overflow(topicMessages, b)
	for name, c := range map[string]net.Conn{"alice": alice.Conn, "bob": bob.Conn} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s's socket is still open after a push to it was dropped", name)
		}
	}
	if got := l.g.OverflowDisconnects(); got != 2 {
		t.Fatalf("OverflowDisconnects = %d, want 2", got)
	}
	// carol was not a recipient: her socket still answers.
	carol.Send(`420["session-list"]`)
	if got, err := carol.NextText(); err != nil || !strings.HasPrefix(got, "430[null") {
		t.Fatalf("carol: %q %v", got, err)
	}
	l.g.overflow(topicRevoked, identity{AppID: l.app.ID, UserID: "carol"})
	_ = carol.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		got, err := carol.NextText()
		if err != nil {
			t.Fatalf("carol's revoked socket: %v before the namespace disconnect", err)
		}
		if got == "41" {
			break
		}
	}
}
