package engineio

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"sync"

	"github.com/gobwas/ws"
)

// Frame is an encoded outgoing packet. A Frame is immutable once built and
// may be queued to many sessions at once: its websocket bytes (header and
// payload; server frames are unmasked) are computed once and shared.
type Frame struct {
	typ    PacketType
	binary bool
	data   []byte // packet data without the type byte

	ws     []byte // websocket frame for text packets and EIO4 binary
	v3Once sync.Once
	wsV3   []byte // EIO3 binary frame (type byte prefixed)
}

// NewFrame builds a text packet of the given type.
func NewFrame(typ PacketType, data []byte) *Frame {
	f := &Frame{typ: typ, data: data}
	prefix := [1]byte{'0' + byte(typ)}
	f.ws = wsFrame(ws.OpText, prefix[:], data)
	return f
}

// MessageFrame builds a text message packet ("4"+data).
func MessageFrame(data []byte) *Frame { return NewFrame(Message, data) }

// MessageFrameParts builds the text message packet whose data is parts
// concatenated, with a single allocation for its bytes: a large answer (a
// 2.4 MB sync page) is copied once, into its websocket frame, rather than
// once per layer (docs/soak.md, Under attack).
func MessageFrameParts(parts ...[]byte) *Frame {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := wsHeader(ws.OpText, 1+n)
	b = append(b, '0'+byte(Message))
	start := len(b)
	for _, p := range parts {
		b = append(b, p...)
	}
	// data shares the websocket bytes: both are immutable.
	return &Frame{typ: Message, data: b[start:], ws: b}
}

// BinaryFrame builds a binary message packet.
func BinaryFrame(data []byte) *Frame {
	return &Frame{typ: Message, binary: true, data: data, ws: wsFrame(ws.OpBinary, nil, data)}
}

// Binary reports whether f is a binary message.
func (f *Frame) Binary() bool { return f.binary }

// Data returns the packet data without the type byte.
func (f *Frame) Data() []byte { return f.data }

func (f *Frame) wsBytes(proto int) []byte {
	if !f.binary || proto == 4 {
		return f.ws
	}
	f.v3Once.Do(func() { f.wsV3 = wsFrame(ws.OpBinary, []byte{byte(f.typ)}, f.data) })
	return f.wsV3
}

// MessageFrameSplice builds the text message packet head+mid+tail with a
// single allocation for its bytes: pushes that differ per recipient only by
// one spliced field skip the re-encoding and the copies of MessageFrame.
func MessageFrameSplice(head []byte, mid string, tail []byte) *Frame {
	b := wsHeader(ws.OpText, 1+len(head)+len(mid)+len(tail))
	b = append(b, '0'+byte(Message))
	start := len(b)
	b = append(b, head...)
	b = append(b, mid...)
	b = append(b, tail...)
	// data shares the websocket bytes: both are immutable.
	return &Frame{typ: Message, data: b[start:], ws: b}
}

func wsFrame(op ws.OpCode, prefix, data []byte) []byte {
	b := wsHeader(op, len(prefix)+len(data))
	b = append(b, prefix...)
	return append(b, data...)
}

// wsHeader returns the header of an n-byte frame, with room for the payload.
func wsHeader(op ws.OpCode, n int) []byte {
	var b []byte
	// Server frames are unmasked: a 2, 4 or 10 byte header, then the payload.
	switch {
	case n < 126:
		b = make([]byte, 2, 2+n)
		b[1] = byte(n)
	case n <= 0xffff:
		b = make([]byte, 4, 4+n)
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b = make([]byte, 10, 10+n)
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	b[0] = 0x80 | byte(op) // FIN
	return b
}

// appendPolling appends f to a polling payload in the given protocol.
func (f *Frame) appendPolling(dst []byte, proto int, first bool) []byte {
	if proto == 4 {
		if !first {
			dst = append(dst, recordSep)
		}
		if f.binary {
			dst = append(dst, 'b')
			return base64.StdEncoding.AppendEncode(dst, f.data)
		}
		dst = append(dst, '0'+byte(f.typ))
		return append(dst, f.data...)
	}
	if f.binary {
		n := 2 + base64.StdEncoding.EncodedLen(len(f.data))
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, ':', 'b', '0'+byte(f.typ))
		return base64.StdEncoding.AppendEncode(dst, f.data)
	}
	dst = strconv.AppendInt(dst, int64(1+utf16Len(f.data)), 10)
	dst = append(dst, ':', '0'+byte(f.typ))
	return append(dst, f.data...)
}

// appendBinaryPayloadV3 appends f in the EIO3 binary payload format, used
// for polling clients that take binary (no b64=1) when a payload holds a
// binary packet: 0 (text) or 1 (binary), the packet's byte length as one byte
// per decimal digit, 255, then the packet (type, then data; the type is a
// digit character for text and a byte for binary).
func (f *Frame) appendBinaryPayloadV3(dst []byte) []byte {
	kind, typ := byte(0), '0'+byte(f.typ)
	if f.binary {
		kind, typ = 1, byte(f.typ)
	}
	dst = append(dst, kind)
	for _, d := range strconv.Itoa(1 + len(f.data)) {
		dst = append(dst, byte(d-'0'))
	}
	dst = append(dst, 0xff, typ)
	return append(dst, f.data...)
}

// Shared control frames.
var (
	framePing  = NewFrame(Ping, nil)
	framePong  = NewFrame(Pong, nil)
	frameNoop  = NewFrame(Noop, nil)
	frameClose = NewFrame(Close, nil)
	frameProbe = NewFrame(Pong, []byte("probe"))
)
