// Package blob stores uploaded files: an interface with a local-disk
// implementation, unguessable keys, and a content-type allow-list decided by
// sniffing the bytes.
package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// ErrNotFound is returned for a key with no blob. It matches
// store.ErrNotFound too, so callers can map both the same way.
var ErrNotFound = fmt.Errorf("blob %w", store.ErrNotFound)

// ErrBadKey is returned for a key that is not a safe file name.
var ErrBadKey = errors.New("blob: invalid key")

// Store keeps blobs by key.
type Store interface {
	// Put stores r under key, replacing any previous blob, and returns the
	// number of bytes written. The caller bounds r's size. A Put that fails
	// (r fails, ctx ends, the store refuses) leaves no new blob behind.
	Put(ctx context.Context, key string, r io.Reader) (size int64, err error)
	// Open returns the blob and its size; ErrNotFound if there is none.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error)
	// Delete removes the blob; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// MaxKeyLen bounds key length.
const MaxKeyLen = 128

// NewKey returns a fresh unguessable key (128 random bits, hex) ending in
// ext, which must be one of the extensions Sniff returns (or empty).
func NewKey(ext string) (string, error) {
	if ext != "" && !allowedExt(ext) {
		return "", fmt.Errorf("blob: extension %q not allowed", ext)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("blob: random key: %w", err)
	}
	return hex.EncodeToString(b[:]) + ext, nil
}

func allowedExt(ext string) bool {
	if ext == ".txt" {
		return true
	}
	for _, m := range magics {
		if m.ext == ext {
			return true
		}
	}
	return false
}

// ValidKey reports whether key is a safe single file name: 1 to MaxKeyLen
// characters from A-Z a-z 0-9 '-' '_' '.', not starting with '.', with no
// "..". Anything else (slashes, backslashes, traversal, hidden files) is
// refused.
func ValidKey(key string) bool {
	if key == "" || len(key) > MaxKeyLen || key[0] == '.' || strings.Contains(key, "..") {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Disk stores blobs as files in one directory. Writes go to a temporary file
// in the same directory, are fsynced, then renamed into place, so readers
// (also on other nodes sharing the directory over NFS) see either nothing or
// the whole file.
type Disk struct {
	dir string
}

var _ Store = (*Disk)(nil)

// NewDisk returns a Disk in dir, creating it if needed.
func NewDisk(dir string) (*Disk, error) {
	if dir == "" {
		return nil, errors.New("blob: empty directory")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("blob: create %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return &Disk{dir: abs}, nil
}

// Dir returns the directory holding the blobs.
func (d *Disk) Dir() string { return d.dir }

func (d *Disk) path(key string) (string, error) {
	if !ValidKey(key) {
		return "", fmt.Errorf("%w: %q", ErrBadKey, clip(key))
	}
	return filepath.Join(d.dir, key), nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Put implements Store.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	path, err := d.path(key)
	if err != nil {
		return 0, err
	}
	// The temporary name starts with '.', which no valid key does, so a
	// half-written file can never be opened as a blob.
	f, err := os.CreateTemp(d.dir, ".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("blob: put %s: %w", key, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return 0, fmt.Errorf("blob: put %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("blob: put %s: sync: %w", key, err)
	}
	if err := f.Chmod(0o640); err != nil {
		return 0, fmt.Errorf("blob: put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("blob: put %s: close: %w", key, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("blob: put %s: rename: %w", key, err)
	}
	done = true
	syncDir(d.dir)
	return n, nil
}

// syncDir makes the rename durable; some file systems (and NFS) do not
// support syncing a directory, which is not worth failing the upload over.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// Open implements Store.
func (d *Disk) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	path, err := d.path(key)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blob: open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blob: open %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, ErrNotFound
	}
	return f, st.Size(), nil
}

// Delete implements Store.
func (d *Disk) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	path, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}

// ctxReader stops a copy when the context ends (a client hanging up
// mid-upload).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Pinger is implemented by stores that can check they are usable (for
// /readyz and the check at start).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Presigner is implemented by stores that can hand out short-lived URLs
// from which clients fetch a blob directly.
type Presigner interface {
	PresignGet(key string, ttl time.Duration, contentType, disposition string) (string, error)
}

// Lister is implemented by stores that can list everything they hold,
// including unfinished writes, so tests can prove nothing is left behind.
type Lister interface {
	List(ctx context.Context) ([]string, error)
}

// Ping checks that the directory is there and is a directory.
func (d *Disk) Ping(ctx context.Context) error {
	st, err := os.Stat(d.dir)
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("blob: %s is not a directory", d.dir)
	}
	return nil
}

// List returns every file in the directory, temporary ones included.
func (d *Disk) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("blob: list: %w", err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, nil
}
