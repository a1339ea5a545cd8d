package nats

import (
	"errors"
	"strings"
)

// encodeTopic turns any topic into a single NATS subject token. Letters, digits and '-'
// are kept; every other byte becomes '_' and two uppercase hex digits, so '.', '*',
// '>', whitespace and non-ASCII bytes can never split or widen a subject. The empty
// topic is "_" (no valid escape is that short). The mapping is injective.
func encodeTopic(topic string) string {
	if topic == "" {
		return "_"
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(topic))
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
		}
	}
	return b.String()
}

var errBadToken = errors.New("nats broker: malformed subject token")

// decodeTopic reverses encodeTopic.
func decodeTopic(tok string) (string, error) {
	if tok == "_" {
		return "", nil
	}
	out := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			out = append(out, c)
		case c == '_' && i+2 < len(tok) && isUpperHex(tok[i+1]) && isUpperHex(tok[i+2]):
			out = append(out, unhex(tok[i+1])<<4|unhex(tok[i+2]))
			i += 2
		default:
			return "", errBadToken
		}
	}
	if len(out) == 0 {
		return "", errBadToken
	}
	return string(out), nil
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}
