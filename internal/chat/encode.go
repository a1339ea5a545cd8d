package chat

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendMessages appends msgs as a JSON array to dst, as encoding/json
// would encode them, but without reflection and with each message's content
// spliced in as stored: content is checked to be a JSON object when it is
// sent or edited (checkSend, Edit), so decoding and re-encoding it (which
// json.Marshal does to every json.RawMessage) only costs time on the
// history path (docs/benchmarks.md, History).
func AppendMessages(dst []byte, msgs []Message) []byte {
	if msgs == nil {
		return append(dst, "null"...)
	}
	// Grown once to about the answer's size: appending a 2.4 MB page to an
	// empty slice reallocated it a dozen times (1.25x growth), 12 MB of
	// garbage per answer (docs/soak.md, Under attack).
	if hint := messagesSizeHint(msgs); cap(dst)-len(dst) < hint {
		dst = append(make([]byte, 0, len(dst)+hint), dst...)
	}
	dst = append(dst, '[')
	for i := range msgs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendMessage(dst, &msgs[i])
	}
	return append(dst, ']')
}

// messagesSizeHint is about the encoded size of msgs: the stored content
// and strings, and the field names and numbers (under 400 bytes).
func messagesSizeHint(msgs []Message) int {
	n := 2
	for i := range msgs {
		m := &msgs[i]
		n += 400 + len(m.Content) + len(m.MsgID) + len(m.SenderUserID) + len(m.TargetID) + len(m.Date) +
			len(m.SendUser.Name) + len(m.SendUser.AvatarURI) + len(m.ClientMsgID) + len(m.RecalledBy) + len(m.ReplyTo)
	}
	return n
}

// AppendSendResult appends r as encoding/json would encode it (the
// message's fields, then sendSession), content spliced as AppendMessages
// does: the ack of every send (docs/benchmarks.md, one-to-one CPU).
func AppendSendResult(dst []byte, r *SendResult) []byte {
	dst = appendMessage(dst, &r.Message)
	dst = append(dst[:len(dst)-1], `,"sendSession":{"sid":`...)
	dst = appendString(dst, r.SendSession.SID)
	dst = append(dst, `,"title":`...)
	dst = appendString(dst, r.SendSession.Title)
	dst = append(dst, `,"avatar":`...)
	dst = appendString(dst, r.SendSession.Avatar)
	return append(dst, "}}"...)
}

func appendMessage(dst []byte, m *Message) []byte {
	dst = append(dst, `{"msgId":`...)
	dst = appendString(dst, m.MsgID)
	dst = append(dst, `,"content":`...)
	dst = appendRaw(dst, m.Content)
	dst = append(dst, `,"conversationType":`...)
	dst = strconv.AppendInt(dst, int64(m.ConversationType), 10)
	dst = append(dst, `,"senderUserId":`...)
	dst = appendString(dst, m.SenderUserID)
	dst = append(dst, `,"targetId":`...)
	dst = appendString(dst, m.TargetID)
	dst = append(dst, `,"messageType":`...)
	dst = strconv.AppendInt(dst, int64(m.MessageType), 10)
	dst = append(dst, `,"date":`...)
	dst = appendString(dst, m.Date)
	dst = append(dst, `,"sendUser":{"name":`...)
	dst = appendString(dst, m.SendUser.Name)
	dst = append(dst, `,"avatarUri":`...)
	dst = appendString(dst, m.SendUser.AvatarURI)
	dst = append(dst, `},"seq":`...)
	dst = strconv.AppendInt(dst, m.Seq, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, m.Timestamp, 10)
	if m.ClientMsgID != "" {
		dst = append(dst, `,"clientMsgId":`...)
		dst = appendString(dst, m.ClientMsgID)
	}
	// The lifecycle's fields, omitted when empty like encoding/json's
	// omitempty; the rare nested ones go through encoding/json.
	dst = appendIntField(dst, `,"version":`, m.Version)
	dst = appendIntField(dst, `,"editedAt":`, m.EditedAt)
	dst = appendIntField(dst, `,"editCount":`, int64(m.EditCount))
	if m.Recalled {
		dst = append(dst, `,"recalled":true`...)
	}
	if m.RecalledBy != "" {
		dst = append(dst, `,"recalledBy":`...)
		dst = appendString(dst, m.RecalledBy)
	}
	dst = appendIntField(dst, `,"recalledAt":`, m.RecalledAt)
	if m.ReplyTo != "" {
		dst = append(dst, `,"replyTo":`...)
		dst = appendString(dst, m.ReplyTo)
	}
	if m.Quote != nil {
		dst = appendJSONField(dst, `,"quote":`, m.Quote)
	}
	if len(m.Mentions) > 0 {
		dst = appendJSONField(dst, `,"mentions":`, m.Mentions)
	}
	if m.MentionAll {
		dst = append(dst, `,"mentionAll":true`...)
	}
	if len(m.Reactions) > 0 {
		dst = appendJSONField(dst, `,"reactions":`, m.Reactions)
	}
	return append(dst, '}')
}

func appendIntField(dst []byte, name string, v int64) []byte {
	if v == 0 {
		return dst
	}
	return strconv.AppendInt(append(dst, name...), v, 10)
}

func appendJSONField(dst []byte, name string, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // plain structs of strings and numbers: cannot happen
		return dst
	}
	return append(append(dst, name...), b...)
}

// appendRaw appends stored content: a JSON object (see AppendMessages),
// or null when empty, as encoding/json writes an empty json.RawMessage.
func appendRaw(dst []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// appendString appends s as a JSON string with encoding/json's escaping
// (HTML characters, U+2028 and U+2029 escaped; invalid UTF-8 as U+FFFD).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
