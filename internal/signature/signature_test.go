package signature

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/params"
)

func parseVector(t testing.TB, kind, body string) *params.Params {
	t.Helper()
	var p *params.Params
	var err error
	if kind == "form" {
		p, err = params.FromForm([]byte(body))
	} else {
		p, err = params.FromJSON([]byte(body))
	}
	if err != nil {
		t.Fatalf("parse %s: %v", body, err)
	}
	return p
}

func TestCanonicalVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			p := parseVector(t, v.kind, v.body)
			for _, c := range []struct {
				opts CanonicalOptions
				want string
			}{
				{CanonicalOptions{}, v.canon},
				{CanonicalOptions{OmitEmpty: true}, v.omit},
				{CanonicalOptions{SortNested: true}, v.sorted},
			} {
				if got := Canonical(p, c.opts); got != c.want {
					t.Errorf("Canonical(%+v)\n got %s\nwant %s", c.opts, got, c.want)
				}
			}
			if got := Sign(p, vectorSecret); got != v.sign {
				t.Errorf("Sign = %s, want %s", got, v.sign)
			}
			for _, s := range []string{v.sign, strings.ToUpper(v.sign),
				digest(v.omit, vectorSecret), digest(v.sorted, vectorSecret)} {
				if !Match(p, vectorSecret, s) {
					t.Errorf("Match(%s) = false", s)
				}
			}
			if Match(p, vectorSecret+"x", v.sign) || Match(p, vectorSecret, "") {
				t.Error("Match accepted a wrong secret or an empty sign")
			}
		})
	}
}

func TestJSNumber(t *testing.T) {
	tests := map[string]string{
		"0": "0", "-0": "0", "1": "1", "1.50": "1.5", "20": "20", "1e3": "1000", "-2.5e-3": "-0.0025",
		"1e21": "1e+21", "1e-7": "1e-7", "0.000001": "0.000001", "123456789012345678901234567890": "1.2345678901234568e+29",
		"100000000000000000000": "100000000000000000000", "1.5e300": "1.5e+300", "1e400": "Infinity", "-1e400": "-Infinity",
		"5e-324": "5e-324", "0.1": "0.1", "x": "x",
	}
	for in, want := range tests {
		if got := jsNumber(in); got != want {
			t.Errorf("jsNumber(%s) = %s, want %s", in, got, want)
		}
	}
}

// signed builds a request signed in node-chat's default form.
func signed(secret string, ts int64, nonce string, extra ...string) *params.Params {
	p := params.New()
	p.Add("app_id", "app1")
	p.Add("time_stamp", fmt.Sprint(ts))
	p.Add("nonce_str", nonce)
	for i := 0; i+1 < len(extra); i += 2 {
		p.Add(extra[i], extra[i+1])
	}
	p.Add("sign", Sign(p, secret))
	return p
}

func TestVerify(t *testing.T) {
	const secret = "topsecret"
	now := time.UnixMilli(1_700_000_000_000)
	ms := now.UnixMilli()
	minute := int64(60_000)

	type tc struct {
		name string
		p    func() *params.Params
		code int
		msg  string
	}
	resign := func(p *params.Params, opts CanonicalOptions, upper bool) *params.Params {
		p.Delete("sign")
		s := digest(Canonical(p, opts), secret)
		if upper {
			s = strings.ToUpper(s)
		}
		p.Add("sign", s)
		return p
	}
	without := func(key string) func() *params.Params {
		return func() *params.Params {
			p := signed(secret, ms, "n-"+key, "userId", "u1")
			p.Delete(key)
			return p
		}
	}
	tests := []tc{
		{"ok lower hex", func() *params.Params { return signed(secret, ms, "n1", "userId", "u1") }, 0, ""},
		{"ok upper hex", func() *params.Params {
			return resign(signed(secret, ms, "n2", "userId", "u1"), CanonicalOptions{}, true)
		}, 0, ""},
		{"ok empty kept", func() *params.Params { return signed(secret, ms, "n3", "avatarUri", "") }, 0, ""},
		{"ok empty omitted (README)", func() *params.Params {
			return resign(signed(secret, ms, "n4", "avatarUri", ""), CanonicalOptions{OmitEmpty: true}, true)
		}, 0, ""},
		{"ok seconds", func() *params.Params { return signed(secret, ms/1000, "n5") }, 0, ""},
		{"ok 4m59s old", func() *params.Params { return signed(secret, ms-5*minute+1000, "n6") }, 0, ""},
		{"ok 4m59s ahead", func() *params.Params { return signed(secret, ms+5*minute-1000, "n7") }, 0, ""},
		{"ok nested sorted", func() *params.Params {
			p, _ := params.FromJSON([]byte(`{"app_id":"app1","time_stamp":"` + fmt.Sprint(ms) + `","nonce_str":"n8","content":{"z":"1","a":2.0}}`))
			return resign(p, CanonicalOptions{SortNested: true, LiteralNumbers: true}, false)
		}, 0, ""},
		{"expired", func() *params.Params { return signed(secret, ms-5*minute-1000, "n9") }, 1002, "time_stamp is more than 5 minutes away from server time"},
		{"future", func() *params.Params { return signed(secret, ms+5*minute+1000, "n10") }, 1002, "time_stamp is more than 5 minutes away from server time"},
		{"expired seconds", func() *params.Params { return signed(secret, ms/1000-301, "n11") }, 1002, "time_stamp is more than 5 minutes away"},
		{"bad time_stamp", func() *params.Params {
			p := signed(secret, ms, "n12")
			p.Add("time_stamp", "yesterday")
			return resign(p, CanonicalOptions{}, false)
		}, 1002, "time_stamp must be an integer"},
		{"wrong secret", func() *params.Params { return signed("other", ms, "n13") }, 1004, "signature mismatch"},
		{"tampered", func() *params.Params {
			p := signed(secret, ms, "n14", "userId", "u1")
			p.Add("userId", "u2")
			return p
		}, 1004, "signature mismatch"},
		{"garbage sign", func() *params.Params {
			p := signed(secret, ms, "n15")
			p.Add("sign", "zz")
			return p
		}, 1004, "signature mismatch"},
		{"replayed nonce", func() *params.Params { return signed(secret, ms, "n1", "userId", "u1") }, 1004, "nonce_str already used"},
		{"missing app_id", without("app_id"), 1002, "missing parameter app_id"},
		{"missing time_stamp", without("time_stamp"), 1002, "missing parameter time_stamp"},
		{"missing nonce_str", without("nonce_str"), 1002, "missing parameter nonce_str"},
		{"missing sign", without("sign"), 1002, "missing parameter sign"},
		{"long nonce", func() *params.Params { return signed(secret, ms, strings.Repeat("n", 200)) }, 1002, "nonce_str is longer"},
		{"nonce with a control character", func() *params.Params { return signed(secret, ms, "n\x00x") }, 1002, "control characters"},
		{"nonce not UTF-8", func() *params.Params { return signed(secret, ms, "n\xffx") }, 1002, "control characters"},
		{"ok nonce in any script", func() *params.Params { return signed(secret, ms, "随机-ñ-🎲") }, 0, ""},
		{"short sign", func() *params.Params {
			p := signed(secret, ms, "n16")
			p.Add("sign", "abc")
			return p
		}, 1004, "signature mismatch"},
	}
	v := NewVerifier(5 * time.Minute)
	v.Now = func() time.Time { return now }
	for _, tt := range tests {
		err := v.Verify(context.Background(), tt.p(), secret)
		if tt.code == 0 {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var se *Error
		if !errors.As(err, &se) || se.Code != tt.code || !strings.Contains(se.Message, tt.msg) {
			t.Errorf("%s: got %v, want %d %q", tt.name, err, tt.code, tt.msg)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error leaks the secret", tt.name)
		}
	}
}

func TestNonceExpiryAndCap(t *testing.T) {
	const secret = "k"
	now := time.UnixMilli(1_700_000_000_000)
	v := NewVerifier(time.Minute)
	v.MaxNonces = 3
	v.Now = func() time.Time { return now }

	for i := range 3 {
		if err := v.Verify(context.Background(), signed(secret, now.UnixMilli(), fmt.Sprint("n", i)), secret); err != nil {
			t.Fatal(err)
		}
	}
	err := v.Verify(context.Background(), signed(secret, now.UnixMilli(), "n3"), secret)
	var se *Error
	if !errors.As(err, &se) || se.Code != CodeOther || !strings.Contains(se.Message, "retry later") {
		t.Fatalf("over the cap: %v", err)
	}
	// A refused request does not burn its nonce, nor does a bad signature.
	if err := v.Verify(context.Background(), signed("wrong", now.UnixMilli(), "n9"), secret); err == nil {
		t.Fatal("bad signature accepted")
	}

	// Once the window has passed for the old timestamps, their nonces are
	// forgotten (their requests can no longer be replayed anyway).
	now = now.Add(61 * time.Second)
	if err := v.Verify(context.Background(), signed(secret, now.UnixMilli(), "n0"), secret); err != nil {
		t.Fatalf("nonce after expiry: %v", err)
	}
	if n := v.nonceCount("app1"); n != 1 {
		t.Errorf("remembered %d nonces, want 1", n)
	}
	// A nonce with a future timestamp is kept until that timestamp expires.
	if err := v.Verify(context.Background(), signed(secret, now.UnixMilli()+50_000, "f"), secret); err != nil {
		t.Fatal(err)
	}
	now = now.Add(90 * time.Second)
	if err := v.Verify(context.Background(), signed(secret, now.UnixMilli()-50_000, "f"), secret); err == nil {
		t.Error("future-stamped nonce replayed while its timestamp is still valid")
	}
}

func TestNonceConcurrent(t *testing.T) {
	const secret = "k"
	v := NewVerifier(0)
	ms := time.Now().UnixMilli()
	reqs := make([]*params.Params, 50)
	for i := range reqs {
		reqs[i] = signed(secret, ms, fmt.Sprint("nonce-", i))
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, p := range reqs {
				if v.Verify(context.Background(), p, secret) == nil {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := ok.Load(); got != int64(len(reqs)) {
		t.Errorf("%d requests accepted, want each nonce exactly once (%d)", got, len(reqs))
	}
}

func FuzzCanonical(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.body)
	}
	f.Add("a[b][c]=1&a[d][]=2&x=%E4%BD%A0+~")
	f.Add("userIds[0]=a&userIds[5]=b&userIds[b]=c")
	f.Fuzz(func(t *testing.T, body string) {
		for _, parse := range []func([]byte) (*params.Params, error){params.FromJSON, params.FromForm} {
			p, err := parse([]byte(body))
			if err != nil {
				continue
			}
			for _, opts := range []CanonicalOptions{{}, {OmitEmpty: true}, {SortNested: true}, {LiteralNumbers: true}} {
				c1, c2 := Canonical(p, opts), Canonical(p, opts)
				if c1 != c2 {
					t.Fatalf("not deterministic: %q vs %q", c1, c2)
				}
				for i := 0; i < len(c1); i++ {
					if c := c1[i]; c < 0x21 || c > 0x7e {
						t.Fatalf("unencoded byte %q in %q", c, c1)
					}
				}
			}
			if s := Sign(p, "k"); !Match(p, "k", s) {
				t.Fatalf("own signature refused for %q", body)
			}
			// Leaving out the conventions that change nothing loses no
			// accepted signature.
			for _, omit := range []bool{false, true} {
				for _, sorted := range []bool{false, true} {
					for _, literal := range []bool{false, true} {
						opts := CanonicalOptions{OmitEmpty: omit, SortNested: sorted, LiteralNumbers: literal}
						if s := digest(Canonical(p, opts), "k"); !Match(p, "k", s) {
							t.Fatalf("signature in form %+v refused for %q", opts, body)
						}
						if s := routeDigest(p, opts, "POST /x", "k"); !MatchRoute(p, "k", s, "POST /x") || Match(p, "k", s) {
							t.Fatalf("route-bound signature in form %+v: refused on its route or accepted without it, for %q", opts, body)
						}
					}
				}
			}
		}
	})
}

// flakyStore is a shared nonce store that fails while down.
type flakyStore struct {
	down bool
	used map[string]bool
}

func (f *flakyStore) UseNonce(_ context.Context, app, nonce string, _ time.Time) (bool, error) {
	if f.down {
		return false, errors.New("store unreachable")
	}
	if f.used[app+"\x00"+nonce] {
		return false, nil
	}
	f.used[app+"\x00"+nonce] = true
	return true, nil
}

// TestSharedFailureIsNotAReplay: a request refused because the shared nonce
// store failed ("retry later") is accepted when retried, and only then is
// its nonce used up.
func TestSharedFailureIsNotAReplay(t *testing.T) {
	const secret = "k"
	shared := &flakyStore{down: true, used: map[string]bool{}}
	v := NewVerifier(0)
	v.Shared = shared
	p := signed(secret, time.Now().UnixMilli(), "once")
	var se *Error
	if err := v.Verify(context.Background(), p, secret); !errors.As(err, &se) || se.Code != CodeOther {
		t.Fatalf("with the store down: %v; want retry later", err)
	}
	shared.down = false
	if err := v.Verify(context.Background(), p, secret); err != nil {
		t.Fatalf("the retry was refused: %v", err)
	}
	if err := v.Verify(context.Background(), p, secret); !errors.As(err, &se) || !strings.Contains(se.Message, "already used") {
		t.Fatalf("a replay of the accepted request: %v; want already used", err)
	}
	// Another node's verifier (an empty local cache) refuses it through the store.
	w := NewVerifier(0)
	w.Shared = shared
	if err := w.Verify(context.Background(), p, secret); !errors.As(err, &se) || !strings.Contains(se.Message, "already used") {
		t.Fatalf("a replay to another node: %v; want already used", err)
	}
}

// TestRouteBound: with a route, the signature must cover it; node-chat's
// recipe is refused, and so is the signature of another route.
func TestRouteBound(t *testing.T) {
	const secret = "k"
	v := NewVerifier(0)
	ms := time.Now().UnixMilli()
	plain := signed(secret, ms, "r1", "userId", "u")
	var se *Error
	if err := v.VerifyRoute(context.Background(), plain, secret, "POST /user/getToken"); !errors.As(err, &se) || se.Code != CodeBadSignature {
		t.Fatalf("node-chat's recipe on a route-bound app: %v; want a signature mismatch", err)
	}
	bound := func(nonce, route string) *params.Params {
		p := signed(secret, ms, nonce, "userId", "u")
		p.Delete("sign")
		p.Add("sign", SignRoute(p, secret, route))
		return p
	}
	if err := v.VerifyRoute(context.Background(), bound("r2", "GET /user/sessions"), secret, "POST /user/getToken"); !errors.As(err, &se) || se.Code != CodeBadSignature {
		t.Fatalf("signed for another route: %v; want a signature mismatch", err)
	}
	if err := v.VerifyRoute(context.Background(), bound("r3", "POST /user/getToken"), secret, "POST /user/getToken"); err != nil {
		t.Fatalf("signed for its route: %v", err)
	}
}
