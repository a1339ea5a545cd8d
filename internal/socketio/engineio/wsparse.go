package engineio

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// wsParser assembles the frames of a client websocket from whatever bytes a
// non-blocking read returned, with the checks of readMessage: every frame
// masked and without RSV bits, control frames final and at most 125 bytes,
// continuations only inside a fragmented message, and a message's length
// checked against the limit from its header, before its payload is buffered.
// An idle connection's parser holds no buffer.
type wsParser struct {
	max     int64     // largest message accepted
	partial []byte    // bytes of an unfinished frame, header included; nil when empty
	msg     []byte    // unmasked payload of the fragments received of a message
	op      ws.OpCode // the fragmented message's opcode
	started bool      // a fragmented message is being received
}

// wsFrameFunc receives each complete data message (op text or binary; the
// payload belongs to the callee) and each control frame (op close, ping or
// pong; the payload is valid during the call), in order. Returning false
// stops the parser: the rest is dropped.
type wsFrameFunc func(op ws.OpCode, payload []byte) bool

// feed parses b, calling fn for what it completes, and keeps the bytes of an
// unfinished frame. It reports false when fn stopped it or on error.
func (p *wsParser) feed(b []byte, fn wsFrameFunc) (bool, error) {
	buf := b
	pending := len(p.partial) > 0
	if pending {
		// The unfinished frame's header already passed the checks.
		p.partial = append(p.partial, b...)
		buf = p.partial
	}
	for {
		h, hl, err := parseWSHeader(buf)
		if err != nil {
			return false, err
		}
		if hl > 0 {
			if err := p.check(h); err != nil {
				return false, err
			}
		}
		if hl == 0 || int64(len(buf)-hl) < h.Length {
			p.keep(buf, pending)
			return true, nil
		}
		end := hl + int(h.Length)
		ok := p.frame(h, buf[hl:end], fn)
		buf = buf[end:]
		if !ok {
			p.partial = nil
			return false, nil
		}
		if len(buf) == 0 {
			p.partial = nil
			return true, nil
		}
	}
}

// keep stores rest, the start of an unfinished frame, for the next feed.
func (p *wsParser) keep(rest []byte, pending bool) {
	if len(rest) == 0 {
		p.partial = nil
		return
	}
	if pending && len(rest) == len(p.partial) {
		return // nothing was consumed: partial already holds exactly rest
	}
	// Only what arrived is kept; the buffer grows as the rest comes (append
	// doubles it), never from the announced length.
	np := make([]byte, len(rest))
	copy(np, rest)
	p.partial = np
}

// check applies readMessage's rules to a frame header, before any of its
// payload is kept.
func (p *wsParser) check(h ws.Header) error {
	if !h.Masked || h.Rsv != 0 {
		return ws.ErrProtocolMaskRequired
	}
	if h.OpCode.IsControl() {
		if h.Length > 125 || !h.Fin {
			return ws.ErrProtocolControlPayloadOverflow
		}
		return nil
	}
	if h.OpCode == ws.OpContinuation {
		if !p.started {
			return ws.ErrProtocolContinuationUnexpected
		}
	} else if p.started {
		return ws.ErrProtocolContinuationExpected
	}
	if int64(len(p.msg))+h.Length > p.max {
		return errTooLarge
	}
	return nil
}

// frame handles one complete, checked frame.
func (p *wsParser) frame(h ws.Header, payload []byte, fn wsFrameFunc) bool {
	if h.OpCode.IsControl() {
		c := make([]byte, len(payload))
		copy(c, payload)
		ws.Cipher(c, h.Mask, 0)
		return fn(h.OpCode, c)
	}
	if h.Fin && h.OpCode != ws.OpContinuation {
		data := make([]byte, len(payload))
		copy(data, payload)
		ws.Cipher(data, h.Mask, 0)
		return fn(h.OpCode, data)
	}
	if h.OpCode != ws.OpContinuation {
		p.started, p.op = true, h.OpCode
	}
	start := len(p.msg)
	p.msg = append(p.msg, payload...)
	ws.Cipher(p.msg[start:], h.Mask, 0)
	if !h.Fin {
		return true
	}
	msg, op := p.msg, p.op
	p.msg, p.op, p.started = nil, 0, false
	return fn(op, msg)
}

// parseWSHeader decodes the frame header at the start of b. It returns a
// header length of 0 when b does not hold the whole header yet.
func parseWSHeader(b []byte) (ws.Header, int, error) {
	var h ws.Header
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint64(b[2:]))
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	// Like gobwas/ws, only a complete header is judged.
	if h.Length < 0 {
		return h, 0, ws.ErrHeaderLengthMSB
	}
	return h, n, nil
}
