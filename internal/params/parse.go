package params

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits. The form limits follow the npm qs package that Express uses
// (parameterLimit 1000, depth 5, arrayLimit 20 for query strings); forms get
// body-parser's larger array limit. Body size is the caller's to enforce.
const (
	// MaxParams is the most '&'-separated pairs a query string or form body
	// may hold; more is an error (body-parser answers 413 the same way).
	MaxParams = 1000
	// MaxDepth is how many bracket levels of a form key nest; deeper brackets
	// stay in the last key as text, as qs does ("a[b][c][d][e][f][g]" puts
	// "[g]" as a key under f).
	MaxDepth = 5
	// QueryArrayLimit: a bracketed index below it makes an array element, a
	// larger one an object key (qs's arrayLimit default).
	QueryArrayLimit = 20
	// FormArrayLimit is body-parser's array limit for urlencoded bodies; a
	// body with more pairs than that raises it to the number of pairs, as
	// body-parser does, so userIds[150]=x stays an array element.
	FormArrayLimit = 100
	// MaxJSONDepth bounds the nesting of objects and arrays in a JSON body.
	MaxJSONDepth = 32
	// MaxJSONValues bounds the number of values in a JSON body.
	MaxJSONValues = 10000
)

// FromQuery parses a URL query string (without the leading '?') the way qs
// does: '&'-separated pairs, '+' as space, percent-decoding (a value with a
// malformed escape is kept as sent), and bracketed keys building nested
// objects and arrays: content[content]=hi, userIds[]=a, userIds[0]=a. A key
// repeated without brackets (a=1&a=2) becomes an array.
func FromQuery(raw string) (*Params, error) {
	return parseQS(raw, QueryArrayLimit)
}

// FromForm parses an application/x-www-form-urlencoded body like FromQuery.
func FromForm(body []byte) (*Params, error) {
	raw := string(body)
	return parseQS(raw, max(FormArrayLimit, strings.Count(raw, "&")+1))
}

type segKind uint8

const (
	segKey   segKind = iota // object key
	segPush                 // "[]"
	segIndex                // "[n]" with n below the array limit
)

type seg struct {
	kind segKind
	name string
	idx  int
}

type qsParser struct {
	arrayLimit int
	// idx holds the qs index of each element of arrays under construction;
	// arrays are sorted by it (and holes dropped) once parsing ends.
	idx map[*Value][]int
}

func parseQS(raw string, arrayLimit int) (*Params, error) {
	if !utf8.ValidString(raw) {
		return nil, errors.New("parameters are not valid UTF-8")
	}
	if strings.Count(raw, "&") >= MaxParams {
		n := 0
		for part := range strings.SplitSeq(raw, "&") {
			if part != "" {
				n++
			}
		}
		if n > MaxParams {
			return nil, fmt.Errorf("too many parameters: %d (limit %d)", n, MaxParams)
		}
	}
	ps := &qsParser{arrayLimit: arrayLimit, idx: map[*Value][]int{}}
	p := New()
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		// qs splits at "]=" first so that "a[b=c]=d" keeps "=" inside the key.
		pos := strings.Index(part, "]=")
		if pos >= 0 {
			pos++
		} else {
			pos = strings.IndexByte(part, '=')
		}
		var key, val string
		if pos < 0 {
			key = decodeComponent(part)
		} else {
			key = decodeComponent(part[:pos])
			val = decodeComponent(part[pos+1:])
		}
		if key == "" {
			continue
		}
		segs, ok := ps.splitKey(key)
		if !ok {
			continue
		}
		if err := ps.put(&p.root, segs, Str(val)); err != nil {
			return nil, fmt.Errorf("parameter %q: %w", clip(key), err)
		}
	}
	ps.compact(&p.root)
	return p, nil
}

var errMixed = errors.New("given both as a value and with nested keys")

// splitKey cuts "a[b][]" into a, [b], []: the text before the first complete
// bracket group, then up to MaxDepth groups; whatever follows becomes one
// last key. ok is false for keys qs drops (__proto__).
func (ps *qsParser) splitKey(key string) ([]seg, bool) {
	start, end := nextGroup(key, 0)
	if start < 0 {
		if key == "__proto__" {
			return nil, false
		}
		return []seg{{kind: segKey, name: key}}, true
	}
	var segs []seg
	if start > 0 {
		if key[:start] == "__proto__" {
			return nil, false
		}
		segs = append(segs, seg{kind: segKey, name: key[:start]})
	}
	for depth := 0; start >= 0; depth++ {
		if depth == MaxDepth {
			segs = append(segs, seg{kind: segKey, name: key[start:]})
			break
		}
		name := key[start+1 : end-1]
		switch n, err := strconv.Atoi(name); {
		case name == "__proto__":
			return nil, false
		case name == "":
			segs = append(segs, seg{kind: segPush})
		case err == nil && n >= 0 && strconv.Itoa(n) == name && n < ps.arrayLimit:
			segs = append(segs, seg{kind: segIndex, idx: n, name: name})
		default:
			segs = append(segs, seg{kind: segKey, name: name})
		}
		start, end = nextGroup(key, end)
	}
	return segs, true
}

// nextGroup finds the next "[...]" at or after from with no bracket inside.
func nextGroup(s string, from int) (start, end int) {
	for i := from; i < len(s); i++ {
		if s[i] != '[' {
			continue
		}
		j := i + 1
		for j < len(s) && s[j] != '[' && s[j] != ']' {
			j++
		}
		if j < len(s) && s[j] == ']' {
			return i, j + 1
		}
		i = j - 1
	}
	return -1, -1
}

// put stores leaf at path segs under the object or array node.
func (ps *qsParser) put(node *Value, segs []seg, leaf *Value) error {
	s := segs[0]
	rest := segs[1:]
	switch node.kind {
	case Object:
		name := s.name
		if s.kind == segPush {
			return errMixed
		}
		child, err := ps.child(node.fields[name], rest, leaf)
		if err != nil {
			return err
		}
		node.Set(name, child)
		return nil
	case Array:
		at := -1
		if s.kind == segIndex {
			for i, n := range ps.idx[node] {
				if n == s.idx {
					at = i
					break
				}
			}
		}
		if at >= 0 {
			child, err := ps.child(node.items[at], rest, leaf)
			if err != nil {
				return err
			}
			node.items[at] = child
			return nil
		}
		child, err := ps.child(nil, rest, leaf)
		if err != nil {
			return err
		}
		idx := s.idx
		if s.kind == segPush {
			idx = ps.nextIndex(node)
		}
		node.items = append(node.items, child)
		ps.idx[node] = append(ps.idx[node], idx)
		return nil
	}
	return errMixed
}

// child returns the value at path rest below existing (which may be nil),
// with leaf stored, converting containers the way qs merges them.
func (ps *qsParser) child(existing *Value, rest []seg, leaf *Value) (*Value, error) {
	if len(rest) == 0 {
		switch {
		case existing == nil:
			return leaf, nil
		case existing.IsScalar():
			// A repeated key collects its values: a=1&a=2 is ["1","2"].
			arr := NewArray(existing, leaf)
			ps.idx[arr] = []int{0, 1}
			return arr, nil
		case existing.kind == Array:
			ps.idx[existing] = append(ps.idx[existing], ps.nextIndex(existing))
			existing.items = append(existing.items, leaf)
			return existing, nil
		}
		return nil, errMixed
	}
	next := rest[0]
	switch {
	case existing == nil:
		if next.kind == segKey {
			existing = NewObject()
		} else {
			existing = NewArray()
		}
	case existing.IsScalar():
		if next.kind == segKey {
			return nil, errMixed
		}
		// a=1&a[]=2 is ["1","2"].
		arr := NewArray(existing)
		ps.idx[arr] = []int{0}
		existing = arr
	case existing.kind == Array && next.kind == segKey:
		existing = ps.toObject(existing)
	case existing.kind == Object && next.kind == segIndex:
		next.kind = segKey
		rest = append([]seg{next}, rest[1:]...)
	}
	if err := ps.put(existing, rest, leaf); err != nil {
		return nil, err
	}
	return existing, nil
}

func (ps *qsParser) nextIndex(arr *Value) int {
	n := -1
	for _, i := range ps.idx[arr] {
		n = max(n, i)
	}
	return n + 1
}

// toObject turns an array into an object keyed by the element indices, as qs
// does when a[0]=x is followed by a[b]=y.
func (ps *qsParser) toObject(arr *Value) *Value {
	ps.sortArray(arr)
	obj := NewObject()
	for i, it := range arr.items {
		obj.Set(strconv.Itoa(ps.idx[arr][i]), it)
	}
	delete(ps.idx, arr)
	return obj
}

func (ps *qsParser) sortArray(arr *Value) {
	idx := ps.idx[arr]
	order := make([]int, len(arr.items))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return idx[order[a]] < idx[order[b]] })
	items := make([]*Value, len(order))
	sorted := make([]int, len(order))
	for i, o := range order {
		items[i], sorted[i] = arr.items[o], idx[o]
	}
	arr.items, ps.idx[arr] = items, sorted
}

// compact puts array elements in index order and drops the bookkeeping.
func (ps *qsParser) compact(v *Value) {
	switch v.kind {
	case Object:
		for _, k := range v.keys {
			ps.compact(v.fields[k])
		}
	case Array:
		ps.sortArray(v)
		delete(ps.idx, v)
		for _, it := range v.items {
			ps.compact(it)
		}
	}
}

// decodeComponent turns '+' into a space and decodes percent escapes. Like
// qs (which falls back when decodeURIComponent throws), a string with a
// malformed escape or escapes that are not UTF-8 is kept as sent.
func decodeComponent(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return s
		}
		b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	if !utf8.Valid(b) {
		return s
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// FromJSON parses a JSON object body, keeping key order and number literals.
// An empty (or all-whitespace) body gives empty Params, as body-parser does.
// Anything but an object at the top level is an error. A key repeated in one
// object keeps its first position and its last value, like JSON.parse.
func FromJSON(body []byte) (*Params, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return New(), nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("JSON body must be an object")
	}
	jp := jsonParser{dec: dec}
	p := New()
	if err := jp.object(&p.root, 1); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON body: data after the top-level object")
	}
	return p, nil
}

type jsonParser struct {
	dec    *json.Decoder
	values int
}

func (jp *jsonParser) token() (json.Token, error) {
	tok, err := jp.dec.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	return tok, nil
}

// object reads the members of an object whose '{' was consumed.
func (jp *jsonParser) object(obj *Value, depth int) error {
	for {
		tok, err := jp.token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return nil
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("invalid JSON body: object key is not a string")
		}
		v, err := jp.value(depth)
		if err != nil {
			return err
		}
		obj.Set(key, v)
	}
}

func (jp *jsonParser) value(depth int) (*Value, error) {
	jp.values++
	if jp.values > MaxJSONValues {
		return nil, fmt.Errorf("JSON body has more than %d values", MaxJSONValues)
	}
	tok, err := jp.token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case string:
		return Str(t), nil
	case json.Number:
		return &Value{kind: Number, text: string(t)}, nil
	case bool:
		return &Value{kind: Bool, text: strconv.FormatBool(t)}, nil
	case nil:
		return &Value{kind: Null}, nil
	case json.Delim:
		if depth >= MaxJSONDepth {
			return nil, fmt.Errorf("JSON body nests deeper than %d levels", MaxJSONDepth)
		}
		switch t {
		case '{':
			obj := NewObject()
			return obj, jp.object(obj, depth+1)
		case '[':
			arr := NewArray()
			for {
				if !jp.dec.More() {
					if _, err := jp.token(); err != nil { // ']'
						return nil, err
					}
					return arr, nil
				}
				it, err := jp.value(depth + 1)
				if err != nil {
					return nil, err
				}
				arr.items = append(arr.items, it)
			}
		}
	}
	return nil, fmt.Errorf("invalid JSON body: unexpected %v", tok)
}
