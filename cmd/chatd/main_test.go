package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBackendsNamedWithoutCredentials: the startup log names the store and
// broker kinds only.
func TestBackendsNamedWithoutCredentials(t *testing.T) {
	for _, dsn := range []string{"postgres://u:hunter2@db/chat", "postgresql://u:hunter2@db/chat"} {
		if k := storeKind(dsn); strings.Contains(k, "hunter2") {
			t.Errorf("storeKind(%s) = %s", dsn, k)
		}
	}
	for _, url := range []string{"redis://u:hunter2@h:6379", "rediss://:hunter2@h", "nats://u:hunter2@h:4222", "tls://u:hunter2@h:4222"} {
		if k := brokerKind(url); strings.Contains(k, "hunter2") {
			t.Errorf("brokerKind(%s) = %s", url, k)
		}
	}
}

// TestServeHidesBrokerCredentials: a broker that cannot be opened is
// reported without its password.
func TestServeHidesBrokerCredentials(t *testing.T) {
	for _, env := range []map[string]string{
		{"CHATD_BROKER": "redis://user:hunter2@127.0.0.1:notaport/0"},
		{"CHATD_BROKER": "rediss://user:hunter2@127.0.0.1:notaport/0"},
		{"CHATD_BROKER": "kafka://user:hunter2@127.0.0.1:9092"},
		{"CHATD_STORE": "mysql://user:hunter2@127.0.0.1/chat"},
	} {
		dir := t.TempDir()
		for k, v := range map[string]string{
			"CHATD_STORE": "sqlite:" + dir + "/chatd.db", "CHATD_BLOBS": "file:" + dir + "/files", "CHATD_ADDR": "127.0.0.1:0",
		} {
			if env[k] == "" {
				env[k] = v
			}
		}
		var stderr bytes.Buffer
		err := run(context.Background(), nil, &stderr, &stderr, func(k string) string { return env[k] })
		if err == nil {
			t.Fatalf("chatd started with %v", env)
		}
		if out := err.Error() + stderr.String(); strings.Contains(out, "hunter2") {
			t.Errorf("a password was printed: %s", out)
		}
	}
}
