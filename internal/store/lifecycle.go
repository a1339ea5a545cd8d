package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// The lifecycle of a sent message: recall, edit, reactions, replies,
// mentions and delete-for-me (docs/socket-protocol.md, "Message updates").
//
// The change cursor: every change to an existing message takes the next
// value of its conversation's change counter (conversations.change_seq) as
// the message's Version, in the change's own transaction, under the
// conversation's write lock. Versions therefore commit in order, and a
// client that has applied every change up to version V catches up with
// Changes(V). A message never changed has Version 0. Hiding messages for one
// user (delete-for-me, clear) takes a version from the same counter.

// ErrUnchanged is returned by an UpdateMessage callback that finds nothing to
// change (the same change applied twice); UpdateMessage then writes nothing
// and returns the current message with an error wrapping ErrUnchanged.
var ErrUnchanged = errors.New("unchanged")

// MentionAll is the user id a mentions row carries for "@all".
const MentionAll = ""

// MessageMeta is what a message gains after it is sent, plus its mentions;
// stored as one JSON column that is NULL for a plain message, so plain
// messages cost nothing more to store or read.
type MessageMeta struct {
	EditedAt   int64      `json:"editedAt,omitempty"` // ms since epoch
	EditCount  int        `json:"editCount,omitempty"`
	RecalledBy string     `json:"recalledBy,omitempty"` // user id, or "" with RecalledAt set: the app
	RecalledAt int64      `json:"recalledAt,omitempty"` // ms since epoch; non-zero: recalled
	Mentions   []string   `json:"mentions,omitempty"`
	MentionAll bool       `json:"mentionAll,omitempty"`
	Reactions  []Reaction `json:"reactions,omitempty"`
}

// Reaction is the aggregate of one emoji on a message: how many users chose
// it and the first few of them (the reactions table holds them all).
type Reaction struct {
	Emoji string   `json:"emoji"`
	Count int      `json:"count"`
	Users []string `json:"users"`
}

// ReactionSample is how many user ids a Reaction keeps.
const ReactionSample = 10

// Recalled reports whether the message was recalled.
func (m MessageMeta) Recalled() bool { return m.RecalledAt != 0 }

// IsZero reports whether there is nothing to store.
func (m MessageMeta) IsZero() bool {
	return m.EditedAt == 0 && m.EditCount == 0 && m.RecalledBy == "" && m.RecalledAt == 0 &&
		len(m.Mentions) == 0 && !m.MentionAll && len(m.Reactions) == 0
}

// EncodeMeta returns the stored form of m: nil (NULL) when m is zero.
func EncodeMeta(m MessageMeta) (*string, error) {
	if m.IsZero() {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// DecodeMeta reads the stored form; NULL or empty is the zero meta.
func DecodeMeta(s *string) (MessageMeta, error) {
	var m MessageMeta
	if s == nil || *s == "" {
		return m, nil
	}
	err := json.Unmarshal([]byte(*s), &m)
	return m, err
}

// RecalledContent is what a recalled message's content becomes in the
// store: the original is deleted, and node-chat renderers that read
// content.content find an empty string.
var RecalledContent = json.RawMessage(`{"content":""}`)

// Hidden is a range of seqs one user hid from themselves (delete-for-me of
// one message: FromSeq == ToSeq; clear: 1..the last seq at the time).
type Hidden struct {
	FromSeq, ToSeq int64
	Version        int64
	At             time.Time
}

// Covers reports whether the range holds seq.
func (h Hidden) Covers(seq int64) bool { return h.FromSeq <= seq && seq <= h.ToSeq }

// MessageTx is what an UpdateMessage callback may do besides changing the
// message: work on the per-user rows that belong to it, in the same
// transaction.
type MessageTx interface {
	// SetReaction adds (on) or removes userID's emoji reaction and reports
	// whether that changed anything.
	SetReaction(ctx context.Context, userID, emoji string, on bool) (changed bool, err error)
	// Reactions returns every reaction on the message, aggregated by emoji
	// in the order each emoji was first chosen, with up to ReactionSample
	// users each.
	Reactions(ctx context.Context) ([]Reaction, error)
	// Forget deletes the message's reactions and mentions (on recall).
	Forget(ctx context.Context) error
}

// Lifecycle is the part of the Store that changes messages after they are
// sent. Every method is implemented by every backend and covered by
// storetest.
type Lifecycle interface {
	// UpdateMessage loads the message msgID of the conversation
	// (ErrNotFound if absent) and calls fn with it in one write
	// transaction. When fn returns nil, the message's Content, Type and
	// Meta as fn left them are stored with the conversation's next change
	// version, and the stored message is returned. When fn returns an
	// error nothing is written and the error is returned (wrapping
	// ErrUnchanged, with the current message, when fn found nothing to do).
	UpdateMessage(ctx context.Context, conversationID, msgID string, fn func(tx MessageTx, m *Message) error) (Message, error)
	// Changes returns up to limit messages of the conversation that
	// userID may see (see Visibility) whose Version is greater than
	// afterVersion, in Version order.
	Changes(ctx context.Context, conversationID, userID string, afterVersion int64, limit int) ([]Message, error)
	// MessagesBySeq returns the conversation's messages with these seqs
	// that userID may see, in seq order: the originals of quoted replies.
	MessagesBySeq(ctx context.Context, conversationID, userID string, seqs []int64) ([]Message, error)
	// Reacted returns, for the messages with these seqs, the emoji userID
	// reacted with.
	Reacted(ctx context.Context, conversationID, userID string, seqs []int64) (map[int64][]string, error)
	// Hide hides fromSeq..toSeq (toSeq < 0: up to the conversation's last
	// seq, which also becomes the user's read mark) from userID, with the
	// conversation's next change version. ErrNotMember if userID is not a
	// member.
	Hide(ctx context.Context, conversationID, userID string, fromSeq, toSeq int64) (Hidden, error)
	// HiddenRanges returns userID's hidden ranges in the conversation with
	// Version greater than afterVersion, in Version order.
	HiddenRanges(ctx context.Context, conversationID, userID string, afterVersion int64) ([]Hidden, error)
	// MessageConversation returns the id of the app's conversation that
	// holds msgID; ErrNotFound if none.
	MessageConversation(ctx context.Context, appID, msgID string) (string, error)
}

// SentMeta is the Meta a new message is stored with: its mentions.
func (n NewMessage) SentMeta() MessageMeta {
	return MessageMeta{Mentions: n.Mentions, MentionAll: n.MentionAll}
}

// MentionRows returns the user ids of the mentions rows of a sent message:
// each mentioned user once, and MentionAll for @all.
func MentionRows(m Message) []string {
	var out []string
	seen := make(map[string]bool, len(m.Meta.Mentions))
	for _, u := range m.Meta.Mentions {
		if u != MentionAll && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	if m.Meta.MentionAll {
		out = append(out, MentionAll)
	}
	return out
}

// NextReactions returns the aggregate after one change of userID's emoji
// reaction (on: added, which took effect), computed from the aggregate
// before it, so that a reaction needs no re-read of its message's rows. A
// new row is the newest (its created_at is now), so an addition goes last;
// a removal is exact unless it takes away an emoji's first user (its place
// may move) or a sampled user of an emoji with more users than its sample
// (the next user must come in): then ok is false and the caller reads the
// rows (AggregateReactions). before is not modified.
func NextReactions(before []Reaction, userID, emoji string, on bool) (after []Reaction, ok bool) {
	i := slices.IndexFunc(before, func(r Reaction) bool { return r.Emoji == emoji })
	after = slices.Clone(before)
	if on {
		if i < 0 {
			return append(after, Reaction{Emoji: emoji, Count: 1, Users: []string{userID}}), true
		}
		r := &after[i]
		if r.Count == len(r.Users) && len(r.Users) < ReactionSample {
			r.Users = append(slices.Clip(r.Users), userID)
		} else if len(r.Users) < ReactionSample {
			return nil, false // a sample short of its count: not an aggregate this code wrote
		}
		r.Count++
		return after, true
	}
	if i < 0 {
		return nil, false
	}
	r := &after[i]
	j := slices.Index(r.Users, userID)
	switch {
	case r.Count == 1 && j == 0:
		return slices.Delete(after, i, i+1), true
	case j < 0 && r.Count > len(r.Users):
		r.Count-- // a user beyond the sample
		return after, true
	case j > 0 && r.Count == len(r.Users):
		r.Users = slices.Delete(slices.Clone(r.Users), j, j+1)
		r.Count--
		return after, true
	}
	return nil, false
}

// AggregateReactions folds reaction rows (emoji, user), in the order they
// were made, into per-emoji aggregates in the order each emoji first
// appeared.
func AggregateReactions(rows [][2]string) []Reaction {
	var out []Reaction
	idx := map[string]int{}
	for _, r := range rows {
		i, ok := idx[r[0]]
		if !ok {
			i = len(out)
			idx[r[0]] = i
			out = append(out, Reaction{Emoji: r[0], Users: []string{}})
		}
		out[i].Count++
		if len(out[i].Users) < ReactionSample {
			out[i].Users = append(out[i].Users, r[1])
		}
	}
	return out
}
