package config

import (
	"strings"
	"testing"
)

func TestBlobsAndUploadSettings(t *testing.T) {
	env := map[string]string{
		"CHATD_BLOBS":             "s3://bucket/chatd?endpoint=http://127.0.0.1:7070&path_style=true",
		"CHATD_BLOBS_REDIRECT":    "true",
		"CHATD_USER_UPLOAD_RATE":  "1000",
		"CHATD_USER_UPLOAD_BURST": "5000",
		"CHATD_APP_UPLOAD_FILES":  "7",
		"CHATD_APP_STORAGE_QUOTA": "1073741824",
	}
	c, err := Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Blobs != env["CHATD_BLOBS"] || !c.BlobsRedirect || c.UserUploadRate != 1000 || c.UserUploadBurst != 5000 ||
		c.AppUploadFiles != 7 || c.AppStorageQuota != 1<<30 || c.UserUploadFiles != Default().UserUploadFiles {
		t.Errorf("got %+v", c)
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CHATD_BLOBS": "s3:///nobucket"}, "want file:DIR or s3://"},
		{map[string]string{"CHATD_BLOBS": "gs://bucket"}, "want file:DIR or s3://"},
		{map[string]string{"CHATD_BLOBS_REDIRECT": "true"}, "CHATD_BLOBS_REDIRECT) needs s3://"},
		{map[string]string{"CHATD_APP_STORAGE_QUOTA": "-1"}, "must not be negative"},
		{map[string]string{"CHATD_USER_UPLOAD_FILES": "-5"}, "must not be negative"},
	} {
		_, err := Load(nil, func(k string) string { return tt.env[k] })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.env, err, tt.want)
		}
	}
}
