package store

import (
	"context"
	"errors"
	"time"
	"unicode"
)

// How far one search goes (docs/socket-protocol.md, "Search"): the SQL index
// gives candidates (substring matches), and the word rule below keeps the
// real hits; at most MaxSearchScan candidates are examined and each store
// query has SearchTimeout, so that a query matching nearly everything
// answers a bounded page (SearchPage.Partial) or ErrSearchTooBroad instead
// of stalling the store.
const (
	MaxSearchScan = 2000
	SearchTimeout = 2 * time.Second
)

// ErrSearchTooBroad is a search the store could not answer within its time
// bound (SearchTimeout).
var ErrSearchTooBroad = errors.New("search too broad")

// SearchPage is a page of hits, newest first. Next, when set, is where the
// following page starts: after a full page, or after MaxSearchScan
// candidates (Partial: fewer than Limit hits, more may follow).
type SearchPage struct {
	Messages []Message
	Next     *SearchCursor
	Partial  bool
}

// SearchCandidates runs the store's candidate query: up to n messages
// from before (nil: the newest) in search order, whose text contains every
// term as a substring (a superset of the hits).
type SearchCandidates func(ctx context.Context, before *SearchCursor, n int) ([]Message, error)

// FilterSearch pages through the candidates, keeping those that MatchSearch,
// until q.Limit hits, the end, the scan bound (q.MaxScan, default
// MaxSearchScan) or the time bound (q.Timeout, default SearchTimeout). Both
// store backends search through it, so they answer the same.
func FilterSearch(ctx context.Context, q SearchQuery, fetch SearchCandidates) (SearchPage, error) {
	page := SearchPage{Messages: []Message{}}
	if q.Limit <= 0 || len(q.Terms) == 0 {
		return page, nil
	}
	maxScan, timeout := q.MaxScan, q.Timeout
	if maxScan <= 0 {
		maxScan = MaxSearchScan
	}
	if timeout <= 0 {
		timeout = SearchTimeout
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	terms := FoldTerms(q.Terms)
	before, scanned := q.Before, 0
	for scanned < maxScan {
		n := min(max(2*q.Limit, 50), maxScan-scanned)
		msgs, err := fetch(qctx, before, n)
		var bound *ScanBound
		more := errors.Is(err, ErrMoreCandidates)
		if errors.As(err, &bound) || more {
			err = nil
		}
		if err != nil {
			if ctx.Err() != nil || qctx.Err() == nil {
				return SearchPage{}, err
			}
			if len(page.Messages) == 0 {
				return SearchPage{}, errors.Join(ErrSearchTooBroad, err)
			}
			page.Next, page.Partial = before, true // what was found in time
			return page, nil
		}
		for _, m := range msgs {
			scanned++
			c := Cursor(m)
			before = &c
			if MatchSearch(SearchText(m.Type, m.Content), terms) {
				page.Messages = append(page.Messages, m)
				if len(page.Messages) == q.Limit {
					page.Next = before
					return page, nil
				}
			}
		}
		if bound != nil {
			page.Next, page.Partial = &bound.Next, true
			return page, nil
		}
		if len(msgs) < n && !more {
			return page, nil
		}
	}
	page.Next, page.Partial = before, true
	return page, nil
}

// FoldTerms folds every term (FoldRune).
func FoldTerms(terms []string) [][]rune {
	out := make([][]rune, len(terms))
	for i, t := range terms {
		for _, r := range t {
			out[i] = append(out[i], FoldRune(r))
		}
	}
	return out
}

// MatchSearch reports whether text (its first MaxSearchTextRunes
// characters, as indexed) holds every folded term at a MatchAt position.
func MatchSearch(text string, terms [][]rune) bool {
	rs := []rune(text)
	if len(rs) > MaxSearchTextRunes {
		rs = rs[:MaxSearchTextRunes]
	}
	for i, r := range rs {
		rs[i] = FoldRune(r)
	}
	for _, t := range terms {
		found := false
		for i := range rs {
			if MatchAt(rs, t, i) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// MatchAt reports whether the folded term t occurs in the folded text s at
// i. A term that starts with a letter or digit of a spaced script (Latin,
// Cyrillic…) must start a word there: "work" matches "working" but not
// "homework" (prefix semantics). Other terms (CJK, which has no spaces,
// emoji, punctuation) match anywhere.
func MatchAt(s, t []rune, i int) bool {
	if len(t) == 0 || i+len(t) > len(s) {
		return false
	}
	for j, r := range t {
		if s[i+j] != r {
			return false
		}
	}
	return i == 0 || !wordRune(t[0]) || !wordRune(s[i-1])
}

// wordRune: a letter or digit of a script that separates words by spaces.
func wordRune(r rune) bool {
	if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
		return false
	}
	return !unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Thai)
}

// FoldRune lower-cases r and strips the diacritics of Latin-1 and Latin
// Extended-A letters, as the indexes fold them.
func FoldRune(r rune) rune {
	r = unicode.ToLower(r)
	if r >= 0xe0 && r <= 0x17f {
		if f, ok := latinFold[r]; ok {
			return f
		}
	}
	return r
}

var latinFold = func() map[rune]rune {
	m := map[rune]rune{}
	for base, letters := range map[rune]string{
		'a': "àáâãäåāăą", 'c': "çćĉċč", 'd': "ďđ", 'e': "èéêëēĕėęě", 'g': "ĝğġģ", 'h': "ĥħ",
		'i': "ìíîïĩīĭįı", 'j': "ĵ", 'k': "ķ", 'l': "ĺļľŀł", 'n': "ñńņňŉ", 'o': "òóôõöøōŏő",
		'r': "ŕŗř", 's': "śŝşš", 't': "ţťŧ", 'u': "ùúûüũūŭůűų", 'w': "ŵ", 'y': "ýÿŷ", 'z': "źżž",
	} {
		for _, r := range letters {
			m[r] = base
		}
	}
	return m
}()
