package blob

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chatd/chatd/internal/store"
)

func encoded(t *testing.T, enc func(io.Writer, image.Image) error) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.White, color.Black})
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zipped(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.Create("a.txt")
	f.Write([]byte("hello"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func le32(n uint32) string {
	return string([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
}

func TestSniff(t *testing.T) {
	bmpHead := "BM" + le32(70) + le32(0) + le32(54) + le32(40) + le32(1) + le32(1) + "\x01\x00\x18\x00"
	wav := "RIFF" + le32(36) + "WAVEfmt " + le32(16) + "\x01\x00\x01\x00" + le32(8000) + le32(16000) + "\x02\x00\x10\x00data" + le32(0)
	tests := []struct {
		name, head string
		typ, ext   string
	}{
		{"png", string(encoded(t, png.Encode)), "image/png", ".png"},
		{"jpeg", string(encoded(t, func(w io.Writer, m image.Image) error { return jpeg.Encode(w, m, nil) })), "image/jpeg", ".jpg"},
		{"gif", string(encoded(t, func(w io.Writer, m image.Image) error { return gif.Encode(w, m, nil) })), "image/gif", ".gif"},
		{"gif87a", "GIF87a\x04\x00\x04\x00", "image/gif", ".gif"},
		{"webp", "RIFF" + le32(26) + "WEBPVP8 " + le32(14), "image/webp", ".webp"},
		{"bmp", bmpHead, "image/bmp", ".bmp"},
		{"mp3 id3", "ID3\x04\x00\x00\x00\x00\x00\x23TSSE", "audio/mpeg", ".mp3"},
		{"mp3 frame", "\xFF\xFB\x90\x64\x00", "audio/mpeg", ".mp3"},
		{"aac adts", "\xFF\xF1\x50\x80\x02\x1F\xFC", "audio/aac", ".aac"},
		{"ogg", "OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00OpusHead", "audio/ogg", ".ogg"},
		{"wav", wav, "audio/wav", ".wav"},
		{"flac", "fLaC\x00\x00\x00\x22", "audio/flac", ".flac"},
		{"amr", "#!AMR\n\x3c\x91", "audio/amr", ".amr"},
		{"amr-wb", "#!AMR-WB\n\x04", "audio/amr-wb", ".awb"},
		{"m4a", "\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2", "audio/mp4", ".m4a"},
		{"mp4", "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video/mp4", ".mp4"},
		{"mp4 isom", "\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", "video/mp4", ".mp4"},
		{"mov", "\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ", "video/quicktime", ".mov"},
		{"webm", "\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\xF7\x81\x01\x42\xF2\x81\x04\x42\xF3\x81\x08\x42\x82\x84webm\x42\x87\x81\x04", "video/webm", ".webm"},
		{"pdf", "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj", "application/pdf", ".pdf"},
		{"zip", string(zipped(t)), "application/zip", ".zip"},
		{"empty zip", "PK\x05\x06" + strings.Repeat("\x00", 18), "application/zip", ".zip"},
		{"text", "hello, world\nsecond line\t", "text/plain; charset=utf-8", ".txt"},
		{"text utf8", "\xEF\xBB\xBF你好，世界 😀", "text/plain; charset=utf-8", ".txt"},
		{"text cut rune", "abc \xE4\xBD", "text/plain; charset=utf-8", ".txt"},
		{"text with 'BM'", "BMW is a car", "text/plain; charset=utf-8", ".txt"},

		{"html", "<!DOCTYPE html><html><body>x</body></html>", "", ""},
		{"html lower late", "hello\n<script>alert(1)</script>", "", ""},
		{"html leading space", "  \n<p>hi</p>", "", ""},
		{"svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>", "", ""},
		{"xml", "<?xml version=\"1.0\"?><svg/>", "", ""},
		{"script", "#!/bin/sh\nrm -rf /\n", "", ""},
		{"elf", "\x7FELF\x02\x01\x01\x00", "", ""},
		{"pe", "MZ\x90\x00\x03\x00\x00\x00", "", ""},
		{"mach-o", "\xCF\xFA\xED\xFE\x07\x00\x00\x01", "", ""},
		{"binary", "\x00\x01\x02\x03\x04", "", ""},
		{"invalid utf8", "abc\xFF\xFEdef and more text here", "", ""},
		{"empty", "", "", ""},
		{"mkv", "\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\x82\x88matroska", "", ""},
		{"heic ftyp", "\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "", ""},
		{"riff avi", "RIFF" + le32(100) + "AVI LIST", "", ""},
		{"bare BM", "BM\x00\x00", "", ""},
		{"gzip", "\x1F\x8B\x08\x00\x00\x00\x00\x00", "", ""},
	}
	for _, tt := range tests {
		head := []byte(tt.head)
		if len(head) > SniffLen {
			head = head[:SniffLen]
		}
		typ, ext, ok := Sniff(head)
		if typ != tt.typ || ext != tt.ext || ok != (tt.typ != "") {
			t.Errorf("%s: Sniff = %q %q %v, want %q %q", tt.name, typ, ext, ok, tt.typ, tt.ext)
		}
	}
}

func TestKeys(t *testing.T) {
	k1, err := NewKey(".png")
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := NewKey(".png")
	if k1 == k2 || !ValidKey(k1) || !strings.HasSuffix(k1, ".png") || len(k1) != 36 {
		t.Errorf("keys %q %q", k1, k2)
	}
	if k, err := NewKey(""); err != nil || !ValidKey(k) {
		t.Errorf("NewKey(\"\") = %q %v", k, err)
	}
	for _, ext := range []string{".html", ".svg", "/x", ".exe", "png"} {
		if _, err := NewKey(ext); err == nil {
			t.Errorf("NewKey(%q) allowed", ext)
		}
	}
	bad := []string{"", ".", "..", "../etc/passwd", "a/b", "a\\b", "..a", "a..b", ".hidden", "/abs",
		"a b", "a\x00b", "%2e%2e", strings.Repeat("a", MaxKeyLen+1), "ä.png"}
	for _, k := range bad {
		if ValidKey(k) {
			t.Errorf("ValidKey(%q) = true", k)
		}
	}
}

func TestDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := NewDisk(filepath.Join(dir, "files"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewKey(".txt")
	data := []byte("hello blob")
	n, err := d.Put(ctx, key, bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Put = %d %v", n, err)
	}
	rc, size, err := d.Open(ctx, key)
	if err != nil || size != int64(len(data)) {
		t.Fatalf("Open = %d %v", size, err)
	}
	if _, err := rc.Seek(6, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "blob" {
		t.Errorf("read after seek = %q", got)
	}
	// Replacing keeps one whole file.
	if _, err := d.Put(ctx, key, strings.NewReader("v2")); err != nil {
		t.Fatal(err)
	}
	if rc, size, err = d.Open(ctx, key); err != nil || size != 2 {
		t.Fatalf("Open v2 = %d %v", size, err)
	}
	rc.Close()

	if err := d.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, key); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	_, _, err = d.Open(ctx, key)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open deleted = %v", err)
	}

	// Traversal is refused before touching the file system.
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("x"), 0o600)
	for _, k := range []string{"../secret", "..", "a/../../secret", "/etc/passwd", ""} {
		if _, err := d.Put(ctx, k, strings.NewReader("x")); !errors.Is(err, ErrBadKey) {
			t.Errorf("Put(%q) = %v", k, err)
		}
		if _, _, err := d.Open(ctx, k); !errors.Is(err, ErrBadKey) {
			t.Errorf("Open(%q) = %v", k, err)
		}
		if err := d.Delete(ctx, k); !errors.Is(err, ErrBadKey) {
			t.Errorf("Delete(%q) = %v", k, err)
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "x" {
		t.Error("file outside the store was touched")
	}

	// A failed write leaves neither the blob nor a temporary file behind.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Put(cctx, "cancelled.txt", strings.NewReader("x")); err == nil {
		t.Error("Put with a cancelled context succeeded")
	}
	if _, err := d.Put(ctx, "failing.txt", io.MultiReader(strings.NewReader("part"), errReader{})); err == nil {
		t.Error("Put with a failing reader succeeded")
	}
	entries, _ := os.ReadDir(d.Dir())
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestDiskConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	d, err := NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	keys := make([]string, writers)
	for i := range writers {
		keys[i], _ = NewKey(".zip")
		wg.Go(func() {
			// Every writer also rewrites one shared key: readers must only
			// ever see a complete version.
			for range 5 {
				body := bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
				if _, err := d.Put(ctx, keys[i], bytes.NewReader(body)); err != nil {
					t.Error(err)
				}
				if _, err := d.Put(ctx, "shared.bin", bytes.NewReader(body)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i, k := range keys {
		rc, size, err := d.Open(ctx, k)
		if err != nil || size != 64<<10 {
			t.Fatalf("Open %s: %d %v", k, size, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(b, bytes.Repeat([]byte{byte('a' + i)}, 64<<10)) {
			t.Errorf("blob %d corrupted", i)
		}
	}
	rc, _, err := d.Open(ctx, "shared.bin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if len(b) != 64<<10 || !bytes.Equal(b, bytes.Repeat(b[:1], len(b))) {
		t.Errorf("shared blob is a mix of writers (%d bytes)", len(b))
	}
	entries, _ := os.ReadDir(d.Dir())
	if len(entries) != writers+1 {
		t.Errorf("%d files, want %d", len(entries), writers+1)
	}
}

func FuzzSniff(f *testing.F) {
	for _, s := range []string{"\x89PNG\r\n\x1a\n", "ID3", "\xFF\xFB\x90", "RIFF\x00\x00\x00\x00WAVE", "<html>", "hi", "\x00\x00\x00\x18ftypmp42", "BM"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, ext, ok := Sniff(b)
		if ok != (typ != "") || ok != (ext != "") {
			t.Fatalf("inconsistent %q %q %v", typ, ext, ok)
		}
		if ok && !allowedExt(ext) {
			t.Fatalf("ext %q not allowed", ext)
		}
		if ok && bytes.Contains(bytes.ToLower(b), []byte("<script")) && strings.HasPrefix(typ, "text/") {
			t.Fatalf("script sniffed as text: %q", b)
		}
	})
}
