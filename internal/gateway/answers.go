package gateway

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/chatd/chatd/internal/chat"
)

// Answers are metered by bytes per user (docs/soak.md, Under attack): a
// history page, a sync or a session list costs the server a read and an
// encoding in proportion to its size, so counting events alone let one user
// with a few sockets make the server read and encode megabytes a second
// that it then never reads. Each answer is encoded here, its size charged to
// the user's bucket (which may go into debt, so an answer is never cut),
// and a user in debt is refused further answers (except to sends) until it
// is repaid.

// encodeAnswer is the ack's data as JSON: message lists through the
// encoder that splices stored content as is (chat.AppendMessages).
func encodeAnswer(data any) (json.RawMessage, error) {
	switch v := data.(type) {
	case json.RawMessage:
		return v, nil
	case []chat.Message:
		return chat.AppendMessages(nil, v), nil
	case chat.SendResult:
		return chat.AppendSendResult(make([]byte, 0, 512), &v), nil
	case *chat.SendResult:
		return chat.AppendSendResult(make([]byte, 0, 512), v), nil
	}
	return json.Marshal(data)
}

// admitAnswer reports whether the user may be answered now.
func (g *Gateway) admitAnswer(key string) error {
	ok, retry := g.answers.Admit(key)
	if ok {
		return nil
	}
	g.answersRefused.Add(1)
	return fmt.Errorf("%w: this user asked for more than %d bytes of answers per second (bursts of %d); retry in %v",
		chat.ErrRateLimited, g.opts.AnswerRate, g.opts.AnswerBurst, retry.Round(time.Second))
}

// AnswersRefused is the number of events refused for the byte budget of
// their user's answers.
func (g *Gateway) AnswersRefused() uint64 { return g.answersRefused.Load() }
