package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/chatd/chatd/internal/api"
	"github.com/chatd/chatd/internal/blob"
	"github.com/chatd/chatd/internal/config"
	"github.com/chatd/chatd/internal/ratelimit"
)

// OpenBlobs opens the upload storage named by a CHATD_BLOBS value; S3
// credentials come from getenv (AWS_ACCESS_KEY_ID, ...).
func OpenBlobs(dsn string, getenv func(string) string) (blob.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "file:"):
		return blob.NewDisk(strings.TrimPrefix(dsn, "file:"))
	case strings.HasPrefix(dsn, "s3://"):
		cfg, err := blob.ParseS3URL(dsn, getenv)
		if err != nil {
			return nil, err
		}
		return blob.NewS3(cfg)
	}
	return nil, fmt.Errorf("blobs %q: want s3://BUCKET/PREFIX?... or file:DIR", dsn)
}

// checkBlobs reports at start whether the upload storage works. A bucket
// that is missing or refuses the credentials does not stop the node (the
// rest of chat works, and the store may come back), but it is logged
// clearly, and /readyz stays false until it answers.
func checkBlobs(ctx context.Context, b blob.Store, dsn string, log *slog.Logger) {
	p, ok := b.(blob.Pinger)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.Ping(ctx); err != nil {
		log.Error("upload storage is not usable: uploads and downloads fail and /readyz is false until it is",
			"blobs", dsn, "err", err)
	}
}

// blobHealth remembers the blob store's last Ping for a moment, so that
// /readyz, which anyone may call, does not turn into a request to a paid
// object store per call.
type blobHealth struct {
	store blob.Store
	mu    sync.Mutex
	at    time.Time
	err   error
}

const blobHealthTTL = 2 * time.Second

func (h *blobHealth) check(ctx context.Context) error {
	p, ok := h.store.(blob.Pinger)
	if !ok {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.at.IsZero() && time.Since(h.at) < blobHealthTTL {
		return h.err
	}
	h.err, h.at = p.Ping(ctx), time.Now()
	return h.err
}

// uploadLimits builds the upload meters and quota of cfg.
func uploadLimits(cfg config.Config) api.UploadLimits {
	perMinute := func(n int) *ratelimit.Limiter { return ratelimit.New(float64(n)/60, n) }
	return api.UploadLimits{
		UserBytes:    ratelimit.NewBytes(cfg.UserUploadRate, cfg.UserUploadBurst),
		AppBytes:     ratelimit.NewBytes(cfg.AppUploadRate, cfg.AppUploadBurst),
		UserFiles:    perMinute(cfg.UserUploadFiles),
		AppFiles:     perMinute(cfg.AppUploadFiles),
		UserFilesMin: cfg.UserUploadFiles,
		AppFilesMin:  cfg.AppUploadFiles,
		AppQuota:     cfg.AppStorageQuota,
	}
}
