// Package engineio implements the Engine.IO v3 and v4 transport protocol
// (websocket and HTTP long-polling, with upgrade) used underneath Socket.IO.
package engineio

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// PacketType is an Engine.IO packet type.
type PacketType byte

// Engine.IO packet types.
const (
	Open PacketType = iota
	Close
	Ping
	Pong
	Message
	Upgrade
	Noop
)

// Packet is one decoded Engine.IO packet.
type Packet struct {
	Type   PacketType
	Data   []byte
	Binary bool // a binary message (Type is Message)
}

// ErrInvalidPacket reports a malformed packet or payload.
var ErrInvalidPacket = errors.New("engineio: invalid packet")

// DecodePacket decodes a text packet: a type digit followed by data.
func DecodePacket(b []byte) (Packet, error) {
	if len(b) == 0 || b[0] < '0' || b[0] > '6' {
		return Packet{}, ErrInvalidPacket
	}
	return Packet{Type: PacketType(b[0] - '0'), Data: b[1:]}, nil
}

// DecodeBinaryV3 decodes an EIO3 binary websocket frame, which carries the
// packet type as its first byte.
func DecodeBinaryV3(b []byte) (Packet, error) {
	if len(b) == 0 || b[0] > 6 {
		return Packet{}, ErrInvalidPacket
	}
	return Packet{Type: PacketType(b[0]), Data: b[1:], Binary: true}, nil
}

const recordSep = 0x1e

// DecodePayloadV4 decodes a v4 polling payload: packets separated by 0x1e,
// binary messages as "b"+base64.
func DecodePayloadV4(body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return nil, ErrInvalidPacket
	}
	var out []Packet
	for {
		i := indexByte(body, recordSep)
		part := body
		if i >= 0 {
			part = body[:i]
		}
		p, err := decodePolled(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
		if i < 0 {
			break
		}
		body = body[i+1:]
	}
	return out, nil
}

// decodePolled decodes one packet of a v4 polling payload.
func decodePolled(part []byte) (Packet, error) {
	if len(part) > 0 && part[0] == 'b' {
		data, err := base64.StdEncoding.DecodeString(string(part[1:]))
		if err != nil {
			return Packet{}, fmt.Errorf("%w: %w", ErrInvalidPacket, err)
		}
		return Packet{Type: Message, Data: data, Binary: true}, nil
	}
	return DecodePacket(part)
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// DecodePayloadV3 decodes a v3 polling payload. Text payloads are
// "<len>:<packet>" records where len counts UTF-16 code units and binary
// packets are "b<type><base64>"; XHR2 clients may instead send the binary
// payload format (0x00|0x01, length digits as bytes, 0xff, packet).
func DecodePayloadV3(body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return nil, ErrInvalidPacket
	}
	if body[0] <= 1 {
		return decodeBinaryPayloadV3(body)
	}
	var out []Packet
	for len(body) > 0 {
		colon := indexByte(body, ':')
		if colon <= 0 || colon > 10 {
			return nil, ErrInvalidPacket
		}
		n, err := strconv.Atoi(string(body[:colon]))
		if err != nil || n <= 0 {
			return nil, ErrInvalidPacket
		}
		body = body[colon+1:]
		// Walk n UTF-16 code units.
		end := 0
		for units := 0; units < n; {
			if end >= len(body) {
				return nil, ErrInvalidPacket
			}
			r, size := utf8.DecodeRune(body[end:])
			end += size
			units += utf16.RuneLen(r)
			if units > n {
				return nil, ErrInvalidPacket
			}
		}
		part := body[:end]
		body = body[end:]
		var p Packet
		if part[0] == 'b' {
			if len(part) < 2 || part[1] < '0' || part[1] > '6' {
				return nil, ErrInvalidPacket
			}
			data, err := base64.StdEncoding.DecodeString(string(part[2:]))
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidPacket, err)
			}
			p = Packet{Type: PacketType(part[1] - '0'), Data: data, Binary: true}
		} else if p, err = DecodePacket(part); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func decodeBinaryPayloadV3(body []byte) ([]Packet, error) {
	var out []Packet
	for len(body) > 0 {
		isBinary := body[0] == 1
		if body[0] > 1 {
			return nil, ErrInvalidPacket
		}
		n, i := 0, 1
		for ; i < len(body) && body[i] != 0xff; i++ {
			if body[i] > 9 || i > 10 {
				return nil, ErrInvalidPacket
			}
			n = n*10 + int(body[i])
		}
		if i >= len(body) || i == 1 || n == 0 || len(body)-i-1 < n {
			return nil, ErrInvalidPacket
		}
		part := body[i+1 : i+1+n]
		body = body[i+1+n:]
		var p Packet
		var err error
		if isBinary {
			p, err = DecodeBinaryV3(part)
		} else {
			p, err = DecodePacket(part)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// utf16Len is the length of s in UTF-16 code units, as JavaScript counts it.
func utf16Len(b []byte) int {
	n := 0
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
