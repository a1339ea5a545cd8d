package engineio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// clientFrame encodes a frame as a client sends it: masked with a fixed key.
func clientFrame(fin bool, op ws.OpCode, payload string) []byte {
	return rawFrame(ws.Header{Fin: fin, OpCode: op, Masked: true, Mask: [4]byte{0x1f, 0x2e, 0x3d, 0x4c}, Length: int64(len(payload))}, payload)
}

func rawFrame(h ws.Header, payload string) []byte {
	var b bytes.Buffer
	_ = ws.WriteHeader(&b, h)
	p := []byte(payload)
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	b.Write(p)
	return b.Bytes()
}

type wsEvent struct {
	op   ws.OpCode
	data string
}

func (e wsEvent) String() string { return fmt.Sprintf("%v:%q", e.op, e.data) }

// parseAll feeds each chunk to a fresh parser and returns what it produced,
// the parser and its error.
func parseAll(max int64, chunks ...[]byte) ([]wsEvent, *wsParser, error) {
	p := &wsParser{max: max}
	var got []wsEvent
	fn := func(op ws.OpCode, payload []byte) bool {
		got = append(got, wsEvent{op, string(payload)})
		return true
	}
	for _, c := range chunks {
		if _, err := p.feed(c, fn); err != nil {
			return got, p, err
		}
	}
	return got, p, nil
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

func TestWSParser(t *testing.T) {
	const max = 70_000
	long := strings.Repeat("L", 300)    // 16-bit length
	huge := strings.Repeat("H", 66_000) // 64-bit length
	ping := clientFrame(true, ws.OpPing, "p")
	tests := []struct {
		name     string
		in       []byte
		want     []wsEvent
		err      error
		unfinish bool // the input stops inside a frame
	}{
		{"text", clientFrame(true, ws.OpText, "4hello"), []wsEvent{{ws.OpText, "4hello"}}, nil, false},
		{"binary", clientFrame(true, ws.OpBinary, "\x00\x01\xff"), []wsEvent{{ws.OpBinary, "\x00\x01\xff"}}, nil, false},
		{"empty", clientFrame(true, ws.OpText, ""), []wsEvent{{ws.OpText, ""}}, nil, false},
		{"two messages", cat(clientFrame(true, ws.OpText, "4a"), clientFrame(true, ws.OpText, "4b")),
			[]wsEvent{{ws.OpText, "4a"}, {ws.OpText, "4b"}}, nil, false},
		{"16-bit length", clientFrame(true, ws.OpText, long), []wsEvent{{ws.OpText, long}}, nil, false},
		{"64-bit length", clientFrame(true, ws.OpBinary, huge), []wsEvent{{ws.OpBinary, huge}}, nil, false},
		{"fragmented", cat(clientFrame(false, ws.OpText, "4he"), clientFrame(false, ws.OpContinuation, "ll"), clientFrame(true, ws.OpContinuation, "o")),
			[]wsEvent{{ws.OpText, "4hello"}}, nil, false},
		{"fragmented binary with empty fragments", cat(clientFrame(false, ws.OpBinary, ""), clientFrame(false, ws.OpContinuation, "\x01"), clientFrame(true, ws.OpContinuation, "")),
			[]wsEvent{{ws.OpBinary, "\x01"}}, nil, false},
		{"control frames between fragments", cat(clientFrame(false, ws.OpText, "4a"), ping, clientFrame(false, ws.OpContinuation, "b"), clientFrame(true, ws.OpPong, ""), clientFrame(true, ws.OpContinuation, "c")),
			[]wsEvent{{ws.OpPing, "p"}, {ws.OpText, "4abc"}, {ws.OpPong, ""}}[:0], nil, false},
		{"close", cat(clientFrame(true, ws.OpText, "4x"), clientFrame(true, ws.OpClose, "\x03\xe8")),
			[]wsEvent{{ws.OpText, "4x"}, {ws.OpClose, "\x03\xe8"}}, nil, false},
		{"unfinished frame", clientFrame(true, ws.OpText, "4hello")[:5], nil, nil, true},
		{"unfinished message", clientFrame(false, ws.OpText, "4hello"), nil, nil, false},
		{"unmasked", rawFrame(ws.Header{Fin: true, OpCode: ws.OpText, Length: 2}, "4a"), nil, ws.ErrProtocolMaskRequired, false},
		{"rsv bits", rawFrame(ws.Header{Fin: true, Rsv: 4, OpCode: ws.OpText, Masked: true, Length: 2}, "4a"), nil, ws.ErrProtocolMaskRequired, false},
		{"bad mask after a message", cat(clientFrame(true, ws.OpText, "4ok"), rawFrame(ws.Header{Fin: true, OpCode: ws.OpText, Length: 1}, "4")),
			[]wsEvent{{ws.OpText, "4ok"}}, ws.ErrProtocolMaskRequired, false},
		{"control too long", clientFrame(true, ws.OpPing, strings.Repeat("p", 126)), nil, ws.ErrProtocolControlPayloadOverflow, false},
		{"control not final", clientFrame(false, ws.OpPing, "p"), nil, ws.ErrProtocolControlPayloadOverflow, false},
		{"continuation first", clientFrame(true, ws.OpContinuation, "x"), nil, ws.ErrProtocolContinuationUnexpected, false},
		{"new message inside a fragmented one", cat(clientFrame(false, ws.OpText, "4a"), clientFrame(true, ws.OpText, "4b")), nil, ws.ErrProtocolContinuationExpected, false},
		{"length MSB", []byte("\x81\xff\x80\x00\x00\x00\x00\x00\x00\x01\x1f\x2e\x3d\x4c"), nil, ws.ErrHeaderLengthMSB, false},
		// The limit is checked from the header: the payload never arrives.
		{"oversize header alone", clientFrame(true, ws.OpText, strings.Repeat("x", max+1))[:14], nil, errTooLarge, false},
		{"oversize fragments", cat(clientFrame(false, ws.OpText, strings.Repeat("x", max-10)), clientFrame(true, ws.OpContinuation, strings.Repeat("y", 11))[:14]),
			nil, errTooLarge, false},
		{"at the limit", clientFrame(true, ws.OpText, strings.Repeat("x", max)), []wsEvent{{ws.OpText, strings.Repeat("x", max)}}, nil, false},
	}
	// The interleaved control frames come first: they complete before the message.
	tests[8].want = []wsEvent{{ws.OpPing, "p"}, {ws.OpPong, ""}, {ws.OpText, "4abc"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, got []wsEvent, err error, p *wsParser) {
				t.Helper()
				if !errors.Is(err, tt.err) {
					t.Fatalf("%s: error %v, want %v", how, err, tt.err)
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("%s: got %d events %.200v, want %.200v", how, len(got), got, tt.want)
				}
				if err == nil && (p.partial != nil) != tt.unfinish {
					t.Fatalf("%s: partial %d bytes kept", how, len(p.partial))
				}
			}
			got, p, err := parseAll(max, tt.in)
			check("whole", got, err, p)
			// Split at every byte boundary (every 97th for the long inputs).
			step := 1
			if len(tt.in) > 1000 {
				step = 97
			}
			for i := 0; i <= len(tt.in); i += step {
				got, p, err := parseAll(max, tt.in[:i], tt.in[i:])
				check(fmt.Sprintf("split at %d", i), got, err, p)
			}
			if len(tt.in) < 1000 {
				var chunks [][]byte
				for i := range tt.in {
					chunks = append(chunks, tt.in[i:i+1])
				}
				got, p, err := parseAll(max, chunks...)
				check("byte by byte", got, err, p)
			}
		})
	}
}

// TestWSParserStops checks that a callback returning false drops the rest.
func TestWSParserStops(t *testing.T) {
	p := &wsParser{max: 100}
	in := cat(clientFrame(true, ws.OpClose, ""), clientFrame(true, ws.OpText, "4late")[:4])
	n := 0
	ok, err := p.feed(in, func(ws.OpCode, []byte) bool { n++; return false })
	if ok || err != nil || n != 1 || p.partial != nil {
		t.Fatalf("ok %v err %v calls %d partial %d", ok, err, n, len(p.partial))
	}
}

// refParse reads frames the way readMessage does, with gobwas/ws's header
// reader, recording control frames as events. An input that ends inside a
// frame is not an error.
func refParse(in []byte, max int64) ([]wsEvent, error) {
	r := bytes.NewReader(in)
	var out []wsEvent
	var msg []byte
	var op ws.OpCode
	started := false
	for {
		h, err := ws.ReadHeader(r)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if !h.Masked || h.Rsv != 0 {
			return out, ws.ErrProtocolMaskRequired
		}
		if h.OpCode.IsControl() {
			if h.Length > 125 || !h.Fin {
				return out, ws.ErrProtocolControlPayloadOverflow
			}
		} else if h.OpCode == ws.OpContinuation && !started {
			return out, ws.ErrProtocolContinuationUnexpected
		} else if h.OpCode != ws.OpContinuation && started {
			return out, ws.ErrProtocolContinuationExpected
		} else if int64(len(msg))+h.Length > max {
			return out, errTooLarge
		}
		if h.Length > int64(r.Len()) {
			return out, nil
		}
		payload := make([]byte, h.Length)
		_, _ = io.ReadFull(r, payload)
		ws.Cipher(payload, h.Mask, 0)
		if h.OpCode.IsControl() {
			out = append(out, wsEvent{h.OpCode, string(payload)})
			continue
		}
		if h.OpCode != ws.OpContinuation {
			started, op = true, h.OpCode
		}
		msg = append(msg, payload...)
		if h.Fin {
			out = append(out, wsEvent{op, string(msg)})
			msg, started = nil, false
		}
	}
}

// FuzzWSParser checks the parser against a blocking reader built on
// gobwas/ws, whole and split at an arbitrary point and into small pieces.
func FuzzWSParser(f *testing.F) {
	f.Add(clientFrame(true, ws.OpText, "4hello"), uint16(3))
	f.Add(cat(clientFrame(false, ws.OpText, "4a"), clientFrame(true, ws.OpPing, "p"), clientFrame(true, ws.OpContinuation, "b")), uint16(9))
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		const max = 256
		want, wantErr := refParse(in, max)
		check := func(how string, got []wsEvent, err error) {
			if !errors.Is(err, wantErr) || !slices.Equal(got, want) {
				t.Fatalf("%s: got %v %v, want %v %v", how, got, err, want, wantErr)
			}
		}
		got, _, err := parseAll(max, in)
		check("whole", got, err)
		i := int(cut) % (len(in) + 1)
		got, _, err = parseAll(max, in[:i], in[i:])
		check(fmt.Sprintf("split at %d", i), got, err)
		step := int(cut%7) + 1
		var chunks [][]byte
		for j := 0; j < len(in); j += step {
			chunks = append(chunks, in[j:min(j+step, len(in))])
		}
		got, _, err = parseAll(max, chunks...)
		check(fmt.Sprintf("pieces of %d", step), got, err)
	})
}

// A frame's announced length reserves nothing: only the bytes that arrived
// are kept, however large the announced frame.
func TestWSParserGrowsAsBytesArrive(t *testing.T) {
	p := &wsParser{max: 1_000_000}
	hdr := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x3f, 1, 2, 3, 4} // binary, 999,999 bytes, masked
	frame := append(hdr, make([]byte, 100)...)
	ok, err := p.feed(frame, func(ws.OpCode, []byte) bool { return true })
	if !ok || err != nil {
		t.Fatalf("feed: %v %v", ok, err)
	}
	if c := cap(p.partial); c > 4096 {
		t.Fatalf("holding %d bytes for %d received", c, len(frame))
	}
}

// readMessage (the upgrade's blocking reader) grows its buffer as the payload
// arrives too.
func TestReadMessageGrowsAsBytesArrive(t *testing.T) {
	srv := NewServer(Options{MaxPayload: 1_000_000})
	s := &Conn{srv: srv}
	hdr := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x3f, 1, 2, 3, 4}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := s.readMessage(nil, bytes.NewReader(append(hdr, make([]byte, 100)...)), nil)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a truncated frame was read whole")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 256<<10 {
		t.Fatalf("allocated %d bytes for 100 received", n)
	}
}
