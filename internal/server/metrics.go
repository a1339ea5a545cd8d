package server

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/chatd/chatd/internal/broker"
)

// metrics writes the node's counters and gauges in the Prometheus text
// format. It is small enough not to need a client library.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	metric := func(name, typ, help string, v any) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	cs := s.Chat.Stats()
	metric("chatd_messages_sent_total", "counter", "Messages stored.", cs.MessagesSent)
	metric("chatd_messages_duplicate_total", "counter", "Sends answered with the original message (clientMsgId retries).", cs.Duplicates)
	metric("chatd_sends_rate_limited_total", "counter", "Sends refused by a rate limit.", cs.RateLimited)
	metric("chatd_sockets", "gauge", "Authenticated sockets on this node.", s.Gateway.Sockets())
	metric("chatd_engine_sessions", "gauge", "Engine.IO sessions on this node, authenticated or not.", s.Sockets.Count())
	metric("chatd_push_overflow_disconnects_total", "counter", "Sockets closed because a push to them could not be queued on this node (they resync).", s.Gateway.OverflowDisconnects())
	metric("chatd_socket_slow_disconnects_total", "counter", "Sockets disconnected because their pending output went over CHATD_MAX_SOCKET_BUFFER_BYTES.", s.Sockets.SlowConsumers())
	metric("chatd_answers_rate_limited_total", "counter", "Socket events refused because their user asked for more answer bytes than CHATD_USER_ANSWER_RATE allows.", s.Gateway.AnswersRefused())
	hits, misses := s.Chat.HistoryCacheStats()
	metric("chatd_history_cache_hits_total", "counter", "History and sync pages served from this node's cache of recent pages.", hits)
	metric("chatd_history_cache_misses_total", "counter", "History and sync pages read from the store (cacheable readers only).", misses)
	if s.conns != nil {
		metric("chatd_http_conns_refused_total", "counter", "Connections refused by CHATD_MAX_CONNS_PER_IP.", s.conns.Refused())
	}
	if sr, ok := s.Broker.(broker.StatsReporter); ok {
		bs := sr.Stats()
		metric("chatd_broker_published_total", "counter", "Payloads published to the broker.", bs.Published)
		metric("chatd_broker_publish_errors_total", "counter", "Publishes that failed.", bs.PublishErrors)
		metric("chatd_broker_delivered_total", "counter", "Payloads handed to local subscribers.", bs.Delivered)
		metric("chatd_broker_dropped_total", "counter", "Payloads dropped by full subscriber queues.", bs.Dropped)
		metric("chatd_broker_reconnects_total", "counter", "Broker reconnections.", bs.Reconnects)
	}
	us := s.API.UploadStats()
	metric("chatd_uploads_total", "counter", "Files stored.", us.Uploads)
	metric("chatd_uploads_failed_total", "counter", "Uploads that failed after passing the limits; nothing of them is kept.", us.Failed)
	metric("chatd_upload_bytes_total", "counter", "Bytes of files stored.", us.UploadBytes)
	metric("chatd_uploads_rate_limited_total", "counter", "Uploads refused by a rate limit.", us.Limited)
	metric("chatd_uploads_over_quota_total", "counter", "Uploads refused by the app's storage quota.", us.OverQuota)
	metric("chatd_blob_delete_errors_total", "counter", "Blobs of failed uploads that could not be deleted (orphaned; see the log).", us.BlobDeleteErrors)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	metric("go_goroutines", "gauge", "Goroutines.", runtime.NumGoroutine())
	metric("go_memstats_heap_alloc_bytes", "gauge", "Bytes of allocated heap objects.", ms.HeapAlloc)
	metric("go_memstats_heap_inuse_bytes", "gauge", "Bytes in in-use heap spans.", ms.HeapInuse)
	metric("go_memstats_sys_bytes", "gauge", "Bytes obtained from the OS.", ms.Sys)
	metric("go_gc_cycles_total", "counter", "Completed GC cycles.", ms.NumGC)
	if rss, ok := residentBytes(); ok {
		metric("process_resident_memory_bytes", "gauge", "Resident set size.", rss)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		metric("process_open_fds", "gauge", "Open file descriptors.", len(fds))
	}
	if s.Webhook != nil {
		s.Webhook.WriteMetrics(&b) // deliveries and the before-send hook's latency
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(b.String()))
}

// residentBytes reads the RSS from /proc (Linux); ok is false elsewhere.
func residentBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}
