// Package signature checks node-chat's request signatures: MD5 over the
// request parameters serialised like npm qs.stringify, with the app secret
// appended, plus a timestamp window and a per-app nonce replay cache.
package signature

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/chatd/chatd/internal/params"
)

// CanonicalOptions selects one of the serialisations clients are known to
// sign. The zero value is node-chat's own: empty values kept as "key=",
// nested keys in received order, numbers printed as JavaScript prints them.
type CanonicalOptions struct {
	// OmitEmpty leaves out empty strings and nulls at every level, as
	// node-chat's README recipe does (array indices are kept as they were).
	OmitEmpty bool
	// SortNested sorts the keys of nested objects too (byte order), as a
	// client that sorts recursively does; by default only the top level is
	// sorted and nested keys keep their order as received.
	SortNested bool
	// LiteralNumbers writes JSON numbers exactly as received instead of as
	// JavaScript's String(number) would (1.50 rather than 1.5).
	LiteralNumbers bool
}

// Canonical returns the signing string of p without the "&app_key=" suffix:
// every parameter except sign, top-level keys sorted in byte order, pairs
// written like qs.stringify with its defaults (RFC 3986 percent-encoding
// with uppercase hex, brackets in keys encoded, arrays as indices, null as
// "key=", empty arrays and objects omitted).
func Canonical(p *params.Params, opts CanonicalOptions) string {
	var b strings.Builder
	writeCanonical(&b, p, opts)
	return b.String()
}

// sink is where a canonical form is written: a strings.Builder, or a
// buffered hash so that no copy of the form is kept.
type sink interface {
	io.Writer
	io.ByteWriter
	io.StringWriter
}

func writeCanonical(w sink, p *params.Params, opts CanonicalOptions) {
	keys := p.Keys()
	sort.Strings(keys)
	c := canonWriter{w: w, opts: opts}
	for _, k := range keys {
		if k == "sign" {
			continue
		}
		c.pairs(k, p.Get(k))
	}
}

// Sign returns the lower-case hex signature of p with secret in node-chat's
// default form (Canonical with zero options).
func Sign(p *params.Params, secret string) string {
	return digest(Canonical(p, CanonicalOptions{}), secret)
}

// SignRoute returns the lower-case hex signature of p with secret bound to
// route, "METHOD /path" (for example "POST /user/getToken"), for apps that
// require it: MD5 of route, a newline, the canonical form (node-chat's
// default), "&app_key=" and the secret.
func SignRoute(p *params.Params, secret, route string) string {
	return routeDigest(p, CanonicalOptions{}, route, secret)
}

func digest(canonical, secret string) string {
	sum := md5.Sum([]byte(canonical + "&app_key=" + secret))
	return hex.EncodeToString(sum[:])
}

// routeDigest hashes the canonical form of p as it is written, prefixed
// with route and a newline when route is not empty.
func routeDigest(p *params.Params, opts CanonicalOptions, route, secret string) string {
	h := md5.New()
	w := bufio.NewWriterSize(h, 8<<10)
	if route != "" {
		w.WriteString(route)
		w.WriteByte('\n')
	}
	writeCanonical(w, p, opts)
	w.WriteString("&app_key=")
	w.WriteString(secret)
	w.Flush()
	return hex.EncodeToString(h.Sum(nil))
}

// conventions lists the CanonicalOptions whose forms can differ for p: an
// option that changes nothing for these parameters (no empty value, no
// nested object out of order, no number printed differently) is left out,
// so most requests build one form and none builds more than 8.
func conventions(p *params.Params) []CanonicalOptions {
	opts, _ := conventionsAndSize(p)
	return opts
}

// conventionsAndSize is conventions with the bytes of text (keys and
// values) that each canonical form encodes, a measure of its cost.
func conventionsAndSize(p *params.Params) ([]CanonicalOptions, int64) {
	var f features
	for _, k := range p.Keys() {
		if k != "sign" {
			f.size += int64(len(k))
			f.scan(p.Get(k))
		}
	}
	out := make([]CanonicalOptions, 0, 8)
	for _, omit := range []bool{false, true} {
		if omit && !f.empty {
			continue
		}
		for _, sorted := range []bool{false, true} {
			if sorted && !f.unsorted {
				continue
			}
			for _, literal := range []bool{false, true} {
				if literal && !f.numbers {
					continue
				}
				out = append(out, CanonicalOptions{OmitEmpty: omit, SortNested: sorted, LiteralNumbers: literal})
			}
		}
	}
	return out, f.size
}

// features records which CanonicalOptions make a difference.
type features struct {
	empty    bool // an empty value (OmitEmpty)
	unsorted bool // a nested object whose received order is not sorted (SortNested)
	numbers  bool // a number JavaScript prints differently (LiteralNumbers)
	size     int64
}

// scan looks at a parameter's value; every object it meets is nested (the
// top level is sorted whatever the options).
func (f *features) scan(v *params.Value) {
	switch v.Kind() {
	case params.Object:
		keys := v.Keys()
		if !f.unsorted && !slices.Equal(jsKeyOrder(slices.Clone(keys)), sortedCopy(keys)) {
			f.unsorted = true
		}
		for _, k := range keys {
			f.size += int64(len(k))
			f.scan(v.Field(k))
		}
	case params.Array:
		for _, it := range v.Items() {
			f.scan(it)
		}
	case params.Number:
		if !f.numbers && jsNumber(v.Text()) != v.Text() {
			f.numbers = true
		}
	default:
		if v.Text() == "" {
			f.empty = true
		}
	}
	f.size += int64(len(v.Text()))
}

func sortedCopy(keys []string) []string {
	s := slices.Clone(keys)
	sort.Strings(s)
	return s
}

// canonWriter writes qs pairs, '&' between them.
type canonWriter struct {
	w     sink
	opts  CanonicalOptions
	wrote bool
}

func (c *canonWriter) pairs(prefix string, v *params.Value) {
	switch v.Kind() {
	case params.Object:
		keys := v.Keys()
		if c.opts.SortNested {
			keys = sortedCopy(keys)
		} else {
			keys = jsKeyOrder(keys)
		}
		for _, k := range keys {
			c.pairs(prefix+"["+k+"]", v.Field(k))
		}
		return
	case params.Array:
		for i, it := range v.Items() {
			c.pairs(prefix+"["+strconv.Itoa(i)+"]", it)
		}
		return
	}
	text := v.Text()
	if v.Kind() == params.Number && !c.opts.LiteralNumbers {
		text = jsNumber(text)
	}
	if c.opts.OmitEmpty && text == "" {
		return
	}
	if c.wrote {
		c.w.WriteByte('&')
	}
	c.wrote = true
	encode(c.w, prefix)
	c.w.WriteByte('=')
	encode(c.w, text)
}

// encode percent-encodes s like qs's RFC 3986 encoder: only A-Za-z0-9-._~
// are kept, every other UTF-8 byte becomes %XX with uppercase hex. Runs of
// kept bytes are written as they are; escapes go through a small buffer.
func encode(w sink, s string) {
	const hexDigits = "0123456789ABCDEF"
	var buf [512]byte
	n, start := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			continue
		}
		if start < i {
			if n > 0 {
				w.Write(buf[:n])
				n = 0
			}
			w.WriteString(s[start:i])
		}
		if n+3 > len(buf) {
			w.Write(buf[:n])
			n = 0
		}
		buf[n], buf[n+1], buf[n+2] = '%', hexDigits[c>>4], hexDigits[c&15]
		n += 3
		start = i + 1
	}
	if n > 0 {
		w.Write(buf[:n])
	}
	if start < len(s) {
		w.WriteString(s[start:])
	}
}

// jsKeyOrder orders keys as a JavaScript object enumerates them: array-index
// keys ("0" … "4294967294") first in numeric order, then the others in
// insertion order. Clients and node-chat build their objects in JavaScript,
// so this is the order qs.stringify sees.
func jsKeyOrder(keys []string) []string {
	var idx []string
	for _, k := range keys {
		if isArrayIndex(k) {
			idx = append(idx, k)
		}
	}
	if len(idx) == 0 {
		return keys
	}
	sort.Slice(idx, func(i, j int) bool {
		a, _ := strconv.ParseUint(idx[i], 10, 64)
		c, _ := strconv.ParseUint(idx[j], 10, 64)
		return a < c
	})
	out := idx
	for _, k := range keys {
		if !isArrayIndex(k) {
			out = append(out, k)
		}
	}
	return out
}

func isArrayIndex(k string) bool {
	n, err := strconv.ParseUint(k, 10, 64)
	return err == nil && n < math.MaxUint32 && strconv.FormatUint(n, 10) == k
}

// jsNumber formats a JSON number literal as JavaScript's String(Number(s))
// does (ECMAScript Number::toString). Text that is not a number is returned
// unchanged.
func jsNumber(s string) string {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return s
		}
	}
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	case f == 0:
		return "0"
	case f < 0:
		return "-" + jsNumber(strconv.FormatFloat(-f, 'g', -1, 64))
	}
	// Shortest round-trip digits and exponent: d.ddde±x.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	k := len(digits)
	n := x + 1 // value = 0.digits × 10^n
	switch {
	case k <= n && n <= 21:
		return digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return "0." + strings.Repeat("0", -n) + digits
	}
	sign := "+"
	if n-1 < 0 {
		sign = "-"
	}
	ex := strconv.Itoa(abs(n - 1))
	if k == 1 {
		return digits + "e" + sign + ex
	}
	return digits[:1] + "." + digits[1:] + "e" + sign + ex
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
