package store

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// Search limits: a query is at most MaxSearchTerms terms of at most
// MaxSearchRunes characters in all, so that no query can make the store
// evaluate an unbounded expression.
const (
	MaxSearchTerms = 8
	MaxSearchRunes = 100
	MaxSearchLimit = 100
	// MaxSearchTextRunes is how much of a message's searchable text the
	// index holds: its first 500 characters.
	MaxSearchTextRunes = 500
)

// SearchQuery is the input of Search. Terms all must match (see MatchAt);
// the other fields narrow the search when set.
type SearchQuery struct {
	AppID, UserID  string
	Terms          []string // from ParseSearchTerms
	ConversationID string   // "": every conversation the user belongs to
	SenderID       string
	Type           int           // 0: any message type
	Before         *SearchCursor // nil: from the newest
	Limit          int
	// Bounds of one search (see FilterSearch); 0: the defaults.
	MaxScan int
	Timeout time.Duration
}

// SearchCursor is the position of a hit in the newest-first order of
// results: (created_at, conversation id, seq), descending.
type SearchCursor struct {
	At             time.Time
	ConversationID string
	Seq            int64
}

// Cursor returns the position of m in search order.
func Cursor(m Message) SearchCursor {
	return SearchCursor{At: m.CreatedAt, ConversationID: m.ConversationID, Seq: m.Seq}
}

// ParseSearchTerms splits q into terms on white space, keeping "quoted
// phrases" whole (an unclosed quote runs to the end). Empty terms are dropped.
func ParseSearchTerms(q string) []string {
	var terms []string
	var b strings.Builder
	quoted := false
	flush := func() {
		if t := strings.TrimSpace(b.String()); t != "" {
			terms = append(terms, t)
		}
		b.Reset()
	}
	for _, r := range q {
		switch {
		case r == '"':
			flush()
			quoted = !quoted
		case !quoted && (r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\u3000'):
			flush()
		default:
			b.WriteRune(r)
		}
	}
	flush()
	return terms
}

// SearchText is the searchable text of a message's content by message type
// (1 text, 4 file, 5 location, 6 custom): the text, the file name, the
// location's name and address, a custom message's searchText. The store
// backends compute the same in SQL (see their search migrations).
func SearchText(typ int, content json.RawMessage) string {
	var c map[string]json.RawMessage
	if json.Unmarshal(content, &c) != nil {
		return ""
	}
	str := func(k string) string {
		var s string
		if json.Unmarshal(c[k], &s) != nil {
			return ""
		}
		return s
	}
	switch typ {
	case 1:
		return str("content")
	case 4:
		return str("name")
	case 5:
		return strings.TrimSpace(str("name") + " " + str("address"))
	case 6:
		return str("searchText")
	}
	return ""
}

// LikeEscape escapes s for a LIKE pattern with ESCAPE '\'.
func LikeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// RuneLen is the number of characters of s.
func RuneLen(s string) int { return utf8.RuneCountInString(s) }
