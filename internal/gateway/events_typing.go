package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
)

// Typing indicators (docs/socket-protocol.md, Typing): ephemeral, never
// stored, pushed only to sockets that declared the typing capability.
const (
	evTyping     = "typing"      // client: I am typing in sid; push: someone is
	evTypingStop = "typing-stop" // client: I stopped; push: they stopped

	topicTyping = "typing"

	// capTyping and the other capabilities of this feature take the high
	// bits, so that capabilities added elsewhere by iota do not collide.
	capTyping capSet = 1 << 7

	// typingTTL is how long a typing indicator lasts without a repeat:
	// clients are told (expiresIn) and drop it by themselves, so a client
	// that vanishes mid-word leaves nothing behind.
	typingTTL = 6 * time.Second
	// A socket's typing events: one per second on average, bursts of 5.
	// Clients repeat typing every few seconds while the user types.
	typingRate  = 1
	typingBurst = 5

	// DefaultTypingMaxGroup is the largest conversation whose members are
	// told who is typing when Options.TypingMaxGroup is zero.
	DefaultTypingMaxGroup = 100
)

func init() {
	events[evTyping] = (*Gateway).typing
	events[evTypingStop] = (*Gateway).typingStop
	capNames["typing"] = capTyping
}

// typingNote is what a typing event publishes to every node.
type typingNote struct {
	AppID      string
	UserID     string
	Stop       bool
	Recipients []chat.Recipient
}

// typingAck answers typing: whether the members were told, and for how long
// the indicator lasts.
type typingAck struct {
	Sent      bool  `json:"sent"`
	ExpiresIn int64 `json:"expiresIn"` // milliseconds
}

func (g *Gateway) typing(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	return g.typingEvent(ctx, c, arg, false)
}

func (g *Gateway) typingStop(ctx context.Context, c caller, arg json.RawMessage) (any, error) {
	return g.typingEvent(ctx, c, arg, true)
}

func (g *Gateway) typingEvent(ctx context.Context, c caller, arg json.RawMessage, stop bool) (any, error) {
	sid, err := sidArg(arg)
	if err != nil {
		return nil, err
	}
	if sid == "" {
		return nil, fmt.Errorf("%w: missing sid", chat.ErrInvalid)
	}
	if !stop && !g.typingLimit.Allow(c.origin) {
		return nil, fmt.Errorf("%w: too many typing events from this socket (at most %d per second, bursts of %d)",
			chat.ErrRateLimited, typingRate, typingBurst)
	}
	recipients, size, err := g.chat.Audience(ctx, c.AppID, c.UserID, sid)
	if err != nil {
		return nil, err
	}
	ack := typingAck{ExpiresIn: typingTTL.Milliseconds()}
	if size > g.typingMaxGroup() || len(recipients) == 0 {
		return ack, nil
	}
	g.publish(ctx, topicTyping, typingNote{AppID: c.AppID, UserID: c.UserID, Stop: stop, Recipients: recipients})
	ack.Sent = true
	return ack, nil
}

func (g *Gateway) typingMaxGroup() int {
	if g.opts.TypingMaxGroup > 0 {
		return g.opts.TypingMaxGroup
	}
	return DefaultTypingMaxGroup
}

// publish sends v on topic to every node, as the notifier does.
func (g *Gateway) publish(ctx context.Context, topic string, v any) {
	(&Notifier{broker: g.broker, log: g.log}).publish(ctx, topic, v)
}

// deliverTyping pushes a typing note to the recipients' sockets on this
// node that declared typing.
func (g *Gateway) deliverTyping(payload any) {
	n, err := decodePayload[typingNote](payload)
	if err != nil {
		g.log.Warn("bad typing payload", "err", err)
		return
	}
	ev := evTyping
	if n.Stop {
		ev = evTypingStop
	}
	g.pushEach(n.AppID, n.Recipients, capTyping, ev, func(r chat.Recipient) any {
		if n.Stop {
			return map[string]any{"sid": r.Session.SID, "userId": n.UserID}
		}
		return map[string]any{"sid": r.Session.SID, "userId": n.UserID, "expiresIn": typingTTL.Milliseconds()}
	})
}

// pushEach emits event to the sockets on this node of each recipient that
// declared capability want, with the recipient's own payload.
func (g *Gateway) pushEach(appID string, recipients []chat.Recipient, want capSet, event string, payload func(chat.Recipient) any) {
	var socks []*socketio.Socket
	for _, r := range recipients {
		socks = g.reg.sockets(socks[:0], userKey(appID, r.UserID))
		var p *socketio.Prepared
		for _, s := range socks {
			if id, _ := s.Data().(identity); !id.Caps.has(want) {
				continue
			}
			if p == nil {
				var err error
				if p, err = socketio.Prepare("/", event, payload(r)); err != nil {
					g.log.Error("encode push", "event", event, "err", err)
					return
				}
			}
			s.EmitRaw(p)
		}
	}
}
