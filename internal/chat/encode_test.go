package chat

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// TestAppendMessagesMatchesEncodingJSON: the hand-written encoder writes
// what encoding/json writes, byte for byte, for compact content.
func TestAppendMessagesMatchesEncodingJSON(t *testing.T) {
	msgs := []Message{
		{MsgID: "a", Content: json.RawMessage(`{"content":"hi"}`), ConversationType: 1, SenderUserID: "u<1>&", TargetID: "t\"\\\n\t\r\x01",
			MessageType: 1, Date: "12:00", SendUser: UserRef{Name: "Zoë \u2028\u2029 \xff", AvatarURI: "https://x/?a=1&b=2"}, Seq: 7, Timestamp: 1700000000000},
		{MsgID: "b", Content: json.RawMessage(`{"x":[1,2,{"y":null}]}`), ConversationType: 2, SenderUserID: "u2", TargetID: "g", MessageType: 6,
			Date: "26/01/02", Seq: 8, Timestamp: 1, ClientMsgID: "c1", Version: 3, EditedAt: 5, EditCount: 2, Recalled: true, RecalledBy: "u2",
			RecalledAt: 9, ReplyTo: "a", Quote: &Quote{MsgID: "a", Seq: 7, SenderUserID: "u1", MessageType: 1, Excerpt: "hi"},
			Mentions: []string{"u1"}, MentionAll: true, Reactions: []Reaction{{Emoji: "👍", Count: 2, UserIDs: []string{"u1", "u2"}, Me: true}}},
		{MsgID: "c", ConversationType: 1},
	}
	want, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendMessages(nil, msgs); !bytes.Equal(got, want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := AppendMessages(nil, []Message{}); string(got) != "[]" {
		t.Fatalf("empty: %s", got)
	}
}

// A large page is encoded into one allocation of about its size, not grown
// by append step by step (docs/soak.md, Under attack).
func TestAppendMessagesAllocatesOnce(t *testing.T) {
	big := json.RawMessage(`{"content":"` + strings.Repeat("x", 60<<10) + `"}`)
	msgs := make([]Message, 40)
	for i := range msgs {
		msgs[i] = Message{MsgID: "m", Content: big, ConversationType: 1, SenderUserID: "filler", TargetID: "attacker",
			MessageType: 1, Date: "12:00", SendUser: UserRef{Name: "Filler"}, Seq: int64(i + 1), Timestamp: 1700000000000, Version: 1}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out := AppendMessages(nil, msgs)
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(len(out))*11/10; got > limit {
		t.Errorf("a %d byte page allocated %d bytes, want at most %d", len(out), got, limit)
	}
}

func TestAppendSendResultMatchesEncodingJSON(t *testing.T) {
	for _, r := range []SendResult{
		{Message: Message{MsgID: "a", Content: json.RawMessage(`{"content":"hi"}`), ConversationType: 1, SenderUserID: "u<1>", TargetID: "t",
			MessageType: 1, Date: "12:00", SendUser: UserRef{Name: "Zoë", AvatarURI: "a&b"}, Seq: 7, Timestamp: 1700000000000, ClientMsgID: "c"},
			SendSession: SessionRef{SID: "s\"1\"", Title: "Bob <b>", Avatar: "https://x/?a=1&b=2"}},
		{Message: Message{MsgID: "b", Mentions: []string{"u1"}, MentionAll: true, ReplyTo: "a"}},
		{},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendSendResult(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
}
