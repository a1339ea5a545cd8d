package engineio

import (
	"net/http"
	"reflect"
	"testing"
)

func TestHeaderPacking(t *testing.T) {
	for _, h := range []http.Header{
		{},
		{"Origin": {"http://a"}},
		{"Cookie": {"a=1", "b=2"}, "User-Agent": {""}, "X-Empty": {"", "x"}},
	} {
		got := unflattenHeader(flattenHeader(h))
		if !reflect.DeepEqual(got, h) {
			t.Errorf("%v came back as %v", h, got)
		}
	}
}
