package gateway

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/chat"
)

// Notifier is the chat service's chat.Notifier: it publishes committed
// changes on the broker, and every node's Gateway (this one's included)
// delivers them to its sockets. It is built before the chat service and
// handed to chat.New, so that the service never changes after it is made.
type Notifier struct {
	broker broker.Broker
	log    *slog.Logger
}

var _ chat.Notifier = (*Notifier)(nil)

// NewNotifier returns a notifier publishing on br; log may be nil.
func NewNotifier(br broker.Broker, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{broker: br, log: log}
}

// MessageSent publishes a committed message to every node.
func (n *Notifier) MessageSent(ctx context.Context, d chat.Delivery) {
	n.publish(ctx, topicMessages, d)
}

// SessionRead publishes a read mark to every node.
func (n *Notifier) SessionRead(ctx context.Context, r chat.ReadMark) {
	n.publish(ctx, topicReads, r)
}

// TokensRevoked tells every node to close the user's sockets.
func (n *Notifier) TokensRevoked(ctx context.Context, appID, userID string) {
	n.publish(ctx, topicRevoked, identity{AppID: appID, UserID: userID})
}

// UserChanged tells every node to forget what it remembers of the user.
func (n *Notifier) UserChanged(ctx context.Context, appID, userID string) {
	n.publish(ctx, topicUsers, identity{AppID: appID, UserID: userID})
}

// publish sends v to every node: as is through an in-process broker (no
// JSON round trip for a 1,000-recipient delivery), as JSON otherwise, and
// then as is to this node when the broker skips its own echo.
func (n *Notifier) publish(ctx context.Context, topic string, v any) {
	var err error
	if lb, ok := n.broker.(broker.Local); ok {
		err = lb.PublishValue(ctx, topic, v)
	} else {
		var b []byte
		if b, err = json.Marshal(v); err == nil {
			if es, ok := n.broker.(broker.EchoSkipper); ok {
				// This node's gateway gets v itself: no decoding of its own JSON.
				err = es.PublishEncoded(ctx, topic, v, b)
			} else {
				err = n.broker.Publish(ctx, topic, b)
			}
		}
	}
	// The message is committed: a client that misses this push recovers it with sync.
	if err != nil {
		n.log.Warn("publish failed", "topic", topic, "err", err)
	}
}
