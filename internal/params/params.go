// Package params holds node-chat's request parameters: query string and body
// merged into one ordered tree, parsed the way Express with qs "extended"
// parsing does, so that signatures computed by node-chat clients over that
// tree can be checked and handlers can read typed values.
//
// The tree keeps keys in the order they were received because a signature
// computed over nested objects depends on that order.
package params

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Kind is the type of a Value.
type Kind uint8

const (
	// String is a text scalar: every form or query value, and JSON strings.
	String Kind = iota
	// Number is a JSON number; its text is the literal as received.
	Number
	// Bool is a JSON true or false; its text is "true" or "false".
	Bool
	// Null is a JSON null; its text is "".
	Null
	// Object is an ordered map of keys to values.
	Object
	// Array is a list of values.
	Array
)

func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "bool"
	case Null:
		return "null"
	case Object:
		return "object"
	case Array:
		return "array"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one node of the parameter tree: a scalar, an ordered object or an
// array. The zero Value is the empty string.
type Value struct {
	kind   Kind
	text   string            // scalars
	keys   []string          // Object: keys in received order
	fields map[string]*Value // Object
	items  []*Value          // Array
}

// Str returns a String scalar.
func Str(s string) *Value { return &Value{kind: String, text: s} }

// Literal returns a JSON scalar of kind Number, Bool or Null with the given
// text (for Null the text is ignored).
func Literal(kind Kind, text string) *Value {
	switch kind {
	case Null:
		return &Value{kind: Null}
	case Number, Bool:
		return &Value{kind: kind, text: text}
	}
	return &Value{kind: String, text: text}
}

// NewObject returns an empty object.
func NewObject() *Value { return &Value{kind: Object, fields: map[string]*Value{}} }

// NewArray returns an array holding items.
func NewArray(items ...*Value) *Value { return &Value{kind: Array, items: items} }

// Kind reports the type of v.
func (v *Value) Kind() Kind { return v.kind }

// IsScalar reports whether v is a String, Number, Bool or Null.
func (v *Value) IsScalar() bool { return v.kind <= Null }

// Text returns a scalar's text: the string, the number literal, "true" or
// "false", and "" for null. It is "" for objects and arrays.
func (v *Value) Text() string { return v.text }

// Keys returns an object's keys in received order (nil for other kinds).
func (v *Value) Keys() []string {
	if v.kind != Object {
		return nil
	}
	return append([]string(nil), v.keys...)
}

// Field returns an object's value for key, or nil.
func (v *Value) Field(key string) *Value {
	if v.kind != Object {
		return nil
	}
	return v.fields[key]
}

// Set sets an object's key, keeping the position of an existing key and
// appending a new one. It does nothing if v is not an object.
func (v *Value) Set(key string, val *Value) {
	if v.kind != Object || val == nil {
		return
	}
	if v.fields == nil {
		v.fields = map[string]*Value{}
	}
	if _, ok := v.fields[key]; !ok {
		v.keys = append(v.keys, key)
	}
	v.fields[key] = val
}

func (v *Value) del(key string) {
	if _, ok := v.fields[key]; !ok {
		return
	}
	delete(v.fields, key)
	for i, k := range v.keys {
		if k == key {
			v.keys = append(v.keys[:i:i], v.keys[i+1:]...)
			break
		}
	}
}

// Items returns an array's elements (nil for other kinds).
func (v *Value) Items() []*Value {
	if v.kind != Array {
		return nil
	}
	return append([]*Value(nil), v.items...)
}

// Len is the number of keys of an object or elements of an array, else 0.
func (v *Value) Len() int {
	switch v.kind {
	case Object:
		return len(v.keys)
	case Array:
		return len(v.items)
	}
	return 0
}

// MarshalJSON encodes v as JSON: objects keep received key order, numbers
// keep their literal text.
func (v *Value) MarshalJSON() ([]byte, error) {
	return v.appendJSON(nil), nil
}

func (v *Value) appendJSON(b []byte) []byte {
	switch v.kind {
	case Number:
		return append(b, v.text...)
	case Bool:
		return append(b, v.text...)
	case Null:
		return append(b, "null"...)
	case Object:
		b = append(b, '{')
		for i, k := range v.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = v.fields[k].appendJSON(b)
		}
		return append(b, '}')
	case Array:
		b = append(b, '[')
		for i, it := range v.items {
			if i > 0 {
				b = append(b, ',')
			}
			b = it.appendJSON(b)
		}
		return append(b, ']')
	}
	return appendJSONString(b, v.text)
}

func appendJSONString(b []byte, s string) []byte {
	enc, _ := json.Marshal(s) // marshalling a string cannot fail
	return append(b, enc...)
}

// Params is the ordered set of top-level request parameters.
type Params struct {
	root Value
}

// New returns empty Params.
func New() *Params { return &Params{root: Value{kind: Object, fields: map[string]*Value{}}} }

// Keys returns the top-level keys in received order.
func (p *Params) Keys() []string { return p.root.Keys() }

// Len is the number of top-level keys.
func (p *Params) Len() int { return len(p.root.keys) }

// Get returns the value for key, or nil.
func (p *Params) Get(key string) *Value { return p.root.Field(key) }

// Set sets a top-level key (see Value.Set).
func (p *Params) Set(key string, v *Value) { p.root.Set(key, v) }

// Add sets key to the string value s; handy for building signed requests.
func (p *Params) Add(key, s string) { p.root.Set(key, Str(s)) }

// Delete removes a top-level key.
func (p *Params) Delete(key string) { p.root.del(key) }

// Root returns the parameters as one Object value (shared, not a copy).
func (p *Params) Root() *Value { return &p.root }

// MarshalJSON encodes the parameters as a JSON object.
func (p *Params) MarshalJSON() ([]byte, error) { return p.root.MarshalJSON() }

// Merge returns the union of query and body; for a top-level key present in
// both, the body's value wins (Express merges req.query and req.body so in
// node-chat). Key order: query keys first, then body-only keys. Either
// argument may be nil. The values are shared, not copied.
func Merge(query, body *Params) *Params {
	out := New()
	for _, src := range []*Params{query, body} {
		if src == nil {
			continue
		}
		for _, k := range src.root.keys {
			out.root.Set(k, src.root.fields[k])
		}
	}
	return out
}

// String returns the scalar value of key as text. Numbers and booleans are
// returned as their text. It reports false when the key is absent, null, an
// object or an array.
func (p *Params) String(key string) (string, bool) {
	v := p.Get(key)
	if v == nil || !v.IsScalar() || v.kind == Null {
		return "", false
	}
	return v.text, true
}

// Int returns the value of key as an integer. A string or a JSON number
// holding an integer ("5", 5, 5.0, 5e0) is accepted. It reports false with a
// nil error when the key is absent, null or the empty string (clients send
// "limit=" for "no limit"); anything else that is not an integer is an error.
func (p *Params) Int(key string) (int64, bool, error) {
	v := p.Get(key)
	if v == nil || v.kind == Null || (v.kind == String && v.text == "") {
		return 0, false, nil
	}
	if v.kind != String && v.kind != Number {
		return 0, false, fmt.Errorf("parameter %s must be an integer, got %s", key, v.kind)
	}
	s := strings.TrimSpace(v.text)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true, nil
	}
	// JSON numbers such as 5.0 or 1e3 are integers to a JavaScript client.
	if f, err := strconv.ParseFloat(s, 64); err == nil && v.kind == Number &&
		f == float64(int64(f)) && f >= -(1<<63) && f < 1<<63 {
		return int64(f), true, nil
	}
	return 0, false, fmt.Errorf("parameter %s must be an integer, got %q", key, clip(v.text))
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Strings returns the value of key as a list of strings: an array of scalars,
// or a single scalar as a one-element list. It reports false when the key is
// absent or null, or when the array holds an object, an array or a null.
func (p *Params) Strings(key string) ([]string, bool) {
	v := p.Get(key)
	if v == nil {
		return nil, false
	}
	switch {
	case v.kind == Null:
		return nil, false
	case v.IsScalar():
		return []string{v.text}, true
	case v.kind == Array:
		out := make([]string, 0, len(v.items))
		for _, it := range v.items {
			if !it.IsScalar() || it.kind == Null {
				return nil, false
			}
			out = append(out, it.text)
		}
		return out, true
	}
	return nil, false
}

// JSON returns the value of key encoded as JSON. An object sent as form
// fields (content[content]=hi) becomes {"content":"hi"}; a JSON body's value
// is returned as received (key order and number literals kept). A string is
// returned as a JSON string even when its text is itself JSON
// ("{\"content\":\"hi\"}" stays a string): the exact scalar is kept and the
// caller decides whether to decode it.
func (p *Params) JSON(key string) (json.RawMessage, bool) {
	v := p.Get(key)
	if v == nil {
		return nil, false
	}
	return json.RawMessage(v.appendJSON(nil)), true
}
