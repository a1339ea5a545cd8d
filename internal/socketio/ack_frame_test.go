package socketio

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/socketio/engineio"
)

// rawAckFrame must give the bytes of the general path.
func TestRawAckFrameMatchesEncodeArgs(t *testing.T) {
	for _, tt := range []struct {
		nsp  string
		id   int64
		args []any
	}{
		{"/", 0, []any{nil, json.RawMessage(`{"a":1}`)}},
		{"/", 42, []any{nil, json.RawMessage(nil)}},
		{"/chat", 7, []any{json.RawMessage(`[1,2]`)}},
		{"/", 3, nil},
	} {
		f, ok := rawAckFrame(tt.nsp, tt.id, tt.args)
		if !ok {
			t.Fatalf("%v: not encoded", tt.args)
		}
		text, _, err := encodeArgs(Ack, tt.nsp, tt.id, "", tt.args)
		if err != nil {
			t.Fatal(err)
		}
		if want := engineio.MessageFrame(text); !bytes.Equal(f.Data(), want.Data()) {
			t.Errorf("%v: %q, want %q", tt.args, f.Data(), want.Data())
		}
	}
	if _, ok := rawAckFrame("/", 1, []any{map[string]int{"a": 1}}); ok {
		t.Error("a value that needs encoding/json took the raw path")
	}
}

// A large answer is copied once, into its frame (docs/soak.md, Under
// attack): the bytes allocated for the ack stay close to its size.
func TestLargeAckAllocatesItsSizeOnce(t *testing.T) {
	raw := json.RawMessage(`"` + strings.Repeat("x", 2_400_000) + `"`)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := &Socket{ns: &Namespace{name: "/"}} // not acked: frames wait in s.early
	if err := s.ackFunc(5)(nil, raw); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(len(raw))*11/10; got > limit {
		t.Errorf("a %d byte ack allocated %d bytes, want at most %d", len(raw), got, limit)
	}
	if len(s.early) != 1 || !bytes.HasPrefix(s.early[0].Data(), []byte(`35[null,"xxx`)) {
		t.Errorf("sent %d frames", len(s.early))
	}
}
