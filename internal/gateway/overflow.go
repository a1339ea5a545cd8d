package gateway

import (
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
)

// overflow handles a payload that this node's fan-out queue was too full to
// take. A push is never lost silently: the sockets that should have received
// it are closed, and their clients reconnect and sync what they missed.
// Revocations and user changes, which must not be lost, are applied at once.
func (g *Gateway) overflow(topic string, payload any) {
	var keys []string
	switch topic {
	case topicRevoked:
		g.disconnectRevoked(payload)
		return
	case topicUsers:
		g.forgetUser(payload)
		return
	case topicMessages:
		d, err := decodePayload[chat.Delivery](payload)
		if err != nil {
			g.log.Warn("bad delivery payload", "err", err)
			return
		}
		for _, r := range d.Recipients {
			keys = append(keys, userKey(d.AppID, r.UserID))
		}
	case topicReads:
		r, err := decodePayload[chat.ReadMark](payload)
		if err != nil {
			g.log.Warn("bad read payload", "err", err)
			return
		}
		keys = append(keys, userKey(r.AppID, r.UserID))
	case topicUpdates:
		u, err := decodePayload[chat.Update](payload)
		if err != nil {
			g.log.Warn("bad update payload", "err", err)
			return
		}
		for _, r := range u.Recipients {
			keys = append(keys, userKey(u.AppID, r.UserID))
		}
	default:
		return
	}
	var socks []*socketio.Socket
	for _, k := range keys {
		socks = g.reg.sockets(socks, k)
	}
	for _, s := range socks {
		s.Close()
	}
	g.overflowed.Add(uint64(len(socks)))
	g.log.Warn("push queue full: closed the recipients' sockets so that they resync", "topic", topic, "sockets", len(socks))
}

// OverflowDisconnects returns how many sockets were closed because a push to
// them could not be queued on this node.
func (g *Gateway) OverflowDisconnects() uint64 { return g.overflowed.Load() }
