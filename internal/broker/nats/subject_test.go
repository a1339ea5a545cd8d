package nats

import (
	"strings"
	"testing"
)

func TestEncodeTopic(t *testing.T) {
	tests := []struct{ topic, want string }{
		{"", "_"},
		{"user-42", "user-42"},
		{"u:app1:alice", "u_3Aapp1_3Aalice"},
		{"a.b", "a_2Eb"},
		{"*", "_2A"},
		{">", "_3E"},
		{"a b\tc", "a_20b_09c"},
		{"_", "_5F"},
		{"é", "_C3_A9"},
	}
	for _, tc := range tests {
		if got := encodeTopic(tc.topic); got != tc.want {
			t.Errorf("encodeTopic(%q) = %q, want %q", tc.topic, got, tc.want)
		}
		back, err := decodeTopic(tc.want)
		if err != nil || back != tc.topic {
			t.Errorf("decodeTopic(%q) = %q, %v; want %q", tc.want, back, err, tc.topic)
		}
	}
}

func TestDecodeTopicRejects(t *testing.T) {
	for _, tok := range []string{"", "a.b", "_2", "_2a", "_G0", "a*", "__"} {
		if got, err := decodeTopic(tok); err == nil {
			t.Errorf("decodeTopic(%q) = %q, want an error", tok, got)
		}
	}
}

// FuzzEncodeTopic checks that every topic becomes one valid subject token that
// decodes back to it (so distinct topics never share a subject).
func FuzzEncodeTopic(f *testing.F) {
	for _, s := range []string{"", "room/1", "u:app:alice", "a.b.>", "* >", "_5F", "\x00\xff", "é✓"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		tok := encodeTopic(topic)
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("encodeTopic(%q) = %q: not a single safe token", topic, tok)
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] < 0x21 || tok[i] > 0x7e {
				t.Fatalf("encodeTopic(%q) = %q: byte %#x", topic, tok, tok[i])
			}
		}
		back, err := decodeTopic(tok)
		if err != nil || back != topic {
			t.Fatalf("decodeTopic(encodeTopic(%q)) = %q, %v", topic, back, err)
		}
	})
}
