// Package groupcommit plans a group commit: the messages that concurrent
// Send calls queued, stored together in one transaction. It decides, for
// every message of a batch, whether it is refused (the sender is not a
// member), a duplicate (its client id was stored before, or earlier in the
// batch) or new, and which seq each new message gets; the backends keep only
// their SQL: reading what the plan asks about, allocating the seqs, inserting
// and advancing the senders' read marks (docs/architecture.md, Life of a
// message).
//
// A plan has no SQL and no I/O of its own: what it needs to know about the
// database it asks through Lookup, so it is the same for every backend and
// is tested on its own.
package groupcommit

import (
	"fmt"
	"slices"

	"github.com/chatd/chatd/internal/store"
)

// Kind is what becomes of one message of a batch.
type Kind uint8

const (
	New       Kind = iota // stored with the next seq of its conversation
	Refused               // the sender may not send there (store.ErrNotMember)
	Duplicate             // its client id was stored before: answered with the original
	Repeat                // repeats the client id of an earlier message of the batch
	Skipped               // already answered by the caller (say, its context ended)
)

// Outcome is the plan for one message.
type Outcome struct {
	Kind   Kind
	Offset int64         // New: its position in its conversation's allocation, from 1
	Of     int           // Repeat: the index of the message it repeats
	Msg    store.Message // New (after Assign) or Duplicate: the message to answer with
}

// Lookup is what a plan asks about the database. Both functions are called
// inside the batch's transaction, after the conversations are locked, at
// most once per (conversation, sender) and per client id.
type Lookup struct {
	// Member reports whether sender may send to conv: the conversation
	// exists and has them as a member.
	Member func(conv, sender string) (bool, error)
	// Original returns the message stored earlier by sender in conv with
	// that client id, if any, with its MembersVersion set.
	Original func(conv, sender, clientID string) (store.Message, bool, error)
	// DeferLone leaves unchecked the membership of a conversation's only
	// sender when none of their messages has a client id: the backend
	// checks it when allocating the seqs (Alloc.Lone) and calls Refuse if
	// it fails. That saves a query on the common path.
	DeferLone bool
}

// Alloc is the block of seqs one conversation needs.
type Alloc struct {
	Conv string
	N    int64  // new messages
	At   int64  // the latest of their times, Unix milliseconds (the conversation's last_msg_at)
	Lone string // the sender whose membership is still to check (Lookup.DeferLone), or ""
}

// ReadMark advances a sender's read_seq to their last new message of a
// conversation: one's own messages are never unread.
type ReadMark struct {
	Conv, User string
	Seq        int64
}

// Plan is the decision for one batch.
type Plan struct {
	batch    []store.NewMessage
	Outcomes []Outcome // one per message of the batch
	Allocs   []Alloc   // conversations with new messages, in order of first appearance
	assigned map[string]bool
}

// Make plans batch. skip reports the messages the caller has answered
// already (nil: none). An error from lk means the batch cannot be planned:
// the caller rolls back.
func Make(batch []store.NewMessage, skip func(i int) bool, lk Lookup) (*Plan, error) {
	p := &Plan{batch: batch, Outcomes: make([]Outcome, len(batch))}
	type group struct {
		idx   []int
		lone  string // the only sender while no message has a client id
		mixed bool
	}
	var order []string
	groups := make(map[string]*group, 1)
	for i, m := range batch {
		if skip != nil && skip(i) {
			p.Outcomes[i].Kind = Skipped
			continue
		}
		g := groups[m.ConversationID]
		if g == nil {
			g = &group{lone: m.SenderID}
			groups[m.ConversationID] = g
			order = append(order, m.ConversationID)
		}
		if m.SenderID != g.lone || m.ClientMsgID != "" {
			g.mixed = true
		}
		g.idx = append(g.idx, i)
	}

	type key struct{ conv, sender, client string }
	member := make(map[[2]string]bool, 2)
	first := make(map[key]int)
	original := make(map[key]*store.Message)
	for _, conv := range order {
		g := groups[conv]
		deferred := lk.DeferLone && !g.mixed
		var a *Alloc
		for _, i := range g.idx {
			m := batch[i]
			if !deferred {
				mk := [2]string{conv, m.SenderID}
				ok, checked := member[mk]
				if !checked {
					var err error
					if ok, err = lk.Member(conv, m.SenderID); err != nil {
						return nil, fmt.Errorf("check member: %w", err)
					}
					member[mk] = ok
				}
				if !ok {
					p.Outcomes[i].Kind = Refused
					continue
				}
			}
			if m.ClientMsgID != "" {
				k := key{conv, m.SenderID, m.ClientMsgID}
				if j, ok := first[k]; ok {
					p.Outcomes[i] = Outcome{Kind: Repeat, Of: j}
					continue
				}
				first[k] = i
				orig, ok := original[k]
				if !ok {
					o, found, err := lk.Original(conv, m.SenderID, m.ClientMsgID)
					if err != nil {
						return nil, fmt.Errorf("check client msg id: %w", err)
					}
					if found {
						orig = &o
					}
					original[k] = orig
				}
				if orig != nil {
					p.Outcomes[i] = Outcome{Kind: Duplicate, Msg: *orig}
					continue
				}
			}
			if a == nil {
				p.Allocs = append(p.Allocs, Alloc{Conv: conv})
				a = &p.Allocs[len(p.Allocs)-1]
				if deferred {
					a.Lone = g.lone
				}
			}
			a.N++
			a.At = max(a.At, store.UnixMS(m.At))
			p.Outcomes[i] = Outcome{Kind: New, Offset: a.N}
		}
	}
	return p, nil
}

// Refuse refuses every new message of conv: the membership check deferred
// to the allocation (Alloc.Lone) failed. Its allocation is dropped.
func (p *Plan) Refuse(conv string) {
	for i, m := range p.batch {
		if m.ConversationID == conv && p.Outcomes[i].Kind == New {
			p.Outcomes[i] = Outcome{Kind: Refused}
		}
	}
	p.Allocs = slices.DeleteFunc(p.Allocs, func(a Alloc) bool { return a.Conv == conv })
}

// Assign numbers conv's new messages after lastSeq, the conversation's last
// seq before this batch, and builds them with their ids, times and the
// members version read under the conversation's lock.
func (p *Plan) Assign(conv string, lastSeq, membersVersion int64) {
	if p.assigned == nil {
		p.assigned = make(map[string]bool, len(p.Allocs))
	}
	p.assigned[conv] = true
	for i, m := range p.batch {
		o := &p.Outcomes[i]
		if m.ConversationID != conv || o.Kind != New {
			continue
		}
		o.Msg = store.Message{
			ID:             store.NewID(),
			ConversationID: conv,
			Seq:            lastSeq + o.Offset,
			SenderID:       m.SenderID,
			Type:           m.Type,
			Content:        m.Content,
			ClientMsgID:    m.ClientMsgID,
			CreatedAt:      store.FromUnixMS(store.UnixMS(m.At)),
			MembersVersion: membersVersion,
			ReplySeq:       m.ReplySeq,
			Meta:           m.SentMeta(),
		}
	}
}

// Inserts returns the new messages, in batch order. Call it after Assign has
// been called for every allocation.
func (p *Plan) Inserts() []store.Message {
	var out []store.Message
	for i := range p.Outcomes {
		if o := &p.Outcomes[i]; o.Kind == New {
			out = append(out, o.Msg)
		}
	}
	return out
}

// ReadMarks returns each sender's last new seq per conversation, in order
// of first appearance.
func (p *Plan) ReadMarks() []ReadMark {
	var out []ReadMark
	at := make(map[[2]string]int)
	for i := range p.Outcomes {
		o := &p.Outcomes[i]
		if o.Kind != New {
			continue
		}
		k := [2]string{o.Msg.ConversationID, o.Msg.SenderID}
		if j, ok := at[k]; ok {
			out[j].Seq = max(out[j].Seq, o.Msg.Seq)
			continue
		}
		at[k] = len(out)
		out = append(out, ReadMark{Conv: k[0], User: k[1], Seq: o.Msg.Seq})
	}
	return out
}

// Result is the answer to one message of the batch.
type Result struct {
	Msg     store.Message
	Dup     bool
	Refused bool // store.ErrNotMember
}

// Results returns the answers, one per message of the batch, once every
// allocation is assigned; Skipped messages get a zero Result. It panics if
// an allocation was never assigned: answering with seq 0 would corrupt the
// client's view.
func (p *Plan) Results() []Result {
	for _, a := range p.Allocs {
		if !p.assigned[a.Conv] {
			panic("groupcommit: allocation of " + a.Conv + " not assigned")
		}
	}
	out := make([]Result, len(p.Outcomes))
	for i, o := range p.Outcomes {
		switch o.Kind {
		case New:
			out[i] = Result{Msg: o.Msg}
		case Duplicate:
			out[i] = Result{Msg: o.Msg, Dup: true}
		case Refused:
			out[i] = Result{Refused: true}
		}
	}
	for i, o := range p.Outcomes {
		if o.Kind == Repeat {
			out[i] = Result{Msg: out[o.Of].Msg, Dup: true}
		}
	}
	return out
}

// Convs returns the distinct conversations of the batch's unanswered
// messages, sorted: every transaction locks them in this order, so that
// concurrent batches cannot deadlock.
func Convs(batch []store.NewMessage, skip func(i int) bool) []string {
	var out []string
	for i, m := range batch {
		if skip == nil || !skip(i) {
			out = append(out, m.ConversationID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Redo says how to answer a batch whose grouped transaction failed: when
// the database refused a statement (fault, the batch's own content may be
// to blame) and the batch held more than one message, each is stored again
// on its own, so that one bad message cannot fail the others; otherwise
// (the connection broke, the database is down) every message fails.
func Redo(batchLen int, fault bool) bool { return fault && batchLen > 1 }

// Events returns the webhook outbox events of the batch's new messages
// (store.NewMessage.Event), to be written in the batch's transaction.
func (p *Plan) Events() []*store.OutboxEvent {
	var out []*store.OutboxEvent
	for i := range p.Outcomes {
		if o := &p.Outcomes[i]; o.Kind == New && p.batch[i].Event != nil {
			if ev := p.batch[i].Event(o.Msg); ev != nil {
				out = append(out, ev)
			}
		}
	}
	return out
}
