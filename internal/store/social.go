package store

import "context"

// Social reads what the receipts and presence features need about the
// people a user shares conversations with.
type Social interface {
	// PeerReadSeqs returns, by conversation id, how far the peer of each
	// of the user's private conversations has read.
	PeerReadSeqs(ctx context.Context, appID, userID string) (map[string]int64, error)
	// MessageReaders returns the members of the conversation other than
	// senderID who may see the message at seq (the visibility rule), and
	// among them those whose read_seq reached it.
	MessageReaders(ctx context.Context, conversationID string, seq int64, senderID string) (readers []Member, audience int, err error)
	// SharedWith returns those of others that share at least one
	// conversation with userID in the app.
	SharedWith(ctx context.Context, appID, userID string, others []string) ([]string, error)
}
