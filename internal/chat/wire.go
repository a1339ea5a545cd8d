package chat

import (
	"encoding/json"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// Wire shapes, identical to node-chat's (README.md, HTTP API; docs/socket-protocol.md) plus chatd's additions
// (seq, timestamp, clientMsgId, lastSeq, readSeq). Both the HTTP API and the
// socket gateway send exactly these.

// UserRef is the sendUser of a message.
type UserRef struct {
	Name      string `json:"name"`
	AvatarURI string `json:"avatarUri"`
}

// Message is one message as clients see it.
type Message struct {
	MsgID            string          `json:"msgId"`
	Content          json.RawMessage `json:"content"`
	ConversationType int             `json:"conversationType"`
	SenderUserID     string          `json:"senderUserId"`
	TargetID         string          `json:"targetId"`
	MessageType      int             `json:"messageType"`
	Date             string          `json:"date"`
	SendUser         UserRef         `json:"sendUser"`
	Seq              int64           `json:"seq"`
	Timestamp        int64           `json:"timestamp"`
	ClientMsgID      string          `json:"clientMsgId,omitempty"`

	// The message's lifecycle (docs/socket-protocol.md, "Message
	// updates"); absent on a message never replied to, mentioned with,
	// changed or reacted to.
	Version    int64      `json:"version,omitempty"`
	EditedAt   int64      `json:"editedAt,omitempty"`
	EditCount  int        `json:"editCount,omitempty"`
	Recalled   bool       `json:"recalled,omitempty"`
	RecalledBy string     `json:"recalledBy,omitempty"` // absent when the app recalled it
	RecalledAt int64      `json:"recalledAt,omitempty"`
	ReplyTo    string     `json:"replyTo,omitempty"` // msgId of the quoted message
	Quote      *Quote     `json:"quote,omitempty"`
	Mentions   []string   `json:"mentions,omitempty"`
	MentionAll bool       `json:"mentionAll,omitempty"`
	Reactions  []Reaction `json:"reactions,omitempty"`
}

// Quote is what a reply shows of the message it answers.
type Quote struct {
	MsgID        string  `json:"msgId"`
	Seq          int64   `json:"seq"`
	SenderUserID string  `json:"senderUserId"`
	SendUser     UserRef `json:"sendUser"`
	MessageType  int     `json:"messageType"`
	Excerpt      string  `json:"excerpt"` // the start of its text; "" when recalled or not text
	Recalled     bool    `json:"recalled,omitempty"`
}

// Reaction is one emoji's reactions to a message: how many, the first few
// users, and whether the receiving user is one of them.
type Reaction struct {
	Emoji   string   `json:"emoji"`
	Count   int      `json:"count"`
	UserIDs []string `json:"userIds"`
	Me      bool     `json:"me"`
}

// SessionRef is the sendSession of a SendResult: the session of whoever
// receives the object.
type SessionRef struct {
	SID    string `json:"sid"`
	Title  string `json:"title"`
	Avatar string `json:"avatar"`
}

// SendResult is a sent message with the receiver's own session.
type SendResult struct {
	Message
	SendSession SessionRef `json:"sendSession"`
}

// LastMsg summarises a session's last message. Content is node-chat's: the
// inner text, a string apps render as is (see PreviewText); Body is the whole
// content object, a chatd addition.
type LastMsg struct {
	Content     string          `json:"content"`
	Body        json.RawMessage `json:"body"`
	MessageType int             `json:"messageType"`
	Date        string          `json:"date"`
	MsgID       string          `json:"msgId"`
	Timestamp   int64           `json:"timestamp"`
}

// Session is one entry of a user's session list.
type Session struct {
	SID              string   `json:"sid"`
	ConversationType int      `json:"conversationType"`
	TargetID         string   `json:"targetId"`
	Unread           int64    `json:"unread"`
	Title            string   `json:"title"`
	Avatar           string   `json:"avatar"`
	LastMsg          *LastMsg `json:"lastMsg,omitempty"`
	LastSeq          int64    `json:"lastSeq"`
	ReadSeq          int64    `json:"readSeq"`
	MentionedUnread  int64    `json:"mentionedUnread"`       // unread messages that mention the user or everyone
	ChangeVersion    int64    `json:"changeVersion"`         // the conversation's change cursor (sync-changes)
	PeerReadSeq      int64    `json:"peerReadSeq,omitempty"` // private sessions: how far the peer has read
	Pinned           bool     `json:"pinned"`                // the user's own settings (settings.go)
	PinnedAt         int64    `json:"pinnedAt,omitempty"`
	Muted            bool     `json:"muted"`
	Draft            string   `json:"draft"`
}

// displayDate is node-chat's date string: HH:mm for a message from today,
// otherwise YY/MM/DD, in the server's time zone.
func displayDate(t, now time.Time) string {
	t = t.In(now.Location())
	y1, m1, d1 := t.Date()
	y2, m2, d2 := now.Date()
	if y1 == y2 && m1 == m2 && d1 == d2 {
		return t.Format("15:04")
	}
	return t.Format("06/01/02")
}

// targetOf is the targetId of a message: the group for a group message, the
// other party of the pair for a private one.
func targetOf(c store.Conversation, senderID string) string {
	if c.Type == store.Group {
		return c.Key
	}
	a, b := splitPrivateKey(c.Key)
	if a == senderID {
		return b
	}
	return a
}

func splitPrivateKey(key string) (string, string) {
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return key[:i], key[i+1:]
		}
	}
	return key, key
}

func (s *Service) wireMessage(c store.Conversation, m store.Message, now time.Time) Message {
	return Message{
		MsgID:            m.ID,
		Content:          m.Content,
		ConversationType: c.Type,
		SenderUserID:     m.SenderID,
		TargetID:         targetOf(c, m.SenderID),
		MessageType:      m.Type,
		Date:             displayDate(m.CreatedAt, now),
		SendUser:         UserRef{Name: m.SenderName, AvatarURI: m.SenderAvatar},
		Seq:              m.Seq,
		Timestamp:        m.CreatedAt.UnixMilli(),
		ClientMsgID:      m.ClientMsgID,
		Version:          m.Version,
		EditedAt:         m.Meta.EditedAt,
		EditCount:        m.Meta.EditCount,
		Recalled:         m.Meta.Recalled(),
		RecalledBy:       m.Meta.RecalledBy,
		RecalledAt:       m.Meta.RecalledAt,
		Mentions:         m.Meta.Mentions,
		MentionAll:       m.Meta.MentionAll,
		Reactions:        wireReactions(m.Meta.Reactions),
	}
}

func wireReactions(rs []store.Reaction) []Reaction {
	if len(rs) == 0 {
		return nil
	}
	out := make([]Reaction, len(rs))
	for i, r := range rs {
		out[i] = Reaction{Emoji: r.Emoji, Count: r.Count, UserIDs: r.Users}
	}
	return out
}

// PreviewText is what node-chat shows as a session's last message: the
// content's inner "content" field when it is a string (the text of a text
// message, and whatever an app put there for other types), else "".
func PreviewText(content json.RawMessage) string {
	var c struct {
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(content, &c) != nil || len(c.Content) == 0 || c.Content[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(c.Content, &s) != nil {
		return ""
	}
	return s
}

func wireSession(s store.SessionRow, now time.Time) Session {
	out := Session{
		SID:              s.SID,
		ConversationType: s.Type,
		TargetID:         s.TargetID,
		Unread:           s.Unread(),
		Title:            s.Title,
		Avatar:           s.Avatar,
		LastSeq:          s.LastSeq,
		ReadSeq:          s.ReadSeq,
		MentionedUnread:  s.MentionedUnread,
		ChangeVersion:    s.ChangeSeq,
	}
	if m := s.LastMsg; m != nil && !s.LastHidden {
		out.LastMsg = &LastMsg{
			Content:     PreviewText(m.Content),
			Body:        m.Content,
			MessageType: m.Type,
			Date:        displayDate(m.CreatedAt, now),
			MsgID:       m.ID,
			Timestamp:   m.CreatedAt.UnixMilli(),
		}
	}
	return out
}
