// Package signature checks node-chat's request signatures: MD5 over the
// request parameters serialised like npm qs.stringify, with the app secret
// appended, plus a timestamp window and a per-app nonce replay cache.
package signature

import (
	"crypto/md5"
	"encoding/hex"
	"math"
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
	keys := p.Keys()
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if k == "sign" {
			continue
		}
		writePairs(&b, k, p.Get(k), opts)
	}
	return b.String()
}

// Sign returns the lower-case hex signature of p with secret in node-chat's
// default form (Canonical with zero options).
func Sign(p *params.Params, secret string) string {
	return digest(Canonical(p, CanonicalOptions{}), secret)
}

func digest(canonical, secret string) string {
	sum := md5.Sum([]byte(canonical + "&app_key=" + secret))
	return hex.EncodeToString(sum[:])
}

func writePairs(b *strings.Builder, prefix string, v *params.Value, opts CanonicalOptions) {
	switch v.Kind() {
	case params.Object:
		keys := v.Keys()
		if opts.SortNested {
			sort.Strings(keys)
		} else {
			keys = jsKeyOrder(keys)
		}
		for _, k := range keys {
			writePairs(b, prefix+"["+k+"]", v.Field(k), opts)
		}
		return
	case params.Array:
		for i, it := range v.Items() {
			writePairs(b, prefix+"["+strconv.Itoa(i)+"]", it, opts)
		}
		return
	}
	text := v.Text()
	if v.Kind() == params.Number && !opts.LiteralNumbers {
		text = jsNumber(text)
	}
	if opts.OmitEmpty && text == "" {
		return
	}
	if b.Len() > 0 {
		b.WriteByte('&')
	}
	encode(b, prefix)
	b.WriteByte('=')
	encode(b, text)
}

// encode percent-encodes s like qs's RFC 3986 encoder: only A-Za-z0-9-._~
// are kept, every other UTF-8 byte becomes %XX with uppercase hex.
func encode(b *strings.Builder, s string) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
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
