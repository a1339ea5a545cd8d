package blob_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/blob"
	"github.com/chatd/chatd/internal/blob/blobtest"
)

func TestDiskConformance(t *testing.T) {
	blobtest.Run(t, blobtest.Options{}, func(t *testing.T) blob.Store {
		d, err := blob.NewDisk(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// TestS3Conformance runs the suite against a real S3-compatible server
// (CHATD_TEST_S3; .ci/run starts one).
func TestS3Conformance(t *testing.T) {
	cfg := blobtest.S3Config(t)
	blobtest.Run(t, blobtest.Options{PartSize: blob.MinPartSize}, func(t *testing.T) blob.Store {
		c := cfg
		c.Prefix += strings.ReplaceAll(t.Name(), "/", "-") + "/"
		return blobtest.OpenS3(t, c)
	})
}

func TestS3Presign(t *testing.T) {
	cfg := blobtest.S3Config(t)
	s := blobtest.OpenS3(t, cfg)
	ctx := context.Background()
	key, _ := blob.NewKey(".txt")
	if _, err := s.Put(ctx, key, strings.NewReader("presigned hello")); err != nil {
		t.Fatal(err)
	}
	u, err := s.PresignGet(key, time.Minute, "text/plain; charset=utf-8", "attachment; filename*=UTF-8''a%20b.txt")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u, cfg.SecretAccessKey) {
		t.Fatal("presigned URL holds the secret")
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || b.String() != "presigned hello" {
		t.Fatalf("GET presigned = %d %q", resp.StatusCode, b.String())
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	// Tampering with what the URL covers is refused.
	bad := strings.Replace(u, "response-content-type=text", "response-content-type=tex", 1)
	if resp, err := http.Get(bad); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("tampered URL = %v %v, want 403", resp.StatusCode, err)
	}
}

// TestS3BadCredentials: a refused secret or a missing bucket shows in Ping
// and in every write, with a clear error that never holds the secret, and
// nothing is written.
func TestS3BadCredentials(t *testing.T) {
	cfg := blobtest.S3Config(t)
	good := blobtest.OpenS3(t, cfg)
	ctx := context.Background()
	bad := cfg
	bad.SecretAccessKey = "wrong-secret-" + cfg.SecretAccessKey
	missing := cfg
	missing.Bucket = "no-such-bucket-chatd"
	for name, c := range map[string]blob.S3Config{"bad secret": bad, "missing bucket": missing} {
		s, err := blob.NewS3(c)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Ping(ctx)
		if err == nil || !errors.Is(err, blob.ErrUnavailable) {
			t.Errorf("%s: Ping = %v", name, err)
		}
		key, _ := blob.NewKey(".txt")
		_, perr := s.Put(ctx, key, strings.NewReader("x"))
		if perr == nil || !errors.Is(perr, blob.ErrUnavailable) {
			t.Errorf("%s: Put = %v", name, perr)
		}
		for _, e := range []error{err, perr} {
			if e != nil && strings.Contains(e.Error(), cfg.SecretAccessKey) {
				t.Errorf("%s: error holds the secret: %v", name, e)
			}
		}
		t.Logf("%s: %v", name, err)
	}
	if keys, err := good.List(ctx); err != nil || len(keys) != 0 {
		t.Errorf("bucket holds %v %v", keys, err)
	}
}

func TestParseS3URL(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "TOK"}
	getenv := func(k string) string { return env[k] }
	c, err := blob.ParseS3URL("s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-1&path_style=true", getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := blob.S3Config{Bucket: "bucket", Prefix: "some/prefix/", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1",
		PathStyle: true, AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: "TOK"}
	if c != want {
		t.Errorf("got %+v", c)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("blobs", "cfg", c)
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v", c, c), logged.String()} {
		if strings.Contains(s, "SECRET") || strings.Contains(s, "TOK") {
			t.Errorf("credentials shown: %s", s)
		}
	}
	c, err = blob.ParseS3URL("s3://b", getenv)
	if err != nil || c.Prefix != "" || c.Region != "us-east-1" || c.PathStyle {
		t.Errorf("defaults: %+v %v", c, err)
	}
	for _, bad := range []string{"s3://", "s3:///x", "http://b/x", "s3://key:secret@b/x", "s3://b?path_style=maybe", "s3://b?foo=1"} {
		if _, err := blob.ParseS3URL(bad, getenv); err == nil {
			t.Errorf("ParseS3URL(%q) accepted", bad)
		}
	}
	if _, err := blob.ParseS3URL("s3://b", func(string) string { return "" }); err == nil {
		t.Error("accepted without credentials")
	}
}

// TestS3Requests checks the requests the store sends against a recording
// server: addressing styles, escaping, signature headers, and that the
// secret never travels.
func TestS3Requests(t *testing.T) {
	var got []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	for _, pathStyle := range []bool{true, false} {
		got = nil
		cfg := blob.S3Config{Bucket: "bkt", Prefix: "p/", Endpoint: srv.URL, PathStyle: pathStyle,
			AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: "TOKEN"}
		if !pathStyle {
			// Virtual-hosted style puts the bucket in the host name; send
			// it to the test server whatever the name.
			u, _ := url.Parse(srv.URL)
			cfg.Client = &http.Client{Transport: &http.Transport{Proxy: func(*http.Request) (*url.URL, error) { return u, nil }}}
		}
		s, err := blob.NewS3(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(context.Background(), "a-b_c.txt", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		r := got[0]
		wantPath, wantHost := "/bkt/p/a-b_c.txt", strings.TrimPrefix(srv.URL, "http://")
		if !pathStyle {
			wantPath, wantHost = "/p/a-b_c.txt", "bkt."+wantHost
		}
		if r.Method != http.MethodPut || r.URL.Path != wantPath || r.Host != wantHost {
			t.Errorf("path style %v: %s %s %s", pathStyle, r.Method, r.Host, r.URL.Path)
		}
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKID/") || !strings.Contains(auth, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token") {
			t.Errorf("Authorization = %q", auth)
		}
		if r.Header.Get("X-Amz-Security-Token") != "TOKEN" {
			t.Error("no session token")
		}
		for k, v := range r.Header {
			if strings.Contains(strings.Join(v, " "), "SECRET") {
				t.Errorf("header %s holds the secret", k)
			}
		}
	}
}

// TestS3Retries: answers S3 asks clients to retry are retried a few times;
// others are not.
func TestS3Retries(t *testing.T) {
	var calls atomic.Int32
	var failFirst atomic.Int32
	status := atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if calls.Add(1) <= failFirst.Load() {
			w.WriteHeader(int(status.Load()))
			io.WriteString(w, "<Error><Code>SlowDown</Code><Message>reduce your request rate</Message></Error>")
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	s, err := blob.NewS3(blob.S3Config{Bucket: "b", Endpoint: srv.URL, PathStyle: true, AccessKeyID: "a", SecretAccessKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		status, fail int32
		wantCalls    int32
		wantErr      bool
	}{
		{503, 2, 3, false}, // two SlowDowns, then success
		{503, 5, 3, true},  // gives up after three tries
		{500, 1, 2, false},
		{403, 1, 1, true}, // refusals are final
	} {
		calls.Store(0)
		failFirst.Store(tt.fail)
		status.Store(tt.status)
		_, err := s.Put(context.Background(), "k.txt", strings.NewReader("x"))
		if calls.Load() != tt.wantCalls || (err != nil) != tt.wantErr {
			t.Errorf("%d ×%d: %d calls, err %v; want %d calls, error %v", tt.status, tt.fail, calls.Load(), err, tt.wantCalls, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "HTTP "+strconv.Itoa(int(tt.status))) {
			t.Errorf("error %q does not name the status", err)
		}
	}
}

// TestS3FinishingWriteIsNotCancelled: a client hanging up while the last
// request of a write is in flight must not make Put report a failure for a
// write the service then applies (the caller would never delete it).
func TestS3FinishingWriteIsNotCancelled(t *testing.T) {
	received, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		close(received)
		<-release
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	s, err := blob.NewS3(blob.S3Config{Bucket: "b", Endpoint: srv.URL, PathStyle: true, AccessKeyID: "a", SecretAccessKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-received
		cancel()
		close(release)
	}()
	if _, err := s.Put(ctx, "k.txt", strings.NewReader("x")); err != nil {
		t.Errorf("Put = %v; the service applied the write", err)
	}
}
