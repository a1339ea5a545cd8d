package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"

	"github.com/chatd/chatd/internal/blob/blobtest"
)

// TestClusterS3Blobs: nodes sharing one bucket serve each other's uploads,
// whole and by range, and a multipart-sized upload on one node is read back
// intact from the other.
func TestClusterS3Blobs(t *testing.T) {
	dsn, bucket := blobtest.S3URL(t)
	c := newCluster(t, 2, freshSchema(t), "memory", func(c *cluster) { c.blobs = dsn })
	token := c.token(0, "uploader")
	for _, size := range []int{3000, 6<<20 + 123} {
		data := make([]byte, size)
		rand.Read(data)
		copy(data, "PK\x03\x04") // sniffed as application/zip
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("up_file", "shared.zip")
		fw.Write(data)
		mw.Close()
		res, err := c.http.Post(c.node(0).base+"/file/upload?appId="+c.app.AppID+"&token="+token, mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Status int
			Data   struct{ FullURL string }
		}
		json.NewDecoder(res.Body).Decode(&r)
		res.Body.Close()
		if r.Status != 1 {
			t.Fatalf("upload of %d bytes on node 0: HTTP %d %+v", size, res.StatusCode, r)
		}
		u, err := url.Parse(r.Data.FullURL)
		if err != nil {
			t.Fatal(err)
		}
		// fullUrl is a chatd URL; node 1 serves it from the shared bucket.
		res, err = c.http.Get(c.node(1).base + u.Path)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(got, data) || res.Header.Get("Content-Type") != "application/zip" {
			t.Fatalf("%d bytes from node 1: HTTP %d, %d bytes, %q", size, res.StatusCode, len(got), res.Header.Get("Content-Type"))
		}
		req, _ := http.NewRequest("GET", c.node(1).base+u.Path, nil)
		req.Header.Set("Range", "bytes=1000-1999")
		res, err = c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[1000:2000]) {
			t.Fatalf("range from node 1: HTTP %d, %d bytes", res.StatusCode, len(got))
		}
	}
	keys, err := bucket.List(context.Background())
	if err != nil || len(keys) != 2 {
		t.Errorf("bucket holds %v %v; want the 2 uploads only", keys, err)
	}
}
