package gateway

import (
	"context"
	"encoding/json"

	"github.com/chatd/chatd/internal/chat"
)

// Read receipts (docs/socket-protocol.md, Read receipts).
const (
	evReadReceipt    = "read-receipt"    // push: the peer of a private session read it
	evMessageReaders = "message-readers" // client: who read this message

	topicReceipts = "receipts"

	capReceipts capSet = 1 << 6
)

func init() {
	events[evMessageReaders] = (*Gateway).messageReaders
	capNames["receipts"] = capReceipts
}

var _ chat.ReceiptNotifier = (*Notifier)(nil)

// ReadReceipt publishes a read receipt to every node.
func (n *Notifier) ReadReceipt(ctx context.Context, r chat.Receipt) {
	n.publish(ctx, topicReceipts, r)
}

func (g *Gateway) messageReaders(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	var in msgArg
	if err := decodeArg(arg, &in); err != nil {
		return nil, err
	}
	return g.chat.MessageReaders(ctx, c.AppID, c.UserID, in.SID, in.MsgID)
}

// deliverReceipt pushes read-receipt to the peer's sockets on this node
// that declared receipts.
func (g *Gateway) deliverReceipt(payload any) {
	r, err := decodePayload[chat.Receipt](payload)
	if err != nil {
		g.log.Warn("bad receipt payload", "err", err)
		return
	}
	to := []chat.Recipient{{UserID: r.PeerID, Session: chat.SessionRef{SID: r.PeerSID}}}
	g.pushEach(r.AppID, to, capReceipts, evReadReceipt, func(chat.Recipient) any {
		return map[string]any{"sid": r.PeerSID, "userId": r.ReaderID, "readSeq": r.ReadSeq}
	})
}
