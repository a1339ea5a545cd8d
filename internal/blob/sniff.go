package blob

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// SniffLen is how many leading bytes Sniff wants to see.
const SniffLen = 512

type magic struct {
	contentType, ext string
	match            func(b []byte) bool
}

func prefix(p string) func([]byte) bool {
	return func(b []byte) bool { return bytes.HasPrefix(b, []byte(p)) }
}

// riff matches a RIFF container of the given form type (WAVE, WEBP).
func riff(form string) func([]byte) bool {
	return func(b []byte) bool {
		return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == form
	}
}

// ftyp matches an ISO base media file (MP4, M4A, MOV) whose major brand is
// one of brands.
func ftyp(brands ...string) func([]byte) bool {
	return func(b []byte) bool {
		if len(b) < 12 || string(b[4:8]) != "ftyp" {
			return false
		}
		size := binary.BigEndian.Uint32(b[:4])
		if size < 12 || size > 4096 {
			return false
		}
		for _, br := range brands {
			if string(b[8:12]) == br {
				return true
			}
		}
		return false
	}
}

func bmp(b []byte) bool {
	if len(b) < 18 || string(b[:2]) != "BM" {
		return false
	}
	// Reserved fields are zero and the DIB header has a known size; "BM" alone
	// would match plenty of text.
	if binary.LittleEndian.Uint32(b[6:10]) != 0 {
		return false
	}
	switch binary.LittleEndian.Uint32(b[14:18]) {
	case 12, 40, 52, 56, 64, 108, 124:
		return true
	}
	return false
}

// mpegAudio matches an MPEG audio frame header (MP3 without ID3 tag).
func mpegAudio(b []byte) bool {
	if len(b) < 3 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return false
	}
	version := (b[1] >> 3) & 3
	layer := (b[1] >> 1) & 3
	bitrate := b[2] >> 4
	rate := (b[2] >> 2) & 3
	return version != 1 && layer != 0 && bitrate != 0 && bitrate != 15 && rate != 3
}

// adts matches an AAC ADTS frame header.
func adts(b []byte) bool {
	return len(b) >= 4 && b[0] == 0xFF && b[1]&0xF6 == 0xF0 && (b[2]>>2)&0xF < 13
}

// webm matches an EBML file whose DocType is webm (Matroska is refused).
func webm(b []byte) bool {
	if !bytes.HasPrefix(b, []byte{0x1A, 0x45, 0xDF, 0xA3}) {
		return false
	}
	head := b[:min(len(b), 64)]
	// DocType element 0x4282, then a one-byte size 0x84, then "webm".
	return bytes.Contains(head, []byte{0x42, 0x82, 0x84, 'w', 'e', 'b', 'm'})
}

// The allow-list, most specific first. Everything else is refused.
var magics = []magic{
	{"image/png", ".png", prefix("\x89PNG\r\n\x1a\n")},
	{"image/jpeg", ".jpg", prefix("\xFF\xD8\xFF")},
	{"image/gif", ".gif", func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a"))
	}},
	{"image/webp", ".webp", riff("WEBP")},
	{"image/bmp", ".bmp", bmp},
	{"audio/wav", ".wav", riff("WAVE")},
	{"audio/mpeg", ".mp3", prefix("ID3")},
	{"audio/aac", ".aac", adts},
	{"audio/mpeg", ".mp3", mpegAudio},
	{"audio/ogg", ".ogg", prefix("OggS\x00")},
	{"audio/flac", ".flac", prefix("fLaC")},
	{"audio/amr", ".amr", prefix("#!AMR\n")},
	{"audio/amr-wb", ".awb", prefix("#!AMR-WB\n")},
	{"audio/mp4", ".m4a", ftyp("M4A ", "M4B ")},
	{"video/quicktime", ".mov", ftyp("qt  ")},
	{"video/mp4", ".mp4", ftyp("isom", "iso2", "iso4", "iso5", "iso6", "mp41", "mp42", "avc1", "M4V ", "dash", "MSNV", "3gp4", "3gp5", "3gp6", "3g2a")},
	{"video/webm", ".webm", webm},
	{"application/pdf", ".pdf", prefix("%PDF-")},
	{"application/zip", ".zip", func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("PK\x03\x04")) || bytes.HasPrefix(b, []byte("PK\x05\x06"))
	}},
}

// Sniff decides an upload's type from its first bytes (at least SniffLen of
// them when the file is that long), never from the client's claim. ok is
// false for anything not on the allow-list: images (png, jpeg, gif, webp,
// bmp), audio (mp3, aac, ogg, wav, amr, flac, m4a), video (mp4, mov, webm),
// pdf, zip and UTF-8 plain text. HTML, SVG, XML, scripts, executables and
// unknown binary data are refused, as is an empty file.
func Sniff(head []byte) (contentType string, ext string, ok bool) {
	for _, m := range magics {
		if m.match(head) {
			return m.contentType, m.ext, true
		}
	}
	if isPlainText(head) {
		return "text/plain; charset=utf-8", ".txt", true
	}
	return "", "", false
}

// markup a browser might render or run if it ever sniffed a text file.
var activeMarkers = [][]byte{
	[]byte("<!doctype"), []byte("<html"), []byte("<head"), []byte("<body"), []byte("<script"),
	[]byte("<iframe"), []byte("<svg"), []byte("<?xml"), []byte("<object"), []byte("<embed"),
	[]byte("<meta"), []byte("<style"), []byte("<img"), []byte("<a "), []byte("<!--"), []byte("<div"),
}

func isPlainText(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			// A multi-byte character cut off by the end of the sniffed head is fine.
			return !utf8.FullRune(b[i:]) && len(b)-i < utf8.UTFMax
		}
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' && r != '\f' || r == 0x7F {
			return false
		}
		i += size
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n\f")
	if bytes.HasPrefix(trimmed, []byte("<")) || bytes.HasPrefix(trimmed, []byte("#!")) {
		return false
	}
	lower := bytes.ToLower(b)
	for _, m := range activeMarkers {
		if bytes.Contains(lower, m) {
			return false
		}
	}
	return true
}
