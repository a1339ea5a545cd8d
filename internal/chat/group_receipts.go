package chat

import (
	"context"
	"time"

	"github.com/chatd/chatd/internal/store"
)

// GroupReceipt says a member of a group read it up to ReadSeq, past a
// message of SenderID, whose devices are told (docs/socket-protocol.md,
// Read receipts). The gateway batches them per sender device and
// conversation.
type GroupReceipt struct {
	AppID     string
	SenderID  string
	SenderSID string // the sender's session of the group
	ReaderID  string
	ReadSeq   int64
}

// GroupReceiptNotifier is a Notifier that also pushes group receipts.
type GroupReceiptNotifier interface {
	GroupReceipt(ctx context.Context, r GroupReceipt)
}

// maxReceiptScan bounds the newly read messages whose senders are told:
// the newest ones (a member catching up on a long backlog tells the
// senders of its end).
const maxReceiptScan = 50

// groupReceipts tells the senders of the messages userID just read (seqs
// read+1..seq) in a group of at most Options.ReceiptsMaxGroup members. A
// failure tells nobody: message-readers still answers.
func (s *Service) groupReceipts(ctx context.Context, conv store.Conversation, userID string, read, seq int64) {
	rn, ok := s.notifier.(GroupReceiptNotifier)
	if !ok || seq <= read {
		return
	}
	if n, err := s.groupSizes.get(ctx, s.now(), conv.ID, func(ctx context.Context) (int, error) {
		info, err := s.store.GroupInfo(ctx, conv.AppID, conv.Key)
		return info.MemberCount, err
	}); err != nil || n > s.receiptsMaxGroup {
		return
	}
	msgs, err := s.store.History(ctx, conv.ID, userID, seq+1, int(min(seq-read, maxReceiptScan)))
	if err != nil {
		return
	}
	told := map[string]bool{userID: true}
	for _, m := range msgs {
		if m.Seq <= read || told[m.SenderID] || m.Type == store.TypeNotice {
			continue
		}
		told[m.SenderID] = true
		mem, err := s.store.Member(ctx, conv.ID, m.SenderID)
		if err != nil {
			continue // the sender left: nobody to tell
		}
		rn.GroupReceipt(ctx, GroupReceipt{AppID: conv.AppID, SenderID: m.SenderID, SenderSID: mem.SID, ReaderID: userID, ReadSeq: seq})
	}
}

// groupSizeTTL bounds how long a group's member count is trusted to decide
// whether its senders get receipts: a group that just grew past the limit
// may send receipts a few more seconds, which is harmless, and a group of
// readers does not count its members once per read.
const groupSizeTTL = 5 * time.Second
