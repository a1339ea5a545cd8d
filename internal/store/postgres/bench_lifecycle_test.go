package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/chatd/chatd/internal/store"
)

// BenchmarkReact adds and removes a reaction in turn, as chat.Service.React
// does it (docs/benchmarks.md, "A reaction costs no more than a send"):
// compare with BenchmarkSendSerial/batched.
func BenchmarkReact(b *testing.B) {
	s := openMode(b, true)
	_, c := benchGroup(b, s, 2)
	ctx := context.Background()
	m, _, err := s.Send(ctx, store.NewMessage{ConversationID: c.ID, SenderID: "u00", Type: 1, Content: content})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		_, err := s.UpdateMessage(ctx, c.ID, m.ID, func(tx store.MessageTx, m *store.Message) error {
			changed, err := tx.SetReaction(ctx, "u01", "👍", i%2 == 0)
			if err != nil || !changed {
				return errors.Join(err, store.ErrUnchanged)
			}
			m.Meta.Reactions, err = tx.Reactions(ctx)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
