package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/server"
)

// env is a getenv over a map: the test never reads the real environment.
func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestRunCommands(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		wantOut string
		wantErr string
	}{
		{"version", []string{"version"}, "chatd dev", ""},
		{"help", []string{"help"}, "-addr (env CHATD_ADDR)", ""},
		{"unknown command", []string{"frobnicate"}, "", `unknown command "frobnicate"`},
		{"app without create", []string{"app"}, "", "usage: chatd app create"},
		{"serve with a bad flag", []string{"serve", "-history-limit=lots"}, "", "-history-limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errOut, env(nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("output %q does not contain %q", out.String(), tc.wantOut)
			}
		})
	}
}

func TestServeRefusesBadEnvironment(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), nil, io.Discard, io.Discard, env(map[string]string{"CHATD_MAX_UPLOAD_BYTES": "big"}))
	if err == nil || !strings.Contains(err.Error(), "CHATD_MAX_UPLOAD_BYTES") {
		t.Fatalf("err = %v, want one naming CHATD_MAX_UPLOAD_BYTES", err)
	}
}

// app create writes to the store named by the environment.
func TestAppCreate(t *testing.T) {
	t.Parallel()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "chatd.db")
	var out bytes.Buffer
	err := run(context.Background(), []string{"app", "create", "--name", "shop", "--description", "d"}, &out, io.Discard,
		env(map[string]string{"CHATD_STORE": dsn}))
	if err != nil {
		t.Fatal(err)
	}
	var appID string
	for line := range strings.Lines(out.String()) {
		if v, ok := strings.CutPrefix(line, "appId:"); ok {
			appID = strings.TrimSpace(v)
		}
	}
	st, err := server.OpenStore(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	app, err := st.App(context.Background(), appID)
	if err != nil || app.Name != "shop" {
		t.Fatalf("app %q in the store: %+v, %v (output %q)", appID, app, err, out.String())
	}
}

// serve runs a node from the environment until its context ends, then
// returns nil.
func TestServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-log-level", "info"}, io.Discard, pw, env(map[string]string{
			"CHATD_ADDR":  "127.0.0.1:0",
			"CHATD_STORE": "sqlite:" + filepath.Join(dir, "chatd.db"),
			"CHATD_BLOBS": "file:" + filepath.Join(dir, "files"),
		}))
		pw.Close()
	}()
	// The log says where it listens.
	logs := bufio.NewScanner(pr)
	var addr string
	for addr == "" && logs.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(logs.Bytes(), &line) == nil && line.Msg == "chatd listening" {
			addr = line.Addr
		}
	}
	go io.Copy(io.Discard, pr) // keep the logger unblocked
	if addr == "" {
		t.Fatalf("no listening line; run returned %v", <-done)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after its context ended", err)
		}
	case <-time.After(30 * time.Second): // a hang, not a timing assertion
		t.Fatal("serve did not return after its context ended")
	}
}

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
