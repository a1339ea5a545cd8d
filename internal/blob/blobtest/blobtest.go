// Package blobtest is the conformance suite every blob store must pass
// (file: and s3:). A store's test calls Run with a function that opens a
// fresh, empty store.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chatd/chatd/internal/blob"
	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/testenv"
)

// Options describe what the store under test does beyond blob.Store.
type Options struct {
	// PartSize is the size above which the store writes in parts (0: it
	// does not); the suite then writes blobs of several parts.
	PartSize int64
}

// Run runs every conformance test against stores made by open, which must
// return a fresh, empty store for each subtest and register its own cleanup.
func Run(t *testing.T, opts Options, open func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store, o Options)
	}{
		{"PutOpen", testPutOpen},
		{"Seek", testSeek},
		{"Replace", testReplace},
		{"Delete", testDelete},
		{"BadKeys", testBadKeys},
		{"Large", testLarge},
		{"FailedPutLeavesNothing", testFailedPut},
		{"Concurrent", testConcurrent},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t), opts) })
	}
}

func put(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	n, err := s.Put(context.Background(), key, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
	if n != int64(len(data)) {
		t.Fatalf("Put %s = %d bytes, want %d", key, n, len(data))
	}
}

func read(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, size, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if int64(len(b)) != size {
		t.Fatalf("read %s: %d bytes, Open said %d", key, len(b), size)
	}
	return b
}

func newKey(t *testing.T, ext string) string {
	t.Helper()
	k, err := blob.NewKey(ext)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pattern is data whose every window is distinct enough that a wrong offset
// or a swapped part shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func testPutOpen(t *testing.T, s blob.Store, _ Options) {
	key := newKey(t, ".txt")
	put(t, s, key, []byte("hello blob"))
	if got := read(t, s, key); string(got) != "hello blob" {
		t.Errorf("read = %q", got)
	}
	_, _, err := s.Open(context.Background(), newKey(t, ".txt"))
	if !errors.Is(err, blob.ErrNotFound) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open missing = %v, want ErrNotFound", err)
	}
}

func testSeek(t *testing.T, s blob.Store, _ Options) {
	key := newKey(t, ".zip")
	data := pattern(100 << 10)
	put(t, s, key, data)
	rc, size, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if size != int64(len(data)) {
		t.Fatalf("size %d", size)
	}
	// What http.ServeContent does for a Range request: find the size, go
	// back, seek to the range, read a piece.
	if end, err := rc.Seek(0, io.SeekEnd); err != nil || end != size {
		t.Fatalf("Seek end = %d %v", end, err)
	}
	for _, off := range []int64{0, 1000, 65536, size - 10, 5} {
		if _, err := rc.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, min(100, size-off))
		if _, err := io.ReadFull(rc, buf); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
			t.Errorf("bytes at %d differ", off)
		}
	}
	// Reading on continues from where the last read stopped.
	if _, err := rc.Seek(-20, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(rest, data[len(data)-20:]) {
		t.Errorf("tail = %d bytes, %v", len(rest), err)
	}
}

func testReplace(t *testing.T, s blob.Store, _ Options) {
	key := newKey(t, ".txt")
	put(t, s, key, []byte("version one"))
	put(t, s, key, []byte("v2"))
	if got := read(t, s, key); string(got) != "v2" {
		t.Errorf("after replace = %q", got)
	}
}

func testDelete(t *testing.T, s blob.Store, _ Options) {
	ctx := context.Background()
	key := newKey(t, ".txt")
	put(t, s, key, []byte("bye"))
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, _, err := s.Open(ctx, key); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open deleted = %v", err)
	}
	assertHolds(t, s, nil)
}

func testBadKeys(t *testing.T, s blob.Store, _ Options) {
	ctx := context.Background()
	for _, k := range []string{"../secret", "..", "a/../../secret", "/etc/passwd", "", "a/b", "a?b", "a#b", "%2e%2e"} {
		if _, err := s.Put(ctx, k, strings.NewReader("x")); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Put(%q) = %v", k, err)
		}
		if _, _, err := s.Open(ctx, k); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Open(%q) = %v", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Delete(%q) = %v", k, err)
		}
	}
	assertHolds(t, s, nil)
}

func testLarge(t *testing.T, s blob.Store, o Options) {
	sizes := []int{1 << 20}
	if o.PartSize > 0 {
		p := int(o.PartSize)
		// Exactly one part, a part and a bit, and an exact multiple.
		sizes = []int{p, 2*p + 12345, 2 * p}
	}
	for _, n := range sizes {
		key := newKey(t, ".zip")
		data := pattern(n)
		put(t, s, key, data)
		if got := read(t, s, key); !bytes.Equal(got, data) {
			t.Errorf("%d bytes: read back %d bytes, different", n, len(got))
		}
		// A range across a part boundary.
		rc, _, err := s.Open(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		off := int64(n/2 - 1000)
		if _, err := rc.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2000)
		if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, data[off:off+2000]) {
			t.Errorf("%d bytes: range at %d: %v", n, off, err)
		}
		rc.Close()
	}
}

type failAfter struct {
	r io.Reader
	n int64
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

// cancelAfter cancels the context once n bytes have been read: the client
// hung up in the middle of the upload.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func testFailedPut(t *testing.T, s blob.Store, o Options) {
	ctx := context.Background()
	sizes := []int64{1000}
	if o.PartSize > 0 {
		// Fail in the first part, and in a later part of a multipart write.
		sizes = append(sizes, 2*o.PartSize+100)
	}
	for _, n := range sizes {
		data := pattern(int(n) + 1000)
		key := newKey(t, ".zip")
		if _, err := s.Put(ctx, key, &failAfter{bytes.NewReader(data), n}); err == nil {
			t.Errorf("Put failing after %d bytes succeeded", n)
		}
		cctx, cancel := context.WithCancel(ctx)
		key2 := newKey(t, ".zip")
		if _, err := s.Put(cctx, key2, &cancelAfter{bytes.NewReader(data), n, cancel}); err == nil {
			t.Errorf("Put cancelled after %d bytes succeeded", n)
		}
		cancel()
		for _, k := range []string{key, key2} {
			if _, _, err := s.Open(ctx, k); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("failed Put left %s: %v", k, err)
			}
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Put(cctx, newKey(t, ".txt"), strings.NewReader("x")); err == nil {
		t.Error("Put with a cancelled context succeeded")
	}
	assertHolds(t, s, nil)
}

func testConcurrent(t *testing.T, s blob.Store, _ Options) {
	const writers = 6
	var wg sync.WaitGroup
	keys := make([]string, writers)
	for i := range writers {
		keys[i] = newKey(t, ".zip")
		wg.Go(func() {
			for range 3 {
				body := bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
				if _, err := s.Put(context.Background(), keys[i], bytes.NewReader(body)); err != nil {
					t.Error(err)
				}
				if _, err := s.Put(context.Background(), "shared.zip", bytes.NewReader(body)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i, k := range keys {
		if b := read(t, s, k); !bytes.Equal(b, bytes.Repeat([]byte{byte('a' + i)}, 64<<10)) {
			t.Errorf("blob %d corrupted", i)
		}
	}
	b := read(t, s, "shared.zip")
	if len(b) != 64<<10 || !bytes.Equal(b, bytes.Repeat(b[:1], len(b))) {
		t.Errorf("shared blob is a mix of writers (%d bytes)", len(b))
	}
	assertHolds(t, s, append(slices.Clone(keys), "shared.zip"))
}

func testPing(t *testing.T, s blob.Store, _ Options) {
	p, ok := s.(blob.Pinger)
	if !ok {
		t.Skip("store has no Ping")
	}
	if err := p.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// assertHolds checks that the store holds exactly keys: no temporary file,
// no unfinished multipart upload, nothing else.
func assertHolds(t *testing.T, s blob.Store, keys []string) {
	t.Helper()
	l, ok := s.(blob.Lister)
	if !ok {
		return
	}
	got, err := l.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.Sort(got)
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("store holds %v, want %v", got, fmt.Sprint(want))
	}
}

// S3Config returns the test S3 server's configuration from CHATD_TEST_S3
// (an s3:// URL as CHATD_BLOBS takes it; credentials in AWS_ACCESS_KEY_ID
// and AWS_SECRET_ACCESS_KEY), with a prefix of its own for this test, so
// tests sharing the bucket never see each other's blobs. It skips the test
// when CHATD_TEST_S3 is unset, and fails it under CI=true.
func S3Config(t testing.TB) blob.S3Config {
	t.Helper()
	raw := testenv.URL(t, "CHATD_TEST_S3")
	cfg, err := blob.ParseS3URL(raw, os.Getenv)
	if err != nil {
		t.Fatalf("CHATD_TEST_S3: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	cfg.Prefix += "t-" + hex.EncodeToString(b[:]) + "/"
	return cfg
}

// S3URL returns a CHATD_BLOBS value for the test S3 server with a prefix
// of this test's own (see S3Config), and the store it names, whose bucket
// exists and which is emptied at the end of the test.
func S3URL(t testing.TB) (string, *blob.S3) {
	t.Helper()
	cfg := S3Config(t)
	u, err := url.Parse(os.Getenv("CHATD_TEST_S3"))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + cfg.Prefix
	return u.String(), OpenS3(t, cfg)
}

// OpenS3 returns a store on the test S3 server (see S3Config) whose bucket
// exists, and deletes what the test left in it at the end.
func OpenS3(t testing.TB, cfg blob.S3Config) *blob.S3 {
	t.Helper()
	s, err := blob.NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateBucket(ctx); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	t.Cleanup(func() {
		keys, _ := s.List(ctx)
		for _, k := range keys {
			if !strings.HasPrefix(k, "upload:") {
				s.Delete(ctx, k)
			}
		}
	})
	return s
}
