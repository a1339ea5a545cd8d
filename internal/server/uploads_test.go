package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/blob"
	"github.com/chatd/chatd/internal/blob/blobtest"
	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/store"
)

type uploadReply struct {
	reply
	header http.Header
	URL    string
}

// zipData is n bytes sniffed as application/zip.
func zipData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	copy(b, "PK\x03\x04")
	return b
}

// uploadFile posts data in field up_file, after extra small form fields.
func (n *node) uploadFile(token string, data []byte, extra int) uploadReply {
	n.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := range extra {
		mw.WriteField(fmt.Sprintf("f%d", i), "")
	}
	fw, _ := mw.CreateFormFile("up_file", "a.zip")
	fw.Write(data)
	mw.Close()
	res, err := http.Post(n.ts.URL+"/file/upload?appId="+n.app.AppID+"&token="+token, mw.FormDataContentType(), &buf)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	var r uploadReply
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &r.reply); err != nil {
		n.t.Fatalf("upload: not an envelope: %q", b)
	}
	r.HTTP, r.header = res.StatusCode, res.Header
	var d struct{ FullURL string }
	json.Unmarshal(r.Data, &d)
	r.URL = d.FullURL
	return r
}

func (n *node) usage() store.FileUsage {
	n.t.Helper()
	u, err := n.srv.Store.FileUsage(context.Background(), n.app.AppID)
	if err != nil {
		n.t.Fatal(err)
	}
	return u
}

// held lists what the node's blob store holds (temporary files and pending
// multipart uploads included).
func (n *node) held() []string {
	n.t.Helper()
	keys, err := n.srv.Blobs.(blob.Lister).List(context.Background())
	if err != nil {
		n.t.Fatal(err)
	}
	return keys
}

// TestUploadLimits: each upload limit refuses with a clear error and the
// right HTTP status, keeps nothing of the refused upload, and leaves other
// users (or apps) alone.
func TestUploadLimits(t *testing.T) {
	type step struct {
		user     string
		size     int
		extra    int // form fields before the file
		wantHTTP int
		wantMsg  string
	}
	const ok = 200
	tests := []struct {
		name  string
		cfg   func(*config.Config)
		steps []step
	}{
		{"user files per minute", func(c *config.Config) { c.UserUploadFiles = 2 }, []step{
			{"alice", 100, 0, ok, ""}, {"alice", 100, 0, ok, ""},
			{"alice", 100, 0, 429, "at most 2 uploads per minute per user"},
			{"bob", 100, 0, ok, ""},
		}},
		{"app files per minute", func(c *config.Config) { c.AppUploadFiles = 3 }, []step{
			{"alice", 100, 0, ok, ""}, {"alice", 100, 0, ok, ""}, {"bob", 100, 0, ok, ""},
			{"carol", 100, 0, 429, "at most 3 uploads per minute per app"},
		}},
		{"user bytes", func(c *config.Config) { c.UserUploadRate, c.UserUploadBurst = 1, 1000 }, []step{
			// One upload may pass the burst; the next waits for the debt.
			{"alice", 2000, 0, ok, ""},
			{"alice", 10, 0, 429, "upload volume limit of this user"},
			{"bob", 2000, 0, ok, ""},
		}},
		{"app bytes", func(c *config.Config) { c.AppUploadRate, c.AppUploadBurst = 1, 1000 }, []step{
			{"alice", 2000, 0, ok, ""},
			{"bob", 10, 0, 429, "upload volume limit of this app"},
		}},
		{"refused uploads count too", func(c *config.Config) {
			c.UserUploadRate, c.UserUploadBurst, c.MaxUploadBytes = 1, 1000, 1500
		}, []step{
			{"alice", 5000, 0, 413, "larger than 1500 bytes"},
			{"alice", 10, 0, 429, "upload volume limit of this user"},
		}},
		{"app storage quota", func(c *config.Config) { c.AppStorageQuota = 1500 }, []step{
			{"alice", 1000, 0, ok, ""},
			{"bob", 1000, 0, 413, "storage quota of 1500 bytes"},
			{"bob", 400, 0, ok, ""},
			{"alice", 100, 0, ok, ""}, // exactly at the quota
			{"alice", 1, 0, 413, "storage quota of 1500 bytes is used up"},
		}},
		{"multipart parts", nil, []step{
			{"alice", 100, 3, ok, ""},
			{"alice", 100, 20, 413, "too many form fields"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mutate []func(*config.Config)
			if tt.cfg != nil {
				mutate = append(mutate, tt.cfg)
			}
			n := startNode(t, mutate...)
			tokens := map[string]string{}
			stored, storedBytes := 0, int64(0)
			for i, s := range tt.steps {
				if tokens[s.user] == "" {
					tokens[s.user] = n.token(s.user)
				}
				r := n.uploadFile(tokens[s.user], zipData(s.size), s.extra)
				if r.HTTP != s.wantHTTP || !strings.Contains(r.Message, s.wantMsg) || (s.wantHTTP == ok) != (r.Status == 1) {
					t.Fatalf("step %d (%s, %d bytes): HTTP %d %q; want HTTP %d containing %q", i, s.user, s.size, r.HTTP, r.Message, s.wantHTTP, s.wantMsg)
				}
				if s.wantHTTP == 429 {
					if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
						t.Errorf("step %d: Retry-After %q", i, r.header.Get("Retry-After"))
					}
				}
				if r.Status == 1 {
					stored++
					storedBytes += int64(s.size)
				}
				// Nothing of a refused upload is kept: blobs and usage
				// match the accepted uploads exactly.
				if u := n.usage(); u != (store.FileUsage{Bytes: storedBytes, Files: int64(stored)}) {
					t.Fatalf("step %d: usage %+v, want %d files, %d bytes", i, u, stored, storedBytes)
				}
				if h := n.held(); len(h) != stored {
					t.Fatalf("step %d: blob store holds %v, want %d files", i, h, stored)
				}
			}
		})
	}
}

// TestUploadFloodDefaults replays the flood of one token writing 400 MB in
// 5 s against the default limits: uploads of 16 MiB are refused with 429
// once the user's burst is spent, after at most burst + one file.
func TestUploadFloodDefaults(t *testing.T) {
	n := startNode(t)
	def := config.Default()
	token := n.token("flooder")
	file := zipData(16 << 20)
	var accepted int64
	for i := 0; ; i++ {
		r := n.uploadFile(token, file, 0)
		if r.HTTP == http.StatusTooManyRequests {
			break
		}
		if r.Status != 1 {
			t.Fatalf("upload %d: %+v", i, r.reply)
		}
		accepted += int64(len(file))
		if accepted > def.UserUploadBurst+def.MaxUploadBytes {
			t.Fatalf("%d bytes accepted without a 429; the default burst is %d", accepted, def.UserUploadBurst)
		}
	}
	if accepted < def.UserUploadBurst-int64(len(file)) {
		t.Errorf("refused after %d bytes, before the burst of %d was spent", accepted, def.UserUploadBurst)
	}
	// Another user of the app is not held back.
	if r := n.uploadFile(n.token("honest"), zipData(1000), 0); r.Status != 1 {
		t.Errorf("another user: %+v", r.reply)
	}
}

// TestUploadAbortedLeavesNothing: a client that hangs up in the middle of an
// upload, or a file over the size limit, leaves no blob, no temporary file or
// pending multipart upload, and no row, on file: and on s3: (where the body
// is large enough for a multipart upload to have begun).
func TestUploadAbortedLeavesNothing(t *testing.T) {
	for _, kind := range []string{"file", "s3"} {
		t.Run(kind, func(t *testing.T) {
			mutate := []func(*config.Config){func(c *config.Config) { c.MaxUploadBytes = 8 << 20 }}
			if kind == "s3" {
				dsn, _ := blobtest.S3URL(t)
				mutate = append(mutate, func(c *config.Config) { c.Blobs = dsn })
			}
			n := startNode(t, mutate...)
			token := n.token("alice")
			if r := n.uploadFile(token, zipData(9<<20), 0); r.HTTP != http.StatusRequestEntityTooLarge {
				t.Fatalf("oversized upload: %+v", r.reply)
			}
			if h := n.held(); len(h) != 0 {
				t.Errorf("after an oversized upload the blob store holds %v", h)
			}
			sent := 7 << 20
			u, _ := url.Parse(n.ts.URL)
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			const boundary = "b0undary"
			head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"up_file\"; filename=\"a.zip\"\r\n" +
				"Content-Type: application/zip\r\n\r\n"
			fmt.Fprintf(conn, "POST /file/upload?appId=%s&token=%s HTTP/1.1\r\nHost: %s\r\n"+
				"Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n%s",
				n.app.AppID, token, u.Host, boundary, 10<<20, head)
			conn.Write(zipData(sent))
			conn.Close()
			deadline := time.Now().Add(30 * time.Second)
			for n.srv.API.UploadStats().Failed < 2 {
				if time.Now().After(deadline) {
					t.Fatal("the aborted upload did not end")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if h := n.held(); len(h) != 0 {
				t.Errorf("blob store holds %v", h)
			}
			if u := n.usage(); u != (store.FileUsage{}) {
				t.Errorf("usage %+v", u)
			}
		})
	}
}

// fakeS3 answers like an S3 server that stores nothing and refuses every
// delete, to show what happens to the blob of a failed upload that cannot
// be removed.
func fakeS3(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "<Error><Code>InternalError</Code><Message>disk on fire</Message></Error>")
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return "s3://bkt?endpoint=" + url.QueryEscape(srv.URL) + "&path_style=true"
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startNodeLog is startNode with the node's log captured.
func startNodeLog(t *testing.T, mutate ...func(*config.Config)) (*node, *logBuffer) {
	t.Helper()
	var logs logBuffer
	return startNodeLogger(t, slog.New(slog.NewTextHandler(&logs, nil)), mutate...), &logs
}

// TestFailedBlobDeleteIsLoggedAndCounted: the blob of an upload refused
// after it was stored must be deleted; when that fails, the orphan is
// logged and counted, not ignored.
func TestFailedBlobDeleteIsLoggedAndCounted(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-in-logs-secret")
	dsn := fakeS3(t)
	n, logs := startNodeLog(t, func(c *config.Config) { c.Blobs, c.AppStorageQuota = dsn, 10 })
	r := n.uploadFile(n.token("alice"), zipData(100), 0)
	if r.HTTP != 413 {
		t.Fatalf("upload over quota: %+v", r)
	}
	if got := n.srv.API.UploadStats().BlobDeleteErrors; got != 1 {
		t.Errorf("BlobDeleteErrors = %d, want 1", got)
	}
	l := logs.String()
	if !strings.Contains(l, "could not delete the blob of a failed upload") || !strings.Contains(l, "disk on fire") {
		t.Errorf("log does not report the failed delete:\n%s", l)
	}
	if strings.Contains(l, "not-in-logs-secret") {
		t.Error("log holds the secret")
	}
	res, err := http.Get(n.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "chatd_blob_delete_errors_total 1\n") {
		t.Errorf("metrics lack chatd_blob_delete_errors_total 1")
	}
}

// TestS3Downloads: with s3: blobs, fullUrl stays a chatd URL that serves
// the file with today's headers, whole, by range and to HEAD; with
// CHATD_BLOBS_REDIRECT it answers 302 (with CORS) to a presigned URL that
// serves the same bytes and type.
func TestS3Downloads(t *testing.T) {
	dsn, _ := blobtest.S3URL(t)
	const origin = "https://app.example"
	for _, redirect := range []bool{false, true} {
		t.Run(fmt.Sprintf("redirect=%v", redirect), func(t *testing.T) {
			n := startNode(t, func(c *config.Config) { c.Blobs, c.BlobsRedirect, c.Origins = dsn, redirect, origin })
			data := zipData(6<<20 + 77)
			r := n.uploadFile(n.token("alice"), data, 0)
			if r.Status != 1 || !strings.HasPrefix(r.URL, n.ts.URL+"/files/"+n.app.AppID+"/") {
				t.Fatalf("upload: %+v", r)
			}
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			get := func(method, rng string) (*http.Response, []byte) {
				req, _ := http.NewRequest(method, r.URL, nil)
				req.Header.Set("Origin", origin)
				if rng != "" {
					req.Header.Set("Range", rng)
				}
				res, err := noFollow.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				return res, b
			}
			res, body := get("GET", "")
			if res.Header.Get("Access-Control-Allow-Origin") != origin {
				t.Errorf("no CORS on the download answer: %v", res.Header)
			}
			if redirect {
				if res.StatusCode != http.StatusFound {
					t.Fatalf("GET = %d, want 302", res.StatusCode)
				}
				loc := res.Header.Get("Location")
				if strings.HasPrefix(loc, n.ts.URL) || !strings.Contains(loc, "X-Amz-Signature=") || strings.Contains(loc, os.Getenv("AWS_SECRET_ACCESS_KEY")) {
					t.Fatalf("Location = %s", loc)
				}
				req, _ := http.NewRequest("GET", loc, nil)
				req.Header.Set("Range", "bytes=5000-5099")
				rr, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				part, _ := io.ReadAll(rr.Body)
				rr.Body.Close()
				if rr.StatusCode != http.StatusPartialContent || !bytes.Equal(part, data[5000:5100]) {
					t.Errorf("presigned range: %d, %d bytes", rr.StatusCode, len(part))
				}
				res, err = http.Get(loc)
				if err != nil {
					t.Fatal(err)
				}
				body, _ = io.ReadAll(res.Body)
				res.Body.Close()
			}
			if res.StatusCode != 200 || !bytes.Equal(body, data) || res.Header.Get("Content-Type") != "application/zip" ||
				!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment; filename*=UTF-8''a.zip") {
				t.Fatalf("download: %d, %d bytes, %v", res.StatusCode, len(body), res.Header)
			}
			if redirect {
				return
			}
			for _, h := range []string{"X-Content-Type-Options", "Content-Security-Policy", "Cache-Control"} {
				if res.Header.Get(h) == "" {
					t.Errorf("no %s", h)
				}
			}
			res, body = get("GET", "bytes=6291400-6291499")
			if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[6291400:6291500]) ||
				res.Header.Get("Content-Range") != fmt.Sprintf("bytes 6291400-6291499/%d", len(data)) {
				t.Errorf("range: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Range"), len(body))
			}
			res, body = get("HEAD", "")
			if res.StatusCode != 200 || res.ContentLength != int64(len(data)) || len(body) != 0 {
				t.Errorf("HEAD: %d, length %d", res.StatusCode, res.ContentLength)
			}
		})
	}
}

// TestS3Unusable: a bucket that refuses the credentials or does not exist
// keeps /readyz false, is logged clearly at start (without the secret), and
// every upload answers 503 with a clear message, writing nothing.
func TestS3Unusable(t *testing.T) {
	dsn, bucket := blobtest.S3URL(t)
	secret := os.Getenv("AWS_SECRET_ACCESS_KEY")
	missing, _ := url.Parse(dsn)
	missing.Host = "chatd-no-such-bucket"
	for name, c := range map[string]struct{ dsn, secret, wantLog string }{
		"bad secret":     {dsn, "wrong-" + secret, "access to bucket"},
		"missing bucket": {missing.String(), secret, "does not exist"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("AWS_SECRET_ACCESS_KEY", c.secret)
			n, logs := startNodeLog(t, func(cfg *config.Config) { cfg.Blobs = c.dsn })
			if l := logs.String(); !strings.Contains(l, "upload storage is not usable") || !strings.Contains(l, c.wantLog) {
				t.Errorf("start log:\n%s", l)
			}
			res, err := http.Get(n.ts.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/readyz = %d", res.StatusCode)
			}
			token := n.token("alice")
			for _, size := range []int{100, 6 << 20} {
				r := n.uploadFile(token, zipData(size), 0)
				if r.HTTP != http.StatusServiceUnavailable || !strings.Contains(r.Message, "file storage is unavailable") {
					t.Errorf("upload of %d bytes: %+v", size, r.reply)
				}
			}
			if u := n.usage(); u != (store.FileUsage{}) {
				t.Errorf("usage %+v", u)
			}
			if keys, err := bucket.List(context.Background()); err != nil || len(keys) != 0 {
				t.Errorf("bucket holds %v %v", keys, err)
			}
			if n.srv.API.UploadStats().BlobDeleteErrors != 0 || strings.Contains(logs.String(), "orphaned") {
				t.Error("a failed write was reported as an orphaned blob")
			}
			for _, s := range []string{c.secret, secret} {
				if strings.Contains(logs.String(), s) {
					t.Error("log holds the secret")
				}
			}
		})
	}
}

// TestReadyzDoesNotHammerTheBucket: /readyz, open to anyone, checks the
// bucket at most once per moment, however often it is called.
func TestReadyzDoesNotHammerTheBucket(t *testing.T) {
	var heads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	n := startNode(t, func(c *config.Config) { c.Blobs = "s3://bkt?endpoint=" + url.QueryEscape(srv.URL) + "&path_style=true" })
	start, began := heads.Load(), time.Now()
	for range 50 {
		res, err := http.Get(n.ts.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("/readyz = %d", res.StatusCode)
		}
	}
	// One check per 2 s at most, however slow the machine.
	allowed := 1 + int32(time.Since(began)/(2*time.Second))
	if got := heads.Load() - start; got > allowed {
		t.Errorf("50 /readyz calls sent %d bucket checks, want at most %d", got, allowed)
	}
}
