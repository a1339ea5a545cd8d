package server_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/config"
)

// TestReplayAfterRestart: a signed send replayed inside the signature window
// to a restarted chatd (SQLite) is refused, and stores nothing.
func TestReplayAfterRestart(t *testing.T) {
	dir := t.TempDir()
	onDisk := func(c *config.Config) {
		c.Store = "sqlite:" + filepath.Join(dir, "chatd.db")
		c.Blobs = "file:" + filepath.Join(dir, "files")
	}
	first := startNode(t, onDisk)
	first.token("alice")
	first.token("bob")
	body := first.signedBody(send("alice", "bob", "once"))
	if r := first.do("POST", "/private/send/message", "application/json", body, ""); r.Status != 1 {
		t.Fatalf("send: %+v", r)
	}
	first.ts.Close()
	first.srv.Close()

	second := startNode(t, onDisk)
	second.app = first.app
	r := second.do("POST", "/private/send/message", "application/json", body, "")
	if r.Status != 1004 || !strings.Contains(r.Message, "nonce_str already used") {
		t.Fatalf("replay after a restart: %+v; want 1004 nonce_str already used", r)
	}
	if ss := second.snapshot("alice"); !strings.Contains(ss, " 1/1 ") {
		t.Fatalf("the replay stored something: %s", ss)
	}
	// A fresh request still goes through.
	if r := second.call("POST", "/private/send/message", send("alice", "bob", "twice")); r.Status != 1 {
		t.Fatalf("a new request after the restart: %+v", r)
	}
}
