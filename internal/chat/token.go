package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// A user token is base64url("appId:version:expires:userId") + "." + base64url(mac),
// mac = HMAC-SHA256(appSecret, "chatd-token\x00" + payload), truncated to 18
// bytes. It names its own user, so verifying it costs one primary-key read
// (for the token version), never a scan; the same user gets the same token
// until the version is bumped, which revokes every earlier token. expires is
// unix seconds, or 0 for a token that lives until revoked.

const tokenMACLen = 18

func tokenMAC(secret, payload string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte("chatd-token\x00"))
	h.Write([]byte(payload))
	return h.Sum(nil)[:tokenMACLen]
}

func issueToken(secret, appID, userID string, version, expires int64) string {
	payload := appID + ":" + strconv.FormatInt(version, 10) + ":" + strconv.FormatInt(expires, 10) + ":" + userID
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." +
		base64.RawURLEncoding.EncodeToString(tokenMAC(secret, payload))
}

type tokenClaims struct {
	appID, userID string
	version       int64
	expires       int64
	payload       string
	mac           []byte
}

// maxTokenBytes bounds what is decoded before any check: a real token is
// under 300 bytes even with a 128-byte user id and app id.
const maxTokenBytes = 1024

// parseToken decodes a token without verifying it.
func parseToken(token string) (tokenClaims, error) {
	var c tokenClaims
	if len(token) > maxTokenBytes {
		return c, fmt.Errorf("%w: too long", ErrBadToken)
	}
	p64, m64, ok := strings.Cut(token, ".")
	if !ok {
		return c, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return c, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	c.mac, err = base64.RawURLEncoding.DecodeString(m64)
	if err != nil || len(c.mac) != tokenMACLen {
		return c, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	parts := strings.SplitN(string(payload), ":", 4)
	if len(parts) != 4 {
		return c, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	c.version, err = strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return c, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	c.expires, err = strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return c, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	c.appID, c.userID, c.payload = parts[0], parts[3], string(payload)
	return c, nil
}

func (c tokenClaims) validFor(secret string) bool {
	return hmac.Equal(c.mac, tokenMAC(secret, c.payload))
}
