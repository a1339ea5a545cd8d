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
	"github.com/chatd/chatd/internal/httpguard"
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
	if err := s.admitUpload(r.Context(), w, user); err != nil {
		s.fail(w, r, err)
		return
	}
	// Whatever is read counts against the upload volume, stored or not.
	body := &countingBody{ReadCloser: r.Body}
	defer func() { s.chargeUpload(user, body.n) }()
	// Room for the multipart framing and a few small fields besides the file.
	r.Body = http.MaxBytesReader(w, body, s.opts.MaxUploadBytes+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: send multipart/form-data with the file in field up_file", chat.ErrInvalid))
		return
	}
	stored := false
	defer func() {
		if !stored {
			s.counters.failed.Add(1)
		}
	}()
	for parts := 1; ; parts++ {
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
			if parts >= maxUploadParts {
				s.fail(w, r, fmt.Errorf("%w: too many form fields: send up_file within the first %d parts", chat.ErrTooLarge, maxUploadParts))
				return
			}
			continue
		}
		f, err := s.storeUpload(r, user, part)
		part.Close()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		stored = true
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
	if errors.As(err, &mbe) || errors.Is(err, errFileTooLarge) {
		return fmt.Errorf("%w: the file is larger than %d bytes", chat.ErrTooLarge, max)
	}
	if errors.Is(err, httpguard.ErrSlowBody) {
		return fmt.Errorf("%w: the upload arrived too slowly", chat.ErrTimeout)
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
	// A file past the limit fails the write itself, so the store never
	// keeps it (no object is created; a multipart upload is aborted).
	body := &maxReader{r: io.MultiReader(bytes.NewReader(head), part), max: s.opts.MaxUploadBytes}
	size, err := s.blobs.Put(r.Context(), key, body)
	if err == nil && size > s.opts.MaxUploadBytes {
		// Defence in depth: a store that ignored the reader's error.
		s.deleteBlob(r.Context(), key, "file over the size limit")
		err = errFileTooLarge
	}
	if err != nil {
		// A failed Put leaves nothing under the key (blob.Store), so there
		// is nothing to delete.
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, errFileTooLarge) || errors.Is(err, httpguard.ErrSlowBody) {
			return store.File{}, uploadReadError(err, s.opts.MaxUploadBytes)
		}
		return store.File{}, s.blobError(r, "store upload", err)
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
	if err := s.chat.RecordFileWithin(r.Context(), f, s.opts.Uploads.AppQuota); err != nil {
		s.deleteBlob(r.Context(), key, "recording the upload failed")
		if errors.Is(err, store.ErrQuota) {
			s.counters.overQuota.Add(1)
			return store.File{}, quotaError(s.opts.Uploads.AppQuota)
		}
		return store.File{}, fmt.Errorf("record upload: %w", err)
	}
	s.counters.uploads.Add(1)
	s.counters.bytes.Add(size)
	return f, nil
}

var errFileTooLarge = errors.New("file over the size limit")

// maxReader fails once more than max bytes have been read.
type maxReader struct {
	r      io.Reader
	n, max int64
}

func (m *maxReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.n += int64(n)
	if m.n > m.max {
		return n, errFileTooLarge
	}
	return n, err
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
	disposition := "inline"
	if !isMedia(f.ContentType) {
		disposition = "attachment"
	}
	disposition += "; filename*=UTF-8''" + url.PathEscape(f.Name)
	if p, ok := s.blobs.(blob.Presigner); ok && s.opts.BlobsRedirect {
		// The client fetches the object from the store itself, with the
		// same type and disposition; the redirect must not outlive the URL.
		u, err := p.PresignGet(f.Key, presignTTL, f.ContentType, disposition)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "private, no-store")
		http.Redirect(w, r, u, http.StatusFound)
		return
	}
	rc, size, err := s.blobs.Open(r.Context(), f.Key)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			err = fmt.Errorf("%w: file", chat.ErrNotFound)
		} else {
			err = s.blobError(r, "open upload", err)
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
	h.Set("Content-Disposition", disposition)
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
