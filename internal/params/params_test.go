package params

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func mustJSON(t *testing.T, p *Params) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Expected values come from npm qs 6.17 (qs.parse with default options);
// where qs orders integer-like keys first (a JavaScript object rule), the
// tree here keeps received order instead and the signature package applies
// the JavaScript rule when it serialises.
func TestFromQuery(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `{}`},
		{"a=1&b=2", `{"a":"1","b":"2"}`},
		{"content[content]=hi&messageType=1", `{"content":{"content":"hi"},"messageType":"1"}`},
		{"userIds[0]=a&userIds[1]=b", `{"userIds":["a","b"]}`},
		{"userIds[]=a&userIds[]=b", `{"userIds":["a","b"]}`},
		{"userIds=a&userIds=b", `{"userIds":["a","b"]}`},
		{"a[0]=x&a[0]=y", `{"a":[["x","y"]]}`},
		{"a=1&a[]=2", `{"a":["1","2"]}`},
		{"a[]=1&a=2", `{"a":["1","2"]}`},
		{"a[1]=x&a[0]=y", `{"a":["y","x"]}`},
		{"a[0]=x&a[b]=y", `{"a":{"0":"x","b":"y"}}`},
		{"a[b][c][d][e][f][g][h]=1", `{"a":{"b":{"c":{"d":{"e":{"f":{"[g][h]":"1"}}}}}}}`},
		{"a[25]=x", `{"a":{"25":"x"}}`},
		{"a[20]=x&a[19]=y", `{"a":{"20":"x","19":"y"}}`},
		{"x=%ZZ+1&y=%E4%BD%A0+%FF", `{"x":"%ZZ 1","y":"%E4%BD%A0 %FF"}`},
		{"y=%E4%BD%A0+%7E%21", `{"y":"你 ~!"}`},
		{"a%5Bb%5D=c", `{"a":{"b":"c"}}`},
		{"a[b=c]=d", `{"a":{"b=c":"d"}}`},
		{"a[]b[c]=1", `{"a":[{"c":"1"}]}`},
		{"a[b]c=1", `{"a":{"b":"1"}}`},
		{"=x&&b", `{"b":""}`},
		{"a[0][b]=1&a[0][c]=2&a[1][b]=3", `{"a":[{"b":"1","c":"2"},{"b":"3"}]}`},
		{"o[b]=1&o[30]=2&o[5x]=3", `{"o":{"b":"1","30":"2","5x":"3"}}`},
		{"__proto__=1&a[__proto__]=2&b=3", `{"b":"3"}`},
		{"a[b=1", `{"a[b":"1"}`},
	}
	for _, tt := range tests {
		p, err := FromQuery(tt.in)
		if err != nil {
			t.Errorf("FromQuery(%q): %v", tt.in, err)
			continue
		}
		if got := mustJSON(t, p); got != tt.want {
			t.Errorf("FromQuery(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFormArrayLimit(t *testing.T) {
	p, err := FromForm([]byte("userIds[25]=a&userIds[30]=b"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := p.Strings("userIds"); !ok || strings.Join(got, ",") != "a,b" {
		t.Errorf("form userIds = %v %v", got, ok)
	}
	// Above 100 the limit follows the number of pairs.
	var b strings.Builder
	for i := range 150 {
		fmt.Fprintf(&b, "userIds[%d]=u%d&", 149-i, 149-i)
	}
	p, err = FromForm([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := p.Strings("userIds"); !ok || len(got) != 150 || got[0] != "u0" || got[149] != "u149" {
		t.Errorf("150 userIds: %d %v", len(got), ok)
	}
	// Query strings keep qs's default of 20.
	p, _ = FromQuery("userIds[25]=a")
	if _, ok := p.Strings("userIds"); ok {
		t.Error("query index 25 should be an object key")
	}
}

func TestQSErrors(t *testing.T) {
	tests := []string{
		"a[b]=1&a=2",
		"a=1&a[b]=2",
		strings.Repeat("a=1&", MaxParams) + "b=2",
		"a=\xff",
	}
	for _, in := range tests {
		if p, err := FromQuery(in); err == nil {
			t.Errorf("FromQuery(%.40q) = %s, want error", in, mustJSON(t, p))
		}
	}
	// Exactly the limit is fine.
	if _, err := FromQuery(strings.Repeat("a=1&", MaxParams-1) + "b=2"); err != nil {
		t.Errorf("at the limit: %v", err)
	}
}

func TestFromJSON(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{``, `{}`},
		{` {} `, `{}`},
		{`{"b":1,"a":{"z":1.50,"y":[1,"2",null,true]},"c":null}`, `{"b":1,"a":{"z":1.50,"y":[1,"2",null,true]},"c":null}`},
		{`{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
		{`{"big":12345678901234567890,"e":1e3}`, `{"big":12345678901234567890,"e":1e3}`},
		{`{"s":"\u4f60\"<"}`, `{"s":"你\"\u003c"}`},
	}
	for _, tt := range tests {
		p, err := FromJSON([]byte(tt.in))
		if err != nil {
			t.Errorf("FromJSON(%s): %v", tt.in, err)
			continue
		}
		if got := mustJSON(t, p); got != tt.want {
			t.Errorf("FromJSON(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	bad := []string{
		`[]`, `"x"`, `1`, `{`, `{"a":}`, `{"a":1}{}`, `{"a":1} x`, `{1:2}`,
		`{"a":` + strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1) + `}`,
		`{"a":[` + strings.Repeat("1,", MaxJSONValues) + `1]}`,
	}
	for _, in := range bad {
		if _, err := FromJSON([]byte(in)); err == nil {
			t.Errorf("FromJSON(%.40s) succeeded, want error", in)
		}
	}
}

func TestAccessors(t *testing.T) {
	q, err := FromQuery("limit=5&userId=u1&bad=x&empty=&ids=a&content[content]=hi&over=query")
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromJSON([]byte(`{"over":"body","n":20,"f":2.0,"frac":2.5,"ids2":["a",1,true],"mixed":["a",{}],"nul":null,"obj":{"content":"hi","n":1},"js":"{\"content\":\"hi\"}"}`))
	if err != nil {
		t.Fatal(err)
	}
	p := Merge(q, b)

	if s, ok := p.String("over"); !ok || s != "body" {
		t.Errorf("body must win: %q %v", s, ok)
	}
	if s, ok := p.String("n"); !ok || s != "20" {
		t.Errorf("String(n) = %q %v", s, ok)
	}
	for _, k := range []string{"nul", "obj", "ids2", "missing"} {
		if _, ok := p.String(k); ok {
			t.Errorf("String(%s) ok", k)
		}
	}

	ints := []struct {
		key   string
		want  int64
		ok    bool
		isErr bool
	}{
		{"limit", 5, true, false},
		{"n", 20, true, false},
		{"f", 2, true, false},
		{"frac", 0, false, true},
		{"bad", 0, false, true},
		{"obj", 0, false, true},
		{"empty", 0, false, false},
		{"nul", 0, false, false},
		{"missing", 0, false, false},
	}
	for _, tt := range ints {
		n, ok, err := p.Int(tt.key)
		if n != tt.want || ok != tt.ok || (err != nil) != tt.isErr {
			t.Errorf("Int(%s) = %d %v %v", tt.key, n, ok, err)
		}
		if err != nil && !strings.Contains(err.Error(), "must be an integer") {
			t.Errorf("Int(%s) error %q", tt.key, err)
		}
	}

	strs := []struct {
		key  string
		want string
		ok   bool
	}{
		{"ids", "a", true},
		{"ids2", "a|1|true", true},
		{"mixed", "", false},
		{"nul", "", false},
		{"obj", "", false},
		{"missing", "", false},
	}
	for _, tt := range strs {
		got, ok := p.Strings(tt.key)
		if strings.Join(got, "|") != tt.want || ok != tt.ok {
			t.Errorf("Strings(%s) = %v %v", tt.key, got, ok)
		}
	}

	js := []struct{ key, want string }{
		{"content", `{"content":"hi"}`},
		{"obj", `{"content":"hi","n":1}`},
		{"js", `"{\"content\":\"hi\"}"`},
		{"n", `20`},
		{"nul", `null`},
	}
	for _, tt := range js {
		got, ok := p.JSON(tt.key)
		if !ok || string(got) != tt.want {
			t.Errorf("JSON(%s) = %s %v, want %s", tt.key, got, ok, tt.want)
		}
		if !json.Valid(got) {
			t.Errorf("JSON(%s) invalid", tt.key)
		}
	}

	p.Delete("over")
	p.Delete("nope")
	if p.Get("over") != nil {
		t.Error("Delete did not delete")
	}
	want := "limit,userId,bad,empty,ids,content,n,f,frac,ids2,mixed,nul,obj,js"
	if got := strings.Join(p.Keys(), ","); got != want {
		t.Errorf("Keys = %s, want %s", got, want)
	}
}

func FuzzParams(f *testing.F) {
	for _, s := range []string{
		"a=1&b=2", "content[content]=hi", "userIds[]=a&userIds[]=b", "a[0][b]=1&a[1]=2",
		"a[b]=1&a=2", "a%5Bb%5D=%E4%BD%A0+x", "x=%ZZ", "a[][][]=1&a[]=2",
		`{"a":{"b":[1,2,{"c":null}]},"d":"e"}`, `{"a":1,"a":2}`, `[1]`, "a[0]=x&a[b]=y&a[]=z",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []func([]byte) (*Params, error){
			FromForm, FromJSON, func(b []byte) (*Params, error) { return FromQuery(string(b)) },
		} {
			p, err := parse(body)
			if err != nil {
				continue
			}
			enc, err := json.Marshal(p)
			if err != nil || !json.Valid(enc) {
				t.Fatalf("bad JSON %s: %v", enc, err)
			}
			for _, k := range p.Keys() {
				p.String(k)
				p.Strings(k)
				p.Int(k)
				if raw, ok := p.JSON(k); !ok || !json.Valid(raw) {
					t.Fatalf("JSON(%q) = %s", k, raw)
				}
			}
		}
	})
}
