package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/chatd/chatd/internal/blob"
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/ratelimit"
	"github.com/chatd/chatd/internal/store"
)

// UploadLimits bound what users and apps may upload (SECURITY.md lists the
// defaults). Nil meters and zero values disable a limit.
type UploadLimits struct {
	UserBytes, AppBytes *ratelimit.Bytes   // volume per second, with burst
	UserFiles, AppFiles *ratelimit.Limiter // uploads per minute
	// UserFilesMin and AppFilesMin are the per-minute counts behind
	// UserFiles and AppFiles, for messages and Retry-After.
	UserFilesMin, AppFilesMin int
	AppQuota                  int64 // bytes of files an app may keep
}

// maxUploadParts caps the multipart parts read from one upload: the file and
// a few small fields. Parsing a part costs CPU however small it is.
const maxUploadParts = 8

// presignTTL is how long a download redirect stays valid.
const presignTTL = 5 * time.Minute

// UploadStats are the upload counters of a node.
type UploadStats struct {
	Uploads          int64 // files stored
	Failed           int64 // uploads that failed after passing the limits (nothing is kept of them)
	UploadBytes      int64 // bytes of files stored
	Limited          int64 // uploads refused by a rate limit (429)
	OverQuota        int64 // uploads refused by the app's storage quota (413)
	BlobDeleteErrors int64 // blobs that could not be deleted and are orphaned
}

type uploadCounters struct {
	uploads, failed, bytes, limited, overQuota, deleteErrors atomic.Int64
}

// UploadStats returns the node's upload counters.
func (s *Server) UploadStats() UploadStats {
	c := &s.counters
	return UploadStats{c.uploads.Load(), c.failed.Load(), c.bytes.Load(), c.limited.Load(), c.overQuota.Load(), c.deleteErrors.Load()}
}

func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
}

// admitUpload applies the per-user and per-app upload rates and the app's
// quota before any of the body is read.
func (s *Server) admitUpload(ctx context.Context, w http.ResponseWriter, user store.User) error {
	l := s.opts.Uploads
	userKey := user.AppID + "\x00" + user.UserID
	limited := func(d time.Duration, format string, args ...any) error {
		s.counters.limited.Add(1)
		retryAfter(w, d)
		return fmt.Errorf("%w: "+format, append([]any{chat.ErrRateLimited}, args...)...)
	}
	if !l.UserFiles.Allow(userKey) {
		return limited(time.Minute/time.Duration(max(l.UserFilesMin, 1)), "at most %d uploads per minute per user: retry later", l.UserFilesMin)
	}
	if !l.AppFiles.Allow(user.AppID) {
		return limited(time.Minute/time.Duration(max(l.AppFilesMin, 1)), "at most %d uploads per minute per app: retry later", l.AppFilesMin)
	}
	if ok, d := l.UserBytes.Admit(userKey); !ok {
		return limited(d, "upload volume limit of this user reached: retry in %d s", int(math.Ceil(d.Seconds())))
	}
	if ok, d := l.AppBytes.Admit(user.AppID); !ok {
		return limited(d, "upload volume limit of this app reached: retry in %d s", int(math.Ceil(d.Seconds())))
	}
	if l.AppQuota > 0 {
		u, err := s.chat.FileUsage(ctx, user.AppID)
		if err != nil {
			return fmt.Errorf("upload quota: %w", err)
		}
		if u.Bytes >= l.AppQuota {
			s.counters.overQuota.Add(1)
			return quotaError(l.AppQuota)
		}
	}
	return nil
}

func quotaError(quota int64) error {
	return fmt.Errorf("%w: the app's storage quota of %d bytes is used up", chat.ErrTooLarge, quota)
}

// chargeUpload counts what an upload moved, finished or not, against the
// user's and the app's volume.
func (s *Server) chargeUpload(user store.User, n int64) {
	s.opts.Uploads.UserBytes.Charge(user.AppID+"\x00"+user.UserID, n)
	s.opts.Uploads.AppBytes.Charge(user.AppID, n)
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// deleteBlob removes a blob whose upload failed. It runs even when the
// request's context has ended (a client hanging up is the usual reason),
// and a failure is logged and counted: the blob is orphaned.
func (s *Server) deleteBlob(ctx context.Context, key, why string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.blobs.Delete(ctx, key); err != nil {
		s.counters.deleteErrors.Add(1)
		s.log.Error("could not delete the blob of a failed upload; it is orphaned", "key", key, "why", why, "err", err)
	}
}

// blobError maps a blob store failure to what the client sees; the cause
// is logged here, as the client's message does not carry it.
func (s *Server) blobError(r *http.Request, op string, err error) error {
	if errors.Is(err, blob.ErrUnavailable) {
		s.log.Error("upload storage failed", "op", op, "method", r.Method, "path", r.URL.Path, "err", err)
		return fmt.Errorf("%w: file storage is unavailable: try again later", chat.ErrUnavailable)
	}
	return fmt.Errorf("%s: %w", op, err)
}
