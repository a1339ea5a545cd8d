package blob

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// AWS Signature Version 4, as S3 and the S3-compatible servers check it: a
// canonical form of the request is hashed and signed with a key derived from
// the secret, the date, the region and the service. Only what chatd sends is
// covered: the host and x-amz-* headers are signed, and the payload hash is
// the body's SHA-256 (or UNSIGNED-PAYLOAD for presigned URLs).

const (
	sigAlgorithm    = "AWS4-HMAC-SHA256"
	amzDateFormat   = "20060102T150405Z"
	unsignedPayload = "UNSIGNED-PAYLOAD"
)

// emptySHA256 is the hash of an empty body.
var emptySHA256 = hashHex(nil)

type credentials struct {
	accessKey, secretKey, sessionToken string
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func (c credentials) signingKey(day, region string) []byte {
	k := hmacSHA256([]byte("AWS4"+c.secretKey), day)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, "s3")
	return hmacSHA256(k, "aws4_request")
}

// uriEncode escapes s as SigV4 wants: everything but the unreserved
// characters, and '/' too unless keepSlash.
func uriEncode(s string, keepSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && keepSlash:
			b.WriteByte(c)
		default:
			const hexdig = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hexdig[c>>4])
			b.WriteByte(hexdig[c&15])
		}
	}
	return b.String()
}

// canonicalQuery sorts the parameters by name and escapes names and values.
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, uriEncode(k, false)+"="+uriEncode(v, false))
		}
	}
	return strings.Join(parts, "&")
}

// stringToSign builds the canonical request of method, escaped path, query
// and the given headers (lowercase names, already trimmed) and returns the
// string to sign and the signed header list.
func stringToSign(method, escapedPath string, q url.Values, headers map[string]string, payloadHash, stamp, scope string) (string, string) {
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var ch strings.Builder
	for _, k := range names {
		ch.WriteString(k + ":" + headers[k] + "\n")
	}
	signed := strings.Join(names, ";")
	creq := strings.Join([]string{method, escapedPath, canonicalQuery(q), ch.String(), signed, payloadHash}, "\n")
	return sigAlgorithm + "\n" + stamp + "\n" + scope + "\n" + hashHex([]byte(creq)), signed
}

// sign adds the Authorization header (and the x-amz-* headers it covers) to
// req, whose URL must already hold the final path and query.
func (c credentials) sign(req *http.Request, region, payloadHash string, now time.Time) {
	now = now.UTC()
	stamp := now.Format(amzDateFormat)
	day := stamp[:8]
	req.Header.Set("X-Amz-Date", stamp)
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if c.sessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", c.sessionToken)
	}
	headers := map[string]string{"host": req.URL.Host}
	for k, vs := range req.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") || lk == "content-type" || lk == "content-md5" {
			headers[lk] = strings.TrimSpace(strings.Join(vs, ","))
		}
	}
	scope := day + "/" + region + "/s3/aws4_request"
	sts, signed := stringToSign(req.Method, req.URL.EscapedPath(), req.URL.Query(), headers, payloadHash, stamp, scope)
	sig := hex.EncodeToString(hmacSHA256(c.signingKey(day, region), sts))
	req.Header.Set("Authorization", sigAlgorithm+" Credential="+c.accessKey+"/"+scope+
		", SignedHeaders="+signed+", Signature="+sig)
}

// presign returns u with query authentication valid for ttl: anyone holding
// the URL may GET the object until then, and no one can change what it
// covers (the object and the response header overrides in u's query).
func (c credentials) presign(u *url.URL, region string, ttl time.Duration, now time.Time) string {
	now = now.UTC()
	stamp := now.Format(amzDateFormat)
	day := stamp[:8]
	scope := day + "/" + region + "/s3/aws4_request"
	q := u.Query()
	q.Set("X-Amz-Algorithm", sigAlgorithm)
	q.Set("X-Amz-Credential", c.accessKey+"/"+scope)
	q.Set("X-Amz-Date", stamp)
	q.Set("X-Amz-Expires", itoa(int64(ttl/time.Second)))
	q.Set("X-Amz-SignedHeaders", "host")
	if c.sessionToken != "" {
		q.Set("X-Amz-Security-Token", c.sessionToken)
	}
	sts, _ := stringToSign(http.MethodGet, u.EscapedPath(), q, map[string]string{"host": u.Host}, unsignedPayload, stamp, scope)
	q.Set("X-Amz-Signature", hex.EncodeToString(hmacSHA256(c.signingKey(day, region), sts)))
	out := *u
	out.RawQuery = canonicalQuery(q)
	return out.String()
}
