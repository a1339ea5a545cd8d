package blob

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPresignKnownAnswer checks the signer against the presigned-URL example
// of the S3 SigV4 documentation.
func TestPresignKnownAnswer(t *testing.T) {
	c := credentials{accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	u, _ := url.Parse("https://examplebucket.s3.amazonaws.com/test.txt")
	at := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
	got := c.presign(u, "us-east-1", 86400*time.Second, at)
	const want = "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	if !strings.Contains(got, want) {
		t.Errorf("presign = %s\nwant %s", got, want)
	}
}

func TestURIEncode(t *testing.T) {
	for in, want := range map[string]string{
		"a-b_c.~d": "a-b_c.~d", "a b": "a%20b", "a/b": "a%2Fb", "é": "%C3%A9", "a+b=c&d": "a%2Bb%3Dc%26d",
	} {
		if got := uriEncode(in, false); got != want {
			t.Errorf("uriEncode(%q) = %q, want %q", in, got, want)
		}
	}
	if got := uriEncode("/p/a b", true); got != "/p/a%20b" {
		t.Errorf("path = %q", got)
	}
}
