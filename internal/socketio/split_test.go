package socketio

import (
	"encoding/json"
	"fmt"
	"testing"
)

// splitArray and plainString must give what encoding/json gives.
func TestSplitArrayMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`[]`, `[ ]`, `["a"]`, `["send",{"a":1}]`, ` [ "x" , 1 , -2.5e3 , true , false , null ] `,
		"[\n\t\"e\",\r\n{\"k\":[1,[2,{\"z\":\"]\"}]],\"s\":\"a,b\\\"c\\\\\"}\n]",
		`["é \u2028",[],{},[[]],"\\",""]`, `[{"a":"}"},"{["]`, `["a\"b"]`,
	} {
		var want []json.RawMessage
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		b := []byte(in)
		for len(b) > 0 && b[0] != '[' {
			b = b[1:]
		}
		got := splitArray(b)
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("splitArray(%q) = %q, want %q", in, got, want)
		}
		for _, a := range want {
			var s string
			if json.Unmarshal(a, &s) != nil {
				continue
			}
			if p, ok := plainString(a); ok && p != s {
				t.Errorf("plainString(%q) = %q, want %q", a, p, s)
			}
		}
	}
	for _, bad := range []string{`["a\nb"]`, `["\u0041"]`, "[\"\xff\"]"} {
		var want []json.RawMessage
		_ = json.Unmarshal([]byte(bad), &want)
		if len(want) == 1 {
			if _, ok := plainString(want[0]); ok {
				t.Errorf("plainString(%q) took a string that needs decoding", want[0])
			}
		}
	}
}
