package socketio

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// PacketType is a Socket.IO packet type.
type PacketType byte

// Socket.IO packet types.
const (
	Connect PacketType = iota
	Disconnect
	Event
	Ack
	ConnectError
	BinaryEvent
	BinaryAck
)

// Packet is a decoded Socket.IO packet (the payload of an Engine.IO message).
type Packet struct {
	Type        PacketType
	Nsp         string
	ID          int64 // ack id; -1 when absent
	Attachments int
	Data        json.RawMessage   // raw JSON payload, nil when absent
	Args        []json.RawMessage // EVENT/ACK payload split into its elements
}

// ErrInvalidPacket reports a malformed Socket.IO packet.
var ErrInvalidPacket = errors.New("socketio: invalid packet")

const maxAttachments = 1000

// DecodePacket decodes a text Socket.IO packet:
// <type>[<attachments>-][<nsp>,][<ack id>][JSON].
func DecodePacket(b []byte) (Packet, error) {
	p := Packet{Nsp: "/", ID: -1}
	if len(b) == 0 || b[0] < '0' || b[0] > '6' {
		return p, ErrInvalidPacket
	}
	p.Type = PacketType(b[0] - '0')
	i := 1
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start || i >= len(b) || b[i] != '-' || i-start > 4 {
			return p, ErrInvalidPacket
		}
		n, _ := strconv.Atoi(string(b[start:i]))
		if n > maxAttachments {
			return p, ErrInvalidPacket
		}
		p.Attachments = n
		i++
	}
	if i < len(b) && b[i] == '/' {
		start := i
		for i < len(b) && b[i] != ',' {
			i++
		}
		p.Nsp = string(b[start:i])
		// EIO3 clients may append a query to the namespace.
		for j := range len(p.Nsp) {
			if p.Nsp[j] == '?' {
				p.Nsp = p.Nsp[:j]
				break
			}
		}
		if i < len(b) {
			i++ // the comma
		}
	}
	if start := i; i < len(b) && b[i] >= '0' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i-start > 15 {
			return p, ErrInvalidPacket
		}
		p.ID, _ = strconv.ParseInt(string(b[start:i]), 10, 64)
	}
	if i < len(b) {
		p.Data = json.RawMessage(b[i:])
	}
	if err := p.validate(); err != nil {
		return p, err
	}
	return p, nil
}

func (p *Packet) validate() error {
	switch p.Type {
	case Connect:
		if p.Data != nil && (p.Data[0] != '{' || !json.Valid(p.Data)) {
			return fmt.Errorf("%w: connect payload must be an object", ErrInvalidPacket)
		}
	case Disconnect:
		if p.Data != nil {
			return fmt.Errorf("%w: disconnect has no payload", ErrInvalidPacket)
		}
	case Event, BinaryEvent:
		if err := p.splitArgs(); err != nil {
			return err
		}
		if len(p.Args) == 0 || len(p.Args[0]) == 0 || p.Args[0][0] != '"' {
			return fmt.Errorf("%w: event payload must start with a name", ErrInvalidPacket)
		}
	case Ack, BinaryAck:
		if p.ID < 0 {
			return fmt.Errorf("%w: ack without id", ErrInvalidPacket)
		}
		return p.splitArgs()
	case ConnectError:
		if p.Data != nil && !json.Valid(p.Data) {
			return ErrInvalidPacket
		}
	}
	return nil
}

func (p *Packet) splitArgs() error {
	if len(p.Data) == 0 || p.Data[0] != '[' {
		return fmt.Errorf("%w: payload must be an array", ErrInvalidPacket)
	}
	if !json.Valid(p.Data) {
		return fmt.Errorf("%w: payload is not valid JSON", ErrInvalidPacket)
	}
	p.Args = splitArray(p.Data)
	return nil
}

// splitArray returns the elements of b, a valid JSON array, as sub-slices of
// b without surrounding whitespace: what json.Unmarshal into
// []json.RawMessage gives, without reflection or a copy per element (every
// event goes through here; docs/benchmarks.md, one-to-one CPU). b is the
// packet's own buffer, which the engine.io reader does not reuse.
func splitArray(b []byte) []json.RawMessage {
	args := make([]json.RawMessage, 0, 2)
	depth, start, inStr, esc := 0, -1, false, false
	end := func(i int) {
		if start >= 0 {
			j := i
			for j > start && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\n' || b[j-1] == '\r') {
				j--
			}
			args = append(args, json.RawMessage(b[start:j:j]))
		}
		start = -1
	}
	for i := 1; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case ',':
			if depth == 0 {
				end(i)
				continue
			}
		case ']', '}':
			if depth == 0 {
				end(i)
				return args
			}
			depth--
		case '[', '{':
			depth++
			if depth == 1 && start < 0 {
				start = i
			}
			continue
		case '"':
			inStr = true
		}
		if start < 0 {
			start = i
		}
	}
	return args
}

// appendHeader appends <type>[<n>-][<nsp>,][<id>].
func appendHeader(dst []byte, typ PacketType, attachments int, nsp string, id int64) []byte {
	dst = append(dst, '0'+byte(typ))
	if typ == BinaryEvent || typ == BinaryAck {
		dst = strconv.AppendInt(dst, int64(attachments), 10)
		dst = append(dst, '-')
	}
	if nsp != "" && nsp != "/" {
		dst = append(dst, nsp...)
		dst = append(dst, ',')
	}
	if id >= 0 {
		dst = strconv.AppendInt(dst, id, 10)
	}
	return dst
}

// Encode appends the text form of p (with Data as its payload) to dst.
func (p *Packet) Encode(dst []byte) []byte {
	dst = appendHeader(dst, p.Type, p.Attachments, p.Nsp, p.ID)
	return append(dst, p.Data...)
}

// encodeArgs encodes an EVENT (with its name first) or an ACK packet;
// []byte arguments become binary attachments.
func encodeArgs(typ PacketType, nsp string, id int64, name string, args []any) ([]byte, [][]byte, error) {
	var atts [][]byte
	body := make([]byte, 0, 64)
	body = append(body, '[')
	n := 0
	if typ == Event {
		nb, err := json.Marshal(name)
		if err != nil {
			return nil, nil, fmt.Errorf("socketio: encode event name: %w", err)
		}
		body = append(body, nb...)
		n++
	}
	for _, a := range args {
		if n > 0 {
			body = append(body, ',')
		}
		n++
		switch v := a.(type) {
		case json.RawMessage:
			if len(v) == 0 {
				body = append(body, "null"...)
			} else {
				body = append(body, v...)
			}
		case []byte:
			body = append(body, `{"_placeholder":true,"num":`...)
			body = strconv.AppendInt(body, int64(len(atts)), 10)
			body = append(body, '}')
			atts = append(atts, v)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, nil, fmt.Errorf("socketio: encode argument: %w", err)
			}
			body = append(body, b...)
		}
	}
	body = append(body, ']')
	if len(atts) > 0 {
		typ += BinaryEvent - Event // Event→BinaryEvent, Ack→BinaryAck
	}
	out := appendHeader(make([]byte, 0, len(body)+len(nsp)+24), typ, len(atts), nsp, id)
	return append(out, body...), atts, nil
}
