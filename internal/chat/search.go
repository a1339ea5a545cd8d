package chat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/chatd/chatd/internal/store"
)

// SearchInput is a message search (docs/socket-protocol.md, "Search"): Q's
// terms must all match; the others narrow the search when set.
type SearchInput struct {
	Q string
	// The conversation to search in: by the caller's session id (sockets)
	// or by conversationType and targetId (HTTP). Neither: every
	// conversation the user belongs to.
	SID          string
	ConvType     int
	TargetID     string
	SenderUserID string
	MessageType  int
	Before       string // the Next of the previous page
	Limit        int
}

// SearchHit is one found message with the caller's session id of its
// conversation and a snippet of its text. Highlights are [start, end)
// offsets into Snippet, in UTF-16 code units (JavaScript string indices),
// of the matched terms.
type SearchHit struct {
	Message
	SID        string   `json:"sid"`
	Snippet    string   `json:"snippet"`
	Highlights [][2]int `json:"highlights"`
}

// SearchResult is a page of hits, newest first; Next, when set, is the
// cursor of the following page (before).
// Partial says the search stopped at its bound of examined messages before
// filling the page: more hits may follow from Next.
type SearchResult struct {
	Hits    []SearchHit `json:"hits"`
	Next    string      `json:"next,omitempty"`
	Partial bool        `json:"partial,omitempty"`
}

// Search finds the messages matching in.Q that userID may see.
func (s *Service) Search(ctx context.Context, appID, userID string, in SearchInput) (SearchResult, error) {
	if err := checkUserID("userId", userID); err != nil {
		return SearchResult{}, err
	}
	terms, err := searchTerms(in.Q)
	if err != nil {
		return SearchResult{}, err
	}
	limit, err := s.limit(in.Limit)
	if err != nil {
		return SearchResult{}, err
	}
	q := store.SearchQuery{AppID: appID, UserID: userID, Terms: terms, SenderID: in.SenderUserID,
		Type: in.MessageType, Limit: limit}
	if in.MessageType < 0 {
		return SearchResult{}, fmt.Errorf("%w: messageType must be positive", ErrInvalid)
	}
	if in.SenderUserID != "" {
		if err := checkUserID("senderUserId", in.SenderUserID); err != nil {
			return SearchResult{}, err
		}
	}
	switch {
	case in.SID != "":
		conv, _, err := s.session(ctx, appID, userID, in.SID)
		if err != nil {
			return SearchResult{}, err
		}
		q.ConversationID = conv.ID
	case in.TargetID != "" || in.ConvType != 0:
		conv, err := s.conversationOf(ctx, appID, userID, in.TargetID, in.ConvType)
		if errors.Is(err, store.ErrNotFound) {
			return SearchResult{Hits: []SearchHit{}}, nil
		}
		if err != nil {
			return SearchResult{}, err
		}
		q.ConversationID = conv.ID
	}
	if in.Before != "" {
		c, err := parseSearchCursor(in.Before)
		if err != nil {
			return SearchResult{}, err
		}
		q.Before = &c
	}
	page, err := s.store.Search(ctx, q)
	if errors.Is(err, store.ErrSearchTooBroad) && ctx.Err() == nil {
		return SearchResult{}, fmt.Errorf("%w: q is too broad: give a longer word, or search one conversation (sid)", ErrInvalid)
	}
	if err != nil {
		return SearchResult{}, fmt.Errorf("search: %w", err)
	}
	msgs := page.Messages
	out := SearchResult{Hits: make([]SearchHit, 0, len(msgs))}
	convs := map[string]store.Conversation{}
	sids := map[string]string{}
	now := s.now()
	for _, m := range msgs {
		conv, ok := convs[m.ConversationID]
		if !ok {
			if conv, err = s.store.Conversation(ctx, m.ConversationID); err != nil {
				return SearchResult{}, fmt.Errorf("search: load conversation: %w", err)
			}
			mem, err := s.store.Member(ctx, m.ConversationID, userID)
			if err != nil {
				return SearchResult{}, fmt.Errorf("search: load member: %w", err)
			}
			convs[m.ConversationID], sids[m.ConversationID] = conv, mem.SID
		}
		snippet, marks := Snippet(store.SearchText(m.Type, m.Content), terms)
		out.Hits = append(out.Hits, SearchHit{Message: s.wireMessage(conv, m, now), SID: sids[m.ConversationID],
			Snippet: snippet, Highlights: marks})
	}
	if c := page.Next; c != nil {
		out.Next = fmt.Sprintf("%d.%s.%d", c.At.UnixMilli(), c.ConversationID, c.Seq)
		out.Partial = page.Partial
	}
	return out, nil
}

// conversationOf finds the conversation the HTTP API names by
// conversationType and targetId, and checks userID belongs to it;
// store.ErrNotFound when a private conversation does not exist yet (an
// unknown group is ErrUnknownGroup).
func (s *Service) conversationOf(ctx context.Context, appID, userID, targetID string, convType int) (store.Conversation, error) {
	if err := checkUserID("targetId", targetID); err != nil {
		return store.Conversation{}, err
	}
	var key string
	switch convType {
	case store.Private:
		key = store.PrivateKey(userID, targetID)
	case store.Group:
		key = targetID
	default:
		return store.Conversation{}, fmt.Errorf("%w: conversationType must be 1 (private) or 2 (group)", ErrInvalid)
	}
	conv, err := s.store.ConversationByKey(ctx, appID, convType, key)
	if errors.Is(err, store.ErrNotFound) && convType == store.Group {
		return store.Conversation{}, fmt.Errorf("%w: %s", ErrUnknownGroup, truncate(targetID))
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Conversation{}, err
	}
	if err != nil {
		return store.Conversation{}, fmt.Errorf("load conversation: %w", err)
	}
	if _, err := s.store.Member(ctx, conv.ID, userID); err != nil {
		if errors.Is(err, store.ErrNotMember) {
			return store.Conversation{}, fmt.Errorf("%w: %s is not in %s", ErrNotMember, truncate(userID), truncate(targetID))
		}
		return store.Conversation{}, fmt.Errorf("load member: %w", err)
	}
	return conv, nil
}

// searchTerms checks and splits a query. A query of single Latin letters
// or digits only would match nearly everything: it is refused.
func searchTerms(q string) ([]string, error) {
	if store.RuneLen(q) > store.MaxSearchRunes {
		return nil, fmt.Errorf("%w: q must be at most %d characters", ErrInvalid, store.MaxSearchRunes)
	}
	terms := store.ParseSearchTerms(q)
	if len(terms) == 0 {
		return nil, fmt.Errorf("%w: missing q", ErrInvalid)
	}
	if len(terms) > store.MaxSearchTerms {
		return nil, fmt.Errorf("%w: q must have at most %d terms", ErrInvalid, store.MaxSearchTerms)
	}
	broad := true
	for _, t := range terms {
		r := []rune(t)
		if len(r) > 1 || r[0] > unicode.MaxASCII || !(unicode.IsLetter(r[0]) || unicode.IsDigit(r[0])) {
			broad = false
		}
	}
	if broad {
		return nil, fmt.Errorf("%w: q is too short: give a word of 2 characters or more", ErrInvalid)
	}
	return terms, nil
}

func parseSearchCursor(s string) (store.SearchCursor, error) {
	bad := fmt.Errorf("%w: before must be the next cursor of a search page", ErrInvalid)
	parts := strings.Split(s, ".")
	if len(parts) != 3 || !store.ValidID(parts[1]) {
		return store.SearchCursor{}, bad
	}
	ms, err1 := strconv.ParseInt(parts[0], 10, 64)
	seq, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || seq < 1 {
		return store.SearchCursor{}, bad
	}
	return store.SearchCursor{At: time.UnixMilli(ms), ConversationID: parts[1], Seq: seq}, nil
}

// snippetRunes is the longest snippet; snippetLead how much of the text
// before the first match it shows.
const (
	snippetRunes = 80
	snippetLead  = 20
)

// Snippet cuts text around the first match of any term and returns it with
// the [start, end) UTF-16 offsets of every match in it (folded and matched
// as the store matches: store.MatchAt).
func Snippet(text string, terms []string) (string, [][2]int) {
	rs := []rune(text)
	folded := make([]rune, len(rs))
	for i, r := range rs {
		folded[i] = store.FoldRune(r)
	}
	ft := store.FoldTerms(terms)
	first := -1
	for i := range folded {
		for _, t := range ft {
			if store.MatchAt(folded, t, i) {
				first = i
				break
			}
		}
		if first >= 0 {
			break
		}
	}
	start := 0
	if first > snippetLead {
		start = first - snippetLead
	}
	end := min(len(rs), start+snippetRunes)
	var b strings.Builder
	prefix := 0
	if start > 0 {
		b.WriteString("…")
		prefix = 1
	}
	b.WriteString(string(rs[start:end]))
	if end < len(rs) {
		b.WriteString("…")
	}
	// UTF-16 offset of each rune of the window.
	offs := make([]int, end-start+1)
	offs[0] = prefix
	for i := start; i < end; i++ {
		offs[i-start+1] = offs[i-start] + len(utf16.Encode([]rune{rs[i]}))
	}
	marks := [][2]int{}
	for i := start; i < end; {
		n := 0
		for _, t := range ft {
			if len(t) > n && i+len(t) <= end && store.MatchAt(folded, t, i) {
				n = len(t)
			}
		}
		if n == 0 {
			i++
			continue
		}
		marks = append(marks, [2]int{offs[i-start], offs[i-start+n]})
		i += n
	}
	return b.String(), marks
}
