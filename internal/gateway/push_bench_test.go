package gateway

import (
	"encoding/json"
	"testing"

	"github.com/chatd/chatd/internal/chat"
)

// BenchmarkPushTemplate is the first encode of a message's push:
// encoding/json (before) against encodeTemplate's appender.
func BenchmarkPushTemplate(b *testing.B) {
	m := chat.Message{MsgID: "0192d3a4b5c6d7e8f9a0b1c2", Content: json.RawMessage(`{"content":"hello there"}`), ConversationType: 1,
		SenderUserID: "u0", TargetID: "u1", MessageType: 1, Date: "16:40", SendUser: chat.UserRef{Name: "Name u0"}, Seq: 12345, Timestamp: 1764693600000}
	ref := chat.SessionRef{SID: "0192d3a4b5c6d7e8f9a0b1c3", Title: "Name u0"}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(pushEnvelope{Status: chat.CodeOK, Type: "user",
				Data: pushData{SendResult: chat.SendResult{Message: m, SendSession: ref}}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := encodeTemplate(m, ref, false, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
