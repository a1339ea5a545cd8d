package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
)

// The push of a group message differs between recipients only in
// sendSession. These benchmarks compare encoding the whole envelope per
// recipient (what the gateway does) with encoding the message once and
// splicing each recipient's session into it.

type pushEnvelope struct {
	Message string          `json:"message"`
	Status  int             `json:"status"`
	Data    chat.SendResult `json:"data"`
	Type    string          `json:"type"`
}

func fanoutFixture(n int) (chat.Message, []chat.SessionRef) {
	msg := chat.Message{
		MsgID: "65f0c0ffee0000000000abcd", Content: json.RawMessage(`{"content":"hello, group","extra":{"k":"v"}}`),
		ConversationType: 2, SenderUserID: "u0", TargetID: "g", MessageType: 1, Date: "12:00",
		SendUser: chat.UserRef{Name: "User 0", AvatarURI: "https://example.com/a.png"}, Seq: 12345, Timestamp: 1700000000000,
	}
	refs := make([]chat.SessionRef, n)
	for i := range refs {
		refs[i] = chat.SessionRef{SID: fmt.Sprintf("65f0%020x", i), Title: "Group", Avatar: ""}
	}
	return msg, refs
}

// BenchmarkFanoutEncodePerRecipient1000 encodes 1,000 pushes the way the
// gateway's deliverMessage does: one Prepare of the whole envelope each.
func BenchmarkFanoutEncodePerRecipient1000(b *testing.B) {
	msg, refs := fanoutFixture(1000)
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range refs {
			if _, err := socketio.Prepare("/", "message", pushEnvelope{Status: 1, Data: chat.SendResult{Message: msg, SendSession: r}, Type: "user"}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFanoutEncodeOnceSplice1000 encodes the message once and splices
// each recipient's sendSession into prefix+session+suffix bytes, passed to
// Prepare as json.RawMessage.
func BenchmarkFanoutEncodeOnceSplice1000(b *testing.B) {
	msg, refs := fanoutFixture(1000)
	b.ReportAllocs()
	for b.Loop() {
		m, err := json.Marshal(msg)
		if err != nil {
			b.Fatal(err)
		}
		// {"message":"","status":1,"data":{<message fields>,"sendSession":<ref>},"type":"user"}
		prefix := append([]byte(`{"message":"","status":1,"data":`), m[:len(m)-1]...)
		prefix = append(prefix, `,"sendSession":`...)
		suffix := []byte(`},"type":"user"}`)
		// A group's title and avatar are the same for every member: encode
		// them once; sids are hex and need no escaping.
		title, _ := json.Marshal(refs[0].Title)
		avatar, _ := json.Marshal(refs[0].Avatar)
		prefix = append(prefix, `{"sid":"`...)
		tail := append(append(append(append([]byte(`","title":`), title...), `,"avatar":`...), avatar...), '}')
		tail = append(tail, suffix...)
		for _, r := range refs {
			raw := make([]byte, 0, len(prefix)+len(r.SID)+len(tail))
			raw = append(append(append(raw, prefix...), r.SID...), tail...)
			if _, err := socketio.Prepare("/", "message", json.RawMessage(raw)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestFanoutSpliceMatches checks that the spliced push decodes to the same
// value as the per-recipient one.
func TestFanoutSpliceMatches(t *testing.T) {
	msg, refs := fanoutFixture(3)
	m, _ := json.Marshal(msg)
	for _, r := range refs {
		want, _ := json.Marshal(pushEnvelope{Status: 1, Data: chat.SendResult{Message: msg, SendSession: r}, Type: "user"})
		got := append([]byte(`{"message":"","status":1,"data":`), m[:len(m)-1]...)
		got = append(append(append(got, `,"sendSession":{"sid":"`...), r.SID...), `","title":"Group","avatar":""}},"type":"user"}`...)
		if !bytes.Equal(got, want) {
			t.Fatalf("spliced push\n%s\nwant\n%s", got, want)
		}
	}
}

// BenchmarkDeliveryJSONRoundTrip1000 is what the gateway spends per group
// message on the broker payload with the memory broker: marshal the
// chat.Delivery with 1,000 recipients, then unmarshal it on the same node.
// Handing local subscribers the value would save all of it.
func BenchmarkDeliveryJSONRoundTrip1000(b *testing.B) {
	msg, refs := fanoutFixture(1000)
	d := chat.Delivery{AppID: "65f0c0ffee0000000000a99a", Origin: "sock1", Message: msg}
	for i, r := range refs {
		d.Recipients = append(d.Recipients, chat.Recipient{UserID: fmt.Sprintf("u%d", i), Session: r})
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := json.Marshal(d)
		if err != nil {
			b.Fatal(err)
		}
		var back chat.Delivery
		if err := json.Unmarshal(p, &back); err != nil {
			b.Fatal(err)
		}
	}
}
