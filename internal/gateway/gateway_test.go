package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
	"github.com/chatd/chatd/internal/store/sqlite"
)

// fixture is a gateway over a real SQLite store with two users who share a
// private conversation and a group.
type fixture struct {
	g        *Gateway
	svc      *chat.Service
	alice    caller
	sids     []string // alice's sids
	eventSet []string
}

// newService is a chat service over a fresh SQLite store, notifying br.
func newService(tb testing.TB, br broker.Broker) *chat.Service {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "gw.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return chat.New(st, chat.Options{Notifier: NewNotifier(br, nil)})
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	br := broker.NewMemory()
	svc := newService(t, br)
	g, err := New(svc, socketio.NewServer(socketio.Options{}), br, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	app, _ := svc.CreateApp(ctx, "fuzz", "")
	for _, u := range []string{"alice", "bob"} {
		if _, err := svc.GetToken(ctx, app, u, u, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.CreateGroup(ctx, app.ID, "g", "G", "", []string{"alice", "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SendPrivate(ctx, chat.SendInput{AppID: app.ID, SenderID: "bob", TargetID: "alice", Type: 1, Content: json.RawMessage(`{"content":"hi"}`)}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{g: g, svc: svc, alice: caller{identity: identity{AppID: app.ID, UserID: "alice"}, origin: "s1"}}
	ss, _ := svc.Sessions(ctx, app.ID, "alice")
	for _, s := range ss {
		f.sids = append(f.sids, s.SID)
	}
	for name := range events {
		f.eventSet = append(f.eventSet, name)
	}
	slices.Sort(f.eventSet)
	return f
}

// FuzzEvents feeds arbitrary payloads to every client event: none may panic,
// every refusal must be a client error (never an internal one), and a
// refused send stores nothing.
func FuzzEvents(f *testing.F) {
	for _, seed := range []string{
		`null`, `{}`, `[]`, `"x"`, `5`, `true`, `{"sid":5}`, `{"sid":"ffffffffffffffffffffffff"}`,
		`{"sid":"SID","limit":"20"}`, `{"sid":"SID","limit":-1}`, `{"sid":"SID","lastmsgId":"zz"}`,
		`{"sid":"SID","afterSeq":"1e99"}`, `{"sid":"SID","afterSeq":-5}`, `"SID"`,
		`{"targetId":"bob","messageType":1,"content":{"content":"hi"}}`,
		`{"targetId":"g","messageType":"1","content":"{\"content\":\"x\"}"}`,
		`{"targetId":1,"messageType":1,"content":{"content":"x"},"clientMsgId":"c"}`,
		`{"targetId":"bob","messageType":1,"content":[1,2]}`,
		`{"targetId":"bob","messageType":99999999999999999999,"content":{}}`,
		`{"targetId":"bob\u0000","messageType":1,"content":{}}`,
		`{"targetId":{"$ne":null},"messageType":1,"content":{}}`,
		`{"senderUserId":"bob","targetId":"g","messageType":1,"content":{"a":1}}`,
	} {
		for i := 0; i < 6; i++ {
			f.Add(uint8(i), []byte(seed))
		}
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, which uint8, arg []byte) {
		name := fx.eventSet[int(which)%len(fx.eventSet)]
		// Let inputs name alice's real sessions.
		for _, sid := range fx.sids {
			arg = bytes.ReplaceAll(arg, []byte("SID"), []byte(sid))
		}
		before := fx.svc.Stats().MessagesSent
		data, err := events[name](fx.g, context.Background(), fx.alice, json.RawMessage(arg))
		if err != nil {
			if _, status, msg := chat.Describe(err); status >= 500 || msg == "" {
				t.Fatalf("%s(%q): internal error for client input: %v", name, arg, err)
			}
			if fx.svc.Stats().MessagesSent != before {
				t.Fatalf("%s(%q) failed but stored a message", name, arg)
			}
			return
		}
		if _, err := json.Marshal(data); err != nil {
			t.Fatalf("%s(%q): reply does not encode: %v", name, arg, err)
		}
	})
}

func TestFlexInt(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{`5`, 5, true}, {`"5"`, 5, true}, {`null`, 0, true}, {`""`, 0, true}, {`"x"`, 0, false}, {`1.5`, 0, false},
	} {
		var f flexInt
		err := json.Unmarshal([]byte(c.in), &f)
		if (err == nil) != c.ok || (c.ok && int64(f) != c.want) {
			t.Errorf("flexInt(%s) = %d, %v", c.in, f, err)
		}
	}
}

// TestPushEncoderMatchesMarshal: splicing the sid into a shared encoding
// gives exactly the bytes of encoding each push on its own, even when the
// content holds the marker the splice looks for.
func TestPushEncoderMatchesMarshal(t *testing.T) {
	t.Parallel()
	msg := chat.Message{
		MsgID: "6b08fc75dc51166a05e6b831", ConversationType: 2, SenderUserID: "a", TargetID: "g", MessageType: 1,
		Content: json.RawMessage(`{"sendSession":{"sid":"","title":"x"},"text":"\"sendSession\":{\"sid\":\"<b>"}`),
		Date:    "10:00", SendUser: chat.UserRef{Name: "A"}, Seq: 7, Timestamp: 1,
	}
	refs := []chat.SessionRef{
		{SID: "6b08fc75701c630617e6b82f", Title: "Group", Avatar: "https://a/g.png"},
		{SID: "6b08fc75701c630617e6b830", Title: "Group", Avatar: "https://a/g.png"},
		{SID: "6b08fc75701c630617e6b831", Title: "Peer <&>", Avatar: ""},
	}
	var enc pushEncoder
	for _, own := range []bool{false, true} {
		for _, ref := range refs {
			muted := ref.Title == "Group" // one muted session title and one not
			b, at, err := encodeTemplate(msg, ref, own, muted)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Concat(b[:at], []byte(ref.SID), b[at:])
			if _, err := enc.prepare(msg, ref, own, muted); err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(pushEnvelope{Status: 1, Data: pushData{SendResult: chat.SendResult{Message: msg, SendSession: ref}, Own: own, Muted: muted}, Type: "user"})
			if err != nil {
				t.Fatal(err)
			}
			// The content is spliced as stored (as in history pages), where
			// encoding/json re-encodes it with HTML escapes.
			want = bytes.Replace(want, []byte(`\u003cb\u003e`), []byte(`<b>`), 1)
			if !bytes.Equal(got, want) {
				t.Fatalf("spliced push differs:\n got %s\nwant %s", got, want)
			}
			if own && !muted != bytes.HasSuffix(got, []byte(`"own":true},"type":"user"}`)) {
				t.Fatalf("own=%v push: %s", own, got)
			}
		}
	}
	if len(enc.templates) != 4 {
		t.Fatalf("%d templates for 2 distinct sessions, own and not", len(enc.templates))
	}
}

// TestDecodePayload covers both broker paths: the value itself from the
// in-process broker, and JSON from Redis/NATS.
func TestDecodePayload(t *testing.T) {
	t.Parallel()
	d := chat.Delivery{AppID: "a", Origin: "s1", Recipients: []chat.Recipient{{UserID: "u", Session: chat.SessionRef{SID: "x"}}}}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		payload any
		wantErr bool
	}{
		{"value", d, false},
		{"json", b, false},
		{"bad json", []byte("{"), true},
		{"other type", chat.ReadMark{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodePayload[chat.Delivery](tc.payload)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && (got.AppID != "a" || got.Origin != "s1" || len(got.Recipients) != 1 || got.Recipients[0].Session.SID != "x") {
				t.Fatalf("got %+v", got)
			}
		})
	}
}
