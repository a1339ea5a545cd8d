package bench

import (
	"encoding/json"
	"testing"

	"github.com/chatd/chatd/internal/chat"
)

// BenchmarkEncodeSendAck is the ack of one send: encoding/json against
// chat.AppendSendResult (the gateway's encodeAnswer uses the latter).
func BenchmarkEncodeSendAck(b *testing.B) {
	r := chat.SendResult{Message: chat.Message{MsgID: "0192d3a4b5c6d7e8f9a0b1c2d3e4f5a6", Content: json.RawMessage(`{"content":"hello there"}`),
		ConversationType: 1, SenderUserID: "u0", TargetID: "u1", MessageType: 1, Date: "16:40",
		SendUser: chat.UserRef{Name: "Name u0"}, Seq: 12345, Timestamp: 1764693600000, ClientMsgID: "c-123"},
		SendSession: chat.SessionRef{SID: "0192d3a4b5c6d7e8f9a0b1c2d3e4f5a7", Title: "Name u1"}}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = chat.AppendSendResult(make([]byte, 0, 512), &r)
		}
	})
}
