package engineio

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		in      string
		typ     PacketType
		data    string
		wantErr bool
	}{
		{"4hello", Message, "hello", false},
		{"2", Ping, "", false},
		{"2probe", Ping, "probe", false},
		{"6", Noop, "", false},
		{"", 0, "", true},
		{"7", 0, "", true},
		{"abc", 0, "", true},
	}
	for _, tt := range tests {
		p, err := DecodePacket([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("DecodePacket(%q) err = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && (p.Type != tt.typ || string(p.Data) != tt.data) {
			t.Errorf("DecodePacket(%q) = %v %q, want %v %q", tt.in, p.Type, p.Data, tt.typ, tt.data)
		}
	}
}

func TestPayloadV4(t *testing.T) {
	tests := []struct {
		in      string
		want    []Packet
		wantErr bool
	}{
		{"4hello", []Packet{{Type: Message, Data: []byte("hello")}}, false},
		{"4test1\x1e4test2\x1e3", []Packet{{Type: Message, Data: []byte("test1")}, {Type: Message, Data: []byte("test2")}, {Type: Pong, Data: []byte{}}}, false},
		{"4hello\x1ebAQIDBA==", []Packet{{Type: Message, Data: []byte("hello")}, {Type: Message, Data: []byte{1, 2, 3, 4}, Binary: true}}, false},
		{"", nil, true},
		{"abc", nil, true},
		{"4a\x1e", nil, true},
		{"b!!", nil, true},
	}
	for _, tt := range tests {
		got, err := DecodePayloadV4([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("DecodePayloadV4(%q) err = %v", tt.in, err)
			continue
		}
		if !samePackets(got, tt.want) {
			t.Errorf("DecodePayloadV4(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestPayloadV3(t *testing.T) {
	tests := []struct {
		in      string
		want    []Packet
		wantErr bool
	}{
		{"6:4hello", []Packet{{Type: Message, Data: []byte("hello")}}, false},
		{"1:22:40", []Packet{{Type: Ping, Data: []byte{}}, {Type: Message, Data: []byte("0")}}, false},
		// "é" is one UTF-16 unit, "😀" is two.
		{"4:4é😀1:2", []Packet{{Type: Message, Data: []byte("é😀")}, {Type: Ping, Data: []byte{}}}, false},
		{"10:b4AQIDBA==", []Packet{{Type: Message, Data: []byte{1, 2, 3, 4}, Binary: true}}, false},
		{"\x00\x06\xff4hello\x01\x05\xff\x04\x01\x02\x03\x04", []Packet{{Type: Message, Data: []byte("hello")}, {Type: Message, Data: []byte{1, 2, 3, 4}, Binary: true}}, false},
		{"", nil, true},
		{"abc", nil, true},
		{"5:4a", nil, true},
		{"0:", nil, true},
		{":4a", nil, true},
		{"2:4😀", nil, true},
		{"4:b4!!", nil, true},
		{"\x00\x09\xff4a", nil, true},
	}
	for _, tt := range tests {
		got, err := DecodePayloadV3([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("DecodePayloadV3(%q) err = %v", tt.in, err)
			continue
		}
		if !samePackets(got, tt.want) {
			t.Errorf("DecodePayloadV3(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestEncodePayloadRoundTrip(t *testing.T) {
	frames := []*Frame{MessageFrame([]byte("héllo 😀")), BinaryFrame([]byte{0, 1, 2, 255}), framePing, NewFrame(Open, []byte(`{"sid":"x"}`))}
	for _, proto := range []int{3, 4} {
		var buf []byte
		for i, f := range frames {
			buf = f.appendPolling(buf, proto, i == 0)
		}
		var got []Packet
		var err error
		if proto == 4 {
			got, err = DecodePayloadV4(buf)
		} else {
			got, err = DecodePayloadV3(buf)
		}
		if err != nil {
			t.Fatalf("v%d: decode %q: %v", proto, buf, err)
		}
		if len(got) != len(frames) {
			t.Fatalf("v%d: got %d packets, want %d", proto, len(got), len(frames))
		}
		for i, f := range frames {
			if got[i].Type != f.typ || got[i].Binary != f.binary || !bytes.Equal(got[i].Data, f.data) {
				t.Errorf("v%d packet %d = %+v, want %v %q", proto, i, got[i], f.typ, f.data)
			}
		}
	}
}

func samePackets(a, b []Packet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Binary != b[i].Binary || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{"4hello", "2probe", "", "7", "0{}", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePacket(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("unexpected error type %v", err)
			}
			return
		}
		if p.Type > Noop {
			t.Fatalf("type %d out of range", p.Type)
		}
	})
}

func FuzzDecodePayloadV4(f *testing.F) {
	for _, s := range []string{"4hello", "4a\x1e4b", "bAQID", "4hello\x1ebAQIDBA==", "", "\x1e\x1e", "b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := DecodePayloadV4(b)
		if err == nil && len(ps) == 0 {
			t.Fatal("no packets and no error")
		}
		if err == nil {
			var buf []byte
			for i, p := range ps {
				buf = frameOf(p).appendPolling(buf, 4, i == 0)
			}
			again, err := DecodePayloadV4(buf)
			if err != nil || !samePackets(ps, again) {
				t.Fatalf("round trip of %q: %q, %v", b, buf, err)
			}
		}
	})
}

func FuzzDecodePayloadV3(f *testing.F) {
	for _, s := range []string{"6:4hello", "1:22:40", "4:4é😀", "10:b4AQIDBA==", "\x00\x06\xff4hello", "\x01\x02\xff\x04\x01", "", "99999999999:4", "2:4\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := DecodePayloadV3(b)
		if err != nil {
			return
		}
		if len(ps) == 0 {
			t.Fatal("no packets and no error")
		}
		var buf []byte
		for i, p := range ps {
			if p.Binary && p.Type != Message {
				return // only binary messages are ever sent
			}
			buf = frameOf(p).appendPolling(buf, 3, i == 0)
		}
		again, err := DecodePayloadV3(buf)
		if err != nil || !samePackets(ps, again) {
			t.Fatalf("round trip of %q: %q, %v", b, buf, err)
		}
	})
}

func frameOf(p Packet) *Frame {
	if p.Binary {
		return BinaryFrame(p.Data)
	}
	return NewFrame(p.Type, p.Data)
}

func BenchmarkDecodePayloadV4(b *testing.B) {
	body := []byte("42[\"message\",{\"content\":\"hello world\"}]\x1e3\x1ebAQIDBAUGBwg=\x1e42[\"typing\"]")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePayloadV4(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePayloadV3(b *testing.B) {
	body := []byte("39:42[\"message\",{\"content\":\"hello world\"}]1:214:b4AQIDBAUGBwg=")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePayloadV3(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePolling(b *testing.B) {
	frames := []*Frame{MessageFrame([]byte(`2["message",{"content":"hello world"}]`)), framePing, BinaryFrame([]byte{1, 2, 3, 4, 5, 6, 7, 8})}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		for _, proto := range []int{3, 4} {
			buf = buf[:0]
			for i, f := range frames {
				buf = f.appendPolling(buf, proto, i == 0)
			}
		}
	}
}

func BenchmarkMessageFrame(b *testing.B) {
	data := []byte(`2["message",{"message":"","status":1,"data":{"content":"hello world"},"type":"user"}]`)
	b.ReportAllocs()
	for b.Loop() {
		_ = MessageFrame(data)
	}
}

func TestWSFrameMatchesLibrary(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		data := bytes.Repeat([]byte{'x'}, n)
		got := wsFrame(ws.OpBinary, nil, data)
		want := ws.MustCompileFrame(ws.NewBinaryFrame(data))
		if !bytes.Equal(got, want) {
			t.Errorf("len %d: frame differs from gobwas/ws", n)
		}
	}
}

// TestMessageFrameSplice: a spliced frame is byte for byte the frame of the
// joined data, on both transports, across the websocket length encodings.
func TestMessageFrameSplice(t *testing.T) {
	for _, n := range []int{0, 100, 124, 125, 126, 65534, 65535, 70000} {
		head := bytes.Repeat([]byte("h"), n/2)
		mid := strings.Repeat("m", n%7)
		tail := bytes.Repeat([]byte("t"), n-n/2)
		got := MessageFrameSplice(head, mid, tail)
		want := MessageFrame(slices.Concat(head, []byte(mid), tail))
		if !bytes.Equal(got.wsBytes(4), want.wsBytes(4)) || !bytes.Equal(got.Data(), want.Data()) {
			t.Fatalf("n=%d: spliced frame differs", n)
		}
		if p, w := got.appendPolling(nil, 3, true), want.appendPolling(nil, 3, true); !bytes.Equal(p, w) {
			t.Fatalf("n=%d: polling encoding differs", n)
		}
	}
}
