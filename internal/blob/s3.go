package blob

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// S3 stores blobs in a bucket of an S3-compatible service (AWS S3, Aliyun
// OSS, MinIO, Ceph, SeaweedFS, Cloudflare R2, ...), under a key prefix.
//
// It speaks the few S3 calls chatd needs over net/http with Signature V4
// (sigv4.go) rather than through the AWS SDK or minio-go: those bring tens of
// packages and megabytes of code for one bucket's put, get, delete and
// multipart upload, whereas this is a few hundred lines with nothing to keep
// up to date beyond the standard library.
//
// Uploads stream: a body up to PartSize goes in one PUT; a longer one in a
// multipart upload, PartSize bytes at a time, so an upload holds at most one
// part in memory. An upload that fails is aborted, and S3 creates the object
// only when the upload completes, so a failure leaves nothing behind.
type S3 struct {
	cfg      S3Config
	creds    credentials
	endpoint *url.URL
	client   *http.Client
	now      func() time.Time
	bufs     sync.Pool
}

// S3Config locates the bucket and holds the credentials.
type S3Config struct {
	Bucket    string
	Prefix    string // prepended to every key ("" or ending in "/")
	Endpoint  string // scheme://host[:port]; default https://s3.REGION.amazonaws.com
	Region    string // default us-east-1
	PathStyle bool   // endpoint/bucket/key rather than bucket.endpoint/key
	PartSize  int64  // multipart part size; default and minimum 5 MiB (S3's minimum)

	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	Client *http.Client // default: one with sane timeouts
}

// String describes the bucket without the credentials, for logs.
func (c S3Config) String() string {
	return fmt.Sprintf("s3://%s/%s (endpoint %s, region %s)", c.Bucket, c.Prefix, c.Endpoint, c.Region)
}

// LogValue keeps the credentials out of structured logs too.
func (c S3Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MinPartSize is S3's smallest part size (but for the last part).
const MinPartSize = 5 << 20

// maxParts is S3's limit on parts per upload.
const maxParts = 10000

// ParseS3URL reads a CHATD_BLOBS value of the form
// s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path_style=true|false. The
// credentials come from getenv: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN (never from the URL, which ends up in logs).
func ParseS3URL(raw string, getenv func(string) string) (S3Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// Not url.Error's message: it quotes the whole URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return S3Config{}, fmt.Errorf("blob: s3 URL: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" {
		return S3Config{}, errors.New("blob: want s3://BUCKET/PREFIX?endpoint=…&region=…&path_style=true|false")
	}
	if u.User != nil {
		return S3Config{}, errors.New("blob: s3 URL: put credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not in the URL")
	}
	c := S3Config{
		Bucket:          u.Host,
		Prefix:          strings.Trim(u.Path, "/"),
		Region:          "us-east-1",
		AccessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
	}
	if c.Prefix != "" {
		c.Prefix += "/"
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path_style":
		default:
			return S3Config{}, fmt.Errorf("blob: s3 URL: unknown parameter %q (want endpoint, region, path_style)", k)
		}
	}
	if r := q.Get("region"); r != "" {
		c.Region = r
	}
	if ps := q.Get("path_style"); ps != "" {
		c.PathStyle, err = strconv.ParseBool(ps)
		if err != nil {
			return S3Config{}, fmt.Errorf("blob: s3 URL: path_style: want true or false, got %q", ps)
		}
	}
	c.Endpoint = q.Get("endpoint")
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return S3Config{}, errors.New("blob: s3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	return c, nil
}

// NewS3 returns a store over the bucket. It does not contact the service:
// Ping does.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" || strings.ContainsAny(cfg.Bucket, "/?#") {
		return nil, fmt.Errorf("blob: s3: bad bucket name %q", cfg.Bucket)
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "https://s3." + cfg.Region + ".amazonaws.com"
	}
	if !strings.Contains(cfg.Endpoint, "://") {
		cfg.Endpoint = "https://" + cfg.Endpoint
	}
	ep, err := url.Parse(cfg.Endpoint)
	if err != nil || ep.Host == "" || (ep.Scheme != "http" && ep.Scheme != "https") || ep.User != nil {
		return nil, fmt.Errorf("blob: s3: endpoint %q: want http(s)://HOST[:PORT]", cfg.Endpoint)
	}
	ep.Path, ep.RawQuery = strings.TrimSuffix(ep.Path, "/"), ""
	if cfg.PartSize < MinPartSize {
		cfg.PartSize = MinPartSize
	}
	client := cfg.Client
	if client == nil {
		// No overall timeout: a large download to a slow client may take
		// long. Connecting and the first response byte are bounded; the
		// request's context bounds the rest.
		client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}}
	}
	s := &S3{
		cfg:      cfg,
		creds:    credentials{cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken},
		endpoint: ep,
		client:   client,
		now:      time.Now,
	}
	s.bufs.New = func() any { b := make([]byte, cfg.PartSize); return &b }
	return s, nil
}

var _ Store = (*S3)(nil)

// objectURL is the URL of key (already prefixed) or of the bucket when key
// is empty.
func (s *S3) objectURL(key string, q url.Values) *url.URL {
	u := *s.endpoint
	p := "/" + key
	if s.cfg.PathStyle {
		p = "/" + s.cfg.Bucket + p
	} else {
		u.Host = s.cfg.Bucket + "." + u.Host
	}
	u.Path = s.endpoint.Path + p
	u.RawPath = s.endpoint.Path + uriEncode(p, true)
	if len(q) > 0 {
		u.RawQuery = canonicalQuery(q)
	}
	return &u
}

// S3Error is an error answer of the service. It carries the service's code
// and message, never the request's credentials.
type S3Error struct {
	Op         string
	StatusCode int
	Code       string
	Message    string
}

func (e *S3Error) Error() string {
	msg := e.Code
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("s3 %s: HTTP %d %s", e.Op, e.StatusCode, msg)
}

// ErrUnavailable wraps failures to reach or use the object store, so that
// callers can answer "try again later".
var ErrUnavailable = errors.New("blob store unavailable")

func (e *S3Error) Unwrap() error {
	if e.StatusCode == http.StatusNotFound && (e.Code == "NoSuchKey" || e.Code == "" || e.Code == "NotFound") {
		return ErrNotFound
	}
	return ErrUnavailable
}

// attempts bounds the tries of one request: S3 asks clients to retry its
// 500 and 503 (SlowDown) answers, and connections to it do drop now and then.
const attempts = 3

// retryable reports whether a request may be sent again after this answer.
func retryable(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// do sends one signed request and returns the response when its status is
// one of ok; otherwise the service's error, with the body drained. Every
// request chatd sends is idempotent and its body is in memory, so failures
// the service calls transient are retried, with a short backoff.
func (s *S3) do(ctx context.Context, op, method, key string, q url.Values, body []byte, header http.Header, ok ...int) (*http.Response, error) {
	payload := emptySHA256
	if len(body) > 0 {
		payload = hashHex(body)
	}
	var last error
	for try := range attempts {
		if try > 0 {
			t := time.NewTimer(time.Duration(try*try) * 100 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("s3 %s: %w (after: %w)", op, ctx.Err(), last)
			case <-t.C:
			}
		}
		resp, err := s.send(ctx, op, method, key, q, body, payload, header)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("s3 %s: %w", op, ctx.Err())
			}
			last = err
			continue
		}
		for _, c := range ok {
			if resp.StatusCode == c {
				return resp, nil
			}
		}
		last = readS3Error(op, resp)
		resp.Body.Close()
		if !retryable(resp.StatusCode) {
			break
		}
	}
	return nil, last
}

func (s *S3) send(ctx context.Context, op, method, key string, q url.Values, body []byte, payload string, header http.Header) (*http.Response, error) {
	u := s.objectURL(key, q)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", op, err)
	}
	req.URL = u
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.ContentLength = int64(len(body))
	s.creds.sign(req, s.cfg.Region, payload, s.now())
	resp, err := s.client.Do(req)
	if err != nil {
		// The error names the URL, which holds no credentials (they
		// travel in the Authorization header).
		return nil, fmt.Errorf("s3 %s: %w: %w", op, ErrUnavailable, err)
	}
	return resp, nil
}

func readS3Error(op string, resp *http.Response) error {
	e := &S3Error{Op: op, StatusCode: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var x struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(b, &x) == nil {
		e.Code, e.Message = x.Code, clip(x.Message)
	}
	return e
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// Ping checks that the bucket exists and the credentials are accepted.
func (s *S3) Ping(ctx context.Context) error {
	resp, err := s.do(ctx, "check bucket "+s.cfg.Bucket, http.MethodHead, "", nil, nil, nil, http.StatusOK)
	if err != nil {
		var se *S3Error
		if errors.As(err, &se) {
			switch se.StatusCode {
			case http.StatusNotFound:
				return fmt.Errorf("s3: bucket %q does not exist at %s: %w", s.cfg.Bucket, s.endpoint.Host, ErrUnavailable)
			case http.StatusForbidden, http.StatusUnauthorized:
				return fmt.Errorf("s3: access to bucket %q refused (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy): %w", s.cfg.Bucket, ErrUnavailable)
			}
		}
		return err
	}
	drain(resp)
	return nil
}

// CreateBucket creates the bucket; one that exists already and is ours is
// not an error. (For setting up tests and development servers.)
func (s *S3) CreateBucket(ctx context.Context) error {
	resp, err := s.do(ctx, "create bucket", http.MethodPut, "", nil, nil, nil, http.StatusOK)
	if err != nil {
		// Already there (perhaps created by a concurrent test) and usable.
		if s.Ping(ctx) == nil {
			return nil
		}
		return err
	}
	drain(resp)
	return nil
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if !ValidKey(key) {
		return 0, fmt.Errorf("%w: %q", ErrBadKey, clip(key))
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	n, err := io.ReadFull(ctxReader{ctx, r}, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// It fits in one part: one PUT, which S3 applies whole or not at all.
		fctx, cancel, err := finishing(ctx)
		if err != nil {
			return 0, fmt.Errorf("blob: put %s: %w", key, err)
		}
		defer cancel()
		resp, err := s.do(fctx, "put "+key, http.MethodPut, s.cfg.Prefix+key, nil, buf[:n], nil, http.StatusOK)
		if err != nil {
			return 0, fmt.Errorf("blob: put %s: %w", key, err)
		}
		drain(resp)
		return int64(n), nil
	case err != nil:
		return 0, fmt.Errorf("blob: put %s: %w", key, err)
	}
	return s.putMultipart(ctx, key, r, buf)
}

type completeUpload struct {
	XMLName xml.Name       `xml:"CompleteMultipartUpload"`
	Parts   []completePart `xml:"Part"`
}

type completePart struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
}

// putMultipart uploads buf (full) and the rest of r part by part.
func (s *S3) putMultipart(ctx context.Context, key string, r io.Reader, buf []byte) (size int64, err error) {
	obj := s.cfg.Prefix + key
	resp, err := s.do(ctx, "start upload "+key, http.MethodPost, obj, url.Values{"uploads": {""}}, nil, nil, http.StatusOK)
	if err != nil {
		return 0, fmt.Errorf("blob: put %s: %w", key, err)
	}
	var start struct {
		UploadID string `xml:"UploadId"`
	}
	err = xml.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&start)
	drain(resp)
	if err != nil || start.UploadID == "" {
		return 0, fmt.Errorf("blob: put %s: start upload: no upload id: %w", key, ErrUnavailable)
	}
	defer func() {
		if err != nil {
			// The client may be gone (its context cancelled); the abort
			// must still happen, or the parts linger and are billed.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if aerr := s.abort(actx, obj, start.UploadID); aerr != nil {
				err = errors.Join(err, aerr)
			}
		}
	}()
	var parts []completePart
	n := len(buf)
	for last := false; ; {
		num := len(parts) + 1
		if num > maxParts {
			return 0, fmt.Errorf("blob: put %s: more than %d parts", key, maxParts)
		}
		q := url.Values{"partNumber": {strconv.Itoa(num)}, "uploadId": {start.UploadID}}
		resp, err := s.do(ctx, "upload part "+key, http.MethodPut, obj, q, buf[:n], nil, http.StatusOK)
		if err != nil {
			return 0, fmt.Errorf("blob: put %s: %w", key, err)
		}
		etag := resp.Header.Get("ETag")
		drain(resp)
		parts = append(parts, completePart{num, etag})
		size += int64(n)
		if last {
			break
		}
		n, err = io.ReadFull(ctxReader{ctx, r}, buf)
		if err == io.EOF {
			break
		}
		if err == io.ErrUnexpectedEOF {
			last = true // the short last part goes up on the next turn
		} else if err != nil {
			return 0, fmt.Errorf("blob: put %s: %w", key, err)
		}
	}
	body, err := xml.Marshal(completeUpload{Parts: parts})
	if err != nil {
		return 0, fmt.Errorf("blob: put %s: %w", key, err)
	}
	fctx, cancel, err := finishing(ctx)
	if err != nil {
		return 0, fmt.Errorf("blob: put %s: %w", key, err)
	}
	defer cancel()
	resp, err = s.do(fctx, "complete upload "+key, http.MethodPost, obj, url.Values{"uploadId": {start.UploadID}}, body,
		http.Header{"Content-Type": {"application/xml"}}, http.StatusOK)
	if err != nil {
		return 0, fmt.Errorf("blob: put %s: %w", key, err)
	}
	// S3 may answer 200 and report a failure in the body.
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if rerr != nil {
		return 0, fmt.Errorf("blob: put %s: complete upload: %w: %w", key, ErrUnavailable, rerr)
	}
	var res struct {
		XMLName xml.Name
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(b, &res) == nil && res.XMLName.Local == "Error" {
		return 0, fmt.Errorf("blob: put %s: %w", key, &S3Error{Op: "complete upload", StatusCode: http.StatusOK, Code: res.Code, Message: clip(res.Message)})
	}
	return size, nil
}

// finishing returns the context for the request that completes a write,
// once every byte has been read: it is not cancelled with ctx, because a
// write cancelled in flight may still have been applied, leaving an object
// the caller believes was never written. If ctx has already ended, the
// write is abandoned before that request (err).
func finishing(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	return fctx, cancel, nil
}

func (s *S3) abort(ctx context.Context, obj, uploadID string) error {
	resp, err := s.do(ctx, "abort upload", http.MethodDelete, obj, url.Values{"uploadId": {uploadID}}, nil, nil,
		http.StatusNoContent, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// Open implements Store. It asks for the size at once and fetches bytes only
// when read, from the offset of the last Seek, so a Range request transfers
// only its range.
func (s *S3) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error) {
	if !ValidKey(key) {
		return nil, 0, fmt.Errorf("%w: %q", ErrBadKey, clip(key))
	}
	resp, err := s.do(ctx, "stat "+key, http.MethodHead, s.cfg.Prefix+key, nil, nil, nil, http.StatusOK)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("blob: open %s: %w", key, err)
	}
	drain(resp)
	if resp.ContentLength < 0 {
		return nil, 0, fmt.Errorf("blob: open %s: no size in the answer: %w", key, ErrUnavailable)
	}
	return &s3Reader{s: s, ctx: ctx, key: key, size: resp.ContentLength}, resp.ContentLength, nil
}

type s3Reader struct {
	s    *S3
	ctx  context.Context
	key  string
	size int64
	off  int64
	body io.ReadCloser // open at off, or nil
}

func (r *s3Reader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.body == nil {
		h := http.Header{"Range": {"bytes=" + strconv.FormatInt(r.off, 10) + "-"}}
		resp, err := r.s.do(r.ctx, "get "+r.key, http.MethodGet, r.s.cfg.Prefix+r.key, nil, nil, h, http.StatusPartialContent, http.StatusOK)
		if err != nil {
			return 0, fmt.Errorf("blob: read %s: %w", r.key, err)
		}
		if resp.StatusCode == http.StatusOK && r.off > 0 {
			// The server ignored the range: skip to the offset.
			if _, err := io.CopyN(io.Discard, resp.Body, r.off); err != nil {
				resp.Body.Close()
				return 0, fmt.Errorf("blob: read %s: %w", r.key, err)
			}
		}
		r.body = resp.Body
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	if err == io.EOF && r.off < r.size {
		err = fmt.Errorf("blob: read %s: %w", r.key, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (r *s3Reader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("blob: seek: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("blob: seek: negative position")
	}
	if abs != r.off && r.body != nil {
		r.body.Close()
		r.body = nil
	}
	r.off = abs
	return abs, nil
}

func (r *s3Reader) Close() error {
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if !ValidKey(key) {
		return fmt.Errorf("%w: %q", ErrBadKey, clip(key))
	}
	resp, err := s.do(ctx, "delete "+key, http.MethodDelete, s.cfg.Prefix+key, nil, nil, nil,
		http.StatusNoContent, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	drain(resp)
	return nil
}

// PresignGet returns a URL that fetches key without credentials until ttl
// has passed, answering with the given Content-Type and
// Content-Disposition.
func (s *S3) PresignGet(key string, ttl time.Duration, contentType, disposition string) (string, error) {
	if !ValidKey(key) {
		return "", fmt.Errorf("%w: %q", ErrBadKey, clip(key))
	}
	q := url.Values{}
	if contentType != "" {
		q.Set("response-content-type", contentType)
	}
	if disposition != "" {
		q.Set("response-content-disposition", disposition)
	}
	q.Set("response-cache-control", "private, max-age="+itoa(int64(ttl/time.Second)))
	u := s.objectURL(s.cfg.Prefix+key, nil)
	u.RawQuery = canonicalQuery(q)
	return s.creds.presign(u, s.cfg.Region, ttl, s.now()), nil
}

// List returns the keys under the prefix, and "upload:" followed by the key
// of each multipart upload still in progress, so tests can check that
// nothing is left behind.
func (s *S3) List(ctx context.Context) ([]string, error) {
	var out []string
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {s.cfg.Prefix}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		resp, err := s.do(ctx, "list", http.MethodGet, "", q, nil, nil, http.StatusOK)
		if err != nil {
			return nil, err
		}
		var res struct {
			Contents []struct {
				Key string `xml:"Key"`
			} `xml:"Contents"`
			IsTruncated bool   `xml:"IsTruncated"`
			Next        string `xml:"NextContinuationToken"`
		}
		err = xml.NewDecoder(resp.Body).Decode(&res)
		drain(resp)
		if err != nil {
			return nil, fmt.Errorf("s3 list: %w", err)
		}
		for _, c := range res.Contents {
			out = append(out, strings.TrimPrefix(c.Key, s.cfg.Prefix))
		}
		if !res.IsTruncated || res.Next == "" {
			break
		}
		token = res.Next
	}
	resp, err := s.do(ctx, "list uploads", http.MethodGet, "", url.Values{"uploads": {""}, "prefix": {s.cfg.Prefix}}, nil, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var ups struct {
		Uploads []struct {
			Key string `xml:"Key"`
		} `xml:"Upload"`
	}
	err = xml.NewDecoder(resp.Body).Decode(&ups)
	drain(resp)
	if err != nil {
		return nil, fmt.Errorf("s3 list uploads: %w", err)
	}
	for _, u := range ups.Uploads {
		out = append(out, "upload:"+strings.TrimPrefix(u.Key, s.cfg.Prefix))
	}
	return out, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
