package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		in      string
		want    Packet
		nargs   int
		wantErr bool
	}{
		{in: "0", want: Packet{Type: Connect, Nsp: "/", ID: -1}},
		{in: `0{"token":"123"}`, want: Packet{Type: Connect, Nsp: "/", ID: -1, Data: json.RawMessage(`{"token":"123"}`)}},
		{in: "0/custom,", want: Packet{Type: Connect, Nsp: "/custom", ID: -1}},
		{in: "0/random", want: Packet{Type: Connect, Nsp: "/random", ID: -1}},
		{in: "0/admin?token=x,", want: Packet{Type: Connect, Nsp: "/admin", ID: -1}},
		{in: "1/custom", want: Packet{Type: Disconnect, Nsp: "/custom", ID: -1}},
		{in: `2["message",1,"2",{"3":[true]}]`, want: Packet{Type: Event, Nsp: "/", ID: -1}, nargs: 4},
		{in: `2456["message-with-ack",1]`, want: Packet{Type: Event, Nsp: "/", ID: 456}, nargs: 2},
		{in: `2/chat,7["x"]`, want: Packet{Type: Event, Nsp: "/chat", ID: 7}, nargs: 1},
		{in: `52-789["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, want: Packet{Type: BinaryEvent, Nsp: "/", ID: 789, Attachments: 2}, nargs: 3},
		{in: `312[null,[1]]`, want: Packet{Type: Ack, Nsp: "/", ID: 12}, nargs: 2},
		{in: "abc", wantErr: true},
		{in: "", wantErr: true},
		{in: "7", wantErr: true},
		{in: "2{}", wantErr: true},
		{in: "2[]", wantErr: true},
		{in: "2[1]", wantErr: true},
		{in: `2abc["message"]`, wantErr: true},
		{in: `0"str"`, wantErr: true},
		{in: `1{}`, wantErr: true},
		{in: `3[1]`, wantErr: true},
		{in: `5["m"]`, wantErr: true},
		{in: `59999-["m"]`, wantErr: true},
		{in: `21234567890123456["m"]`, wantErr: true},
		{in: `2["m"`, wantErr: true},
	}
	for _, tt := range tests {
		p, err := DecodePacket([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("DecodePacket(%q) err = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("DecodePacket(%q) err = %v, not ErrInvalidPacket", tt.in, err)
			}
			continue
		}
		if p.Type != tt.want.Type || p.Nsp != tt.want.Nsp || p.ID != tt.want.ID || p.Attachments != tt.want.Attachments ||
			string(p.Data) != string(tt.want.Data) && p.Type == Connect || len(p.Args) != tt.nargs {
			t.Errorf("DecodePacket(%q) = %+v (args %d), want %+v (args %d)", tt.in, p, len(p.Args), tt.want, tt.nargs)
		}
	}
}

func TestEncodeArgs(t *testing.T) {
	tests := []struct {
		typ   PacketType
		nsp   string
		id    int64
		name  string
		args  []any
		want  string
		natts int
	}{
		{Event, "/", -1, "hello", nil, `2["hello"]`, 0},
		{Event, "/chat", -1, "m", []any{1, "two", map[string]bool{"x": true}}, `2/chat,["m",1,"two",{"x":true}]`, 0},
		{Event, "/", -1, "raw", []any{json.RawMessage(`{"a":1}`), json.RawMessage(nil)}, `2["raw",{"a":1},null]`, 0},
		{Event, "/", -1, "bin", []any{[]byte{1}, "x", []byte{2}}, `52-["bin",{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]`, 2},
		{Ack, "/", 12, "", []any{nil, []int{1}}, `312[null,[1]]`, 0},
		{Ack, "/x", 3, "", []any{[]byte{9}}, `61-/x,3[{"_placeholder":true,"num":0}]`, 1},
		{Ack, "/", 0, "", nil, `30[]`, 0},
		{Event, "/", -1, "", nil, `2[""]`, 0},
	}
	for _, tt := range tests {
		got, atts, err := encodeArgs(tt.typ, tt.nsp, tt.id, tt.name, tt.args)
		if err != nil {
			t.Fatalf("encodeArgs: %v", err)
		}
		if string(got) != tt.want || len(atts) != tt.natts {
			t.Errorf("encodeArgs = %s (%d atts), want %s (%d)", got, len(atts), tt.want, tt.natts)
		}
		if _, err := DecodePacket(got); err != nil {
			t.Errorf("encoded %s does not decode: %v", got, err)
		}
	}
	if _, _, err := encodeArgs(Event, "/", -1, "x", []any{make(chan int)}); err == nil {
		t.Error("encoding a channel did not fail")
	}
}

func FuzzDecodeSocketIOPacket(f *testing.F) {
	for _, s := range []string{"0", `0{"token":"1"}`, "0/custom,", "1/x", `2["m",1]`, `2456["a"]`, `52-789["m",{"_placeholder":true,"num":0}]`, `312[null]`, `44{"message":"x"}`, "abc", "2{}", `5-`, `0/a?b=c`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePacket(b)
		if err != nil {
			return
		}
		if (p.Type == Event || p.Type == BinaryEvent) && len(p.Args) == 0 {
			t.Fatalf("event without a name accepted: %q", b)
		}
		// Re-encoding must decode to the same packet.
		again, err := DecodePacket(p.Encode(nil))
		if err != nil || again.Type != p.Type || again.ID != p.ID || again.Attachments != p.Attachments {
			t.Fatalf("round trip of %q: %+v, %v", b, again, err)
		}
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	msg := []byte(`2/chat,12["send-private-message",{"targetId":"abc","messageType":"text","content":"hello world"}]`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePacket(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPrepare(b *testing.B) {
	payload := map[string]any{"message": "", "status": 1, "type": "user", "data": map[string]any{"content": "hello world", "seq": 42}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Prepare("/", "message", payload); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTemplateMatchesPrepare: splicing text into a template gives the frames
// Prepare gives for the joined argument, at every offset.
func TestTemplateMatchesPrepare(t *testing.T) {
	arg := json.RawMessage(`{"a":"","b":[1,2]}`)
	for at := range len(arg) + 1 {
		tpl, err := PrepareTemplate("/chat", "message", arg, at)
		if err != nil {
			t.Fatal(err)
		}
		got := tpl.With("xyz")
		want, err := Prepare("/chat", "message", json.RawMessage(slices.Concat(arg[:at], []byte("xyz"), arg[at:])))
		if err != nil {
			t.Fatal(err)
		}
		if got.nsp != want.nsp || len(got.frames) != 1 || len(want.frames) != 1 || !bytes.Equal(got.frames[0].Data(), want.frames[0].Data()) {
			t.Fatalf("at %d: got %q, want %q", at, got.frames[0].Data(), want.frames[0].Data())
		}
	}
	if _, err := PrepareTemplate("/", "message", arg, len(arg)+1); err == nil {
		t.Fatal("an offset past the argument was accepted")
	}
}
