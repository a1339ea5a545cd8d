package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/chatd/chatd/internal/store"
)

// Receipt says the reader read a private conversation up to ReadSeq; the
// peer's devices are told (docs/socket-protocol.md, Read receipts).
type Receipt struct {
	AppID    string
	ReaderID string
	PeerID   string
	PeerSID  string // the peer's session of the conversation
	ReadSeq  int64
}

// ReceiptNotifier is a Notifier that also pushes read receipts.
type ReceiptNotifier interface {
	ReadReceipt(ctx context.Context, r Receipt)
}

// DefaultReceiptsMaxGroup is the largest group whose readers are listed by
// MessageReaders when Options.ReceiptsMaxGroup is zero.
const DefaultReceiptsMaxGroup = 100

// readReceipt tells the peer of a private conversation that userID read it
// up to seq (from read before). In groups up to Options.ReceiptsMaxGroup
// members the senders of what was read are told (group_receipts.go);
// larger groups' members ask for a message's readers (MessageReaders).
func (s *Service) readReceipt(ctx context.Context, conv store.Conversation, userID string, read, seq int64) {
	if conv.Type == store.Group {
		s.groupReceipts(ctx, conv, userID, read, seq)
		return
	}
	rn, ok := s.notifier.(ReceiptNotifier)
	if !ok || conv.Type != store.Private {
		return
	}
	ms, _, err := s.store.Members(ctx, conv.ID)
	if err != nil {
		return // the peer sees it in peerReadSeq after its next session-list
	}
	for _, m := range ms {
		if m.UserID != userID && !s.blockedBy(ctx, conv.AppID, m.UserID, userID) {
			rn.ReadReceipt(ctx, Receipt{AppID: conv.AppID, ReaderID: userID, PeerID: m.UserID, PeerSID: m.SID, ReadSeq: seq})
		}
	}
}

// withPeerReads sets how far the peer has read on each private session.
func (s *Service) withPeerReads(ctx context.Context, appID, userID string, rows []store.SessionRow, out []Session) error {
	peers, err := s.store.PeerReadSeqs(ctx, appID, userID)
	if err != nil {
		return fmt.Errorf("peer read seqs: %w", err)
	}
	var blocked []string
	if len(peers) > 0 {
		// A blocked peer's reads are not shown to the blocker, after a
		// reload either (docs/socket-protocol.md, Blocking).
		if blocked, err = s.userBlocks(ctx, appID, userID); err != nil {
			return fmt.Errorf("load blocks: %w", err)
		}
	}
	for i, r := range rows {
		if r.Type == store.Private && !slices.Contains(blocked, r.TargetID) {
			out[i].PeerReadSeq = peers[r.ConversationID]
		}
	}
	return nil
}

// Readers answers message-readers: how many of the members who may see a
// message (its sender excepted) have read it, and who, in groups up to
// Options.ReceiptsMaxGroup members.
type Readers struct {
	ReadCount   int          `json:"readCount"`
	MemberCount int          `json:"memberCount"`
	Readers     []ReaderInfo `json:"readers,omitempty"`
}

// ReaderInfo is one member who read the message, and how far they read.
type ReaderInfo struct {
	UserID  string `json:"userId"`
	ReadSeq int64  `json:"readSeq"`
}

// MessageReaders returns the readers of message msgID of the caller's
// session sid. The caller must be able to see the message.
func (s *Service) MessageReaders(ctx context.Context, appID, userID, sid, msgID string) (Readers, error) {
	conv, _, err := s.session(ctx, appID, userID, sid)
	if err != nil {
		return Readers{}, err
	}
	if !store.ValidID(msgID) {
		return Readers{}, fmt.Errorf("%w: msgId must be a message id", ErrInvalid)
	}
	m, err := s.store.MessageByID(ctx, conv.ID, msgID)
	if err == nil && conv.Type == store.Group && !s.visible(ctx, conv.ID, userID, m.Seq) {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return Readers{}, fmt.Errorf("%w: message %s in this conversation", ErrNotFound, msgID)
	}
	if err != nil {
		return Readers{}, fmt.Errorf("load message: %w", err)
	}
	rs, audience, err := s.store.MessageReaders(ctx, conv.ID, m.Seq, m.SenderID)
	if err != nil {
		return Readers{}, fmt.Errorf("message readers: %w", err)
	}
	out := Readers{ReadCount: len(rs), MemberCount: audience}
	if audience <= s.receiptsMaxGroup {
		out.Readers = make([]ReaderInfo, len(rs))
		for i, r := range rs {
			out.Readers[i] = ReaderInfo{UserID: r.UserID, ReadSeq: r.ReadSeq}
		}
	}
	return out, nil
}

// Audience returns the members of the caller's session sid other than the
// caller (in a private conversation, not a peer who blocked the caller),
// each with their own session, and the conversation's size: whom a typing
// indicator reaches.
func (s *Service) Audience(ctx context.Context, appID, userID, sid string) ([]Recipient, int, error) {
	conv, _, err := s.session(ctx, appID, userID, sid)
	if err != nil {
		return nil, 0, err
	}
	ms, _, err := s.store.Members(ctx, conv.ID)
	if err != nil {
		return nil, 0, fmt.Errorf("load members: %w", err)
	}
	out := make([]Recipient, 0, len(ms))
	for _, m := range ms {
		if m.UserID == userID {
			continue
		}
		// A peer who blocked the caller is not told (groups are unaffected
		// by blocks, docs/socket-protocol.md, Blocking).
		if conv.Type == store.Private && s.blockedBy(ctx, appID, m.UserID, userID) {
			continue
		}
		out = append(out, Recipient{UserID: m.UserID, Session: SessionRef{SID: m.SID}})
	}
	return out, len(ms), nil
}

// SharedWith returns those of userIDs that share a conversation with
// userID: the only users whose presence they may see.
func (s *Service) SharedWith(ctx context.Context, appID, userID string, userIDs []string) ([]string, error) {
	if err := checkUserID("userId", userID); err != nil {
		return nil, err
	}
	if err := s.checkUserIDs(userIDs); err != nil {
		return nil, err
	}
	out, err := s.store.SharedWith(ctx, appID, userID, dedupe(userIDs))
	if err != nil {
		return nil, fmt.Errorf("shared with: %w", err)
	}
	return out, nil
}
