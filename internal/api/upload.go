package api

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/chatd/chatd/internal/blob"
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/store"
)

// upload stores the multipart field up_file for the user whose token is in
// the query, after checking its size and sniffing its type.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	appID := q.Get("appId")
	user, err := s.chat.Authenticate(r.Context(), appID, q.Get("token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Room for the multipart framing and a few small fields besides the file.
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxUploadBytes+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: send multipart/form-data with the file in field up_file", chat.ErrInvalid))
		return
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			s.fail(w, r, fmt.Errorf("%w: missing file field up_file", chat.ErrInvalid))
			return
		}
		if err != nil {
			s.fail(w, r, uploadReadError(err, s.opts.MaxUploadBytes))
			return
		}
		if part.FormName() != "up_file" {
			part.Close()
			continue
		}
		f, err := s.storeUpload(r, user, part)
		part.Close()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ok(w, "上传成功", map[string]any{
			"fid":         f.ID,
			"fullUrl":     s.baseURL(r) + "/files/" + f.AppID + "/" + strings.TrimPrefix(f.Key, f.AppID+"-"),
			"name":        f.Name,
			"size":        f.Size,
			"contentType": f.ContentType,
		})
		return
	}
}

func uploadReadError(err error, max int64) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: the file is larger than %d bytes", chat.ErrTooLarge, max)
	}
	return fmt.Errorf("%w: reading upload: %v", chat.ErrInvalid, err)
}

func (s *Server) storeUpload(r *http.Request, user store.User, part *multipart.Part) (store.File, error) {
	head := make([]byte, 512)
	n, err := io.ReadFull(part, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return store.File{}, uploadReadError(err, s.opts.MaxUploadBytes)
	}
	head = head[:n]
	if n == 0 {
		return store.File{}, fmt.Errorf("%w: the file is empty", chat.ErrInvalid)
	}
	contentType, ext, allowed := blob.Sniff(head)
	if !allowed {
		return store.File{}, fmt.Errorf("%w: file type not allowed: send an image, audio, video, PDF, ZIP or plain text file", chat.ErrInvalid)
	}
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return store.File{}, fmt.Errorf("file name: %w", err)
	}
	fid := hex.EncodeToString(rnd[:])
	key := user.AppID + "-" + fid + ext
	// Read one byte past the limit so an oversized file is detected, not truncated.
	body := io.LimitReader(io.MultiReader(bytes.NewReader(head), part), s.opts.MaxUploadBytes+1)
	size, err := s.blobs.Put(r.Context(), key, body)
	if err == nil && size > s.opts.MaxUploadBytes {
		err = fmt.Errorf("%w: the file is larger than %d bytes", chat.ErrTooLarge, s.opts.MaxUploadBytes)
	}
	if err != nil {
		s.blobs.Delete(r.Context(), key)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, chat.ErrTooLarge) {
			return store.File{}, fmt.Errorf("%w: the file is larger than %d bytes", chat.ErrTooLarge, s.opts.MaxUploadBytes)
		}
		return store.File{}, fmt.Errorf("store upload: %w", err)
	}
	f := store.File{
		ID:          fid,
		AppID:       user.AppID,
		UserID:      user.UserID,
		Key:         key,
		Name:        cleanName(part.FileName()),
		Size:        size,
		ContentType: contentType,
	}
	if err := s.chat.RecordFile(r.Context(), f); err != nil {
		s.blobs.Delete(r.Context(), key)
		return store.File{}, fmt.Errorf("record upload: %w", err)
	}
	return f, nil
}

func cleanName(name string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" {
		return ""
	}
	if len(name) > 255 {
		name = name[:255]
	}
	return name
}

// download serves an uploaded file. The name is unguessable; the response
// carries the sniffed type, nosniff, and an attachment disposition for
// anything that is not media, so an upload can never run as a page.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	appID, name := r.PathValue("app"), r.PathValue("name")
	fid, _, _ := strings.Cut(name, ".")
	if !store.ValidID(appID) || len(fid) != 32 {
		s.fail(w, r, fmt.Errorf("%w: file", chat.ErrNotFound))
		return
	}
	f, err := s.chat.File(r.Context(), appID, fid)
	if err != nil || f.Key != appID+"-"+name {
		if err == nil {
			err = fmt.Errorf("%w: file", chat.ErrNotFound)
		}
		s.fail(w, r, err)
		return
	}
	rc, size, err := s.blobs.Open(r.Context(), f.Key)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			err = fmt.Errorf("%w: file", chat.ErrNotFound)
		}
		s.fail(w, r, err)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	disposition := "inline"
	if !isMedia(f.ContentType) {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", disposition+"; filename*=UTF-8''"+url.PathEscape(f.Name))
	http.ServeContent(w, r, "", f.CreatedAt, rc)
}

func isMedia(ct string) bool {
	return strings.HasPrefix(ct, "image/") || strings.HasPrefix(ct, "audio/") || strings.HasPrefix(ct, "video/")
}

// baseURL is the configured public URL, or the one the request came in on.
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimSuffix(s.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
