package chat

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/chatd/chatd/internal/store"
	"github.com/chatd/chatd/internal/store/sqlite"
)

func TestSnippet(t *testing.T) {
	long := strings.Repeat("长", 50) + "北京" + strings.Repeat("长", 100)
	for _, tc := range []struct {
		text  string
		terms []string
		want  string
		marks []string // the highlighted parts, in order
	}{
		{"我在北京工作", []string{"北京"}, "我在北京工作", []string{"北京"}},
		{"Meeting in Zürich, zurich", []string{"ZURICH"}, "Meeting in Zürich, zurich", []string{"Zürich", "zurich"}},
		{"🥟 dumplings 🥟", []string{"dump", "🥟"}, "🥟 dumplings 🥟", []string{"🥟", "dump", "🥟"}},
		{"the quick brown", []string{"quick brown", "quick"}, "the quick brown", []string{"quick brown"}},
		{"no match here", []string{"x y"}, "no match here", nil},
		{"homework, then work", []string{"work"}, "homework, then work", []string{"work"}}, // word starts only
		{long, []string{"北京"}, "…" + strings.Repeat("长", 20) + "北京" + strings.Repeat("长", 58) + "…", []string{"北京"}},
	} {
		got, marks := Snippet(tc.text, tc.terms)
		if got != tc.want {
			t.Errorf("Snippet(%q) = %q, want %q", tc.text, got, tc.want)
		}
		u := utf16.Encode([]rune(got))
		var parts []string
		for _, m := range marks {
			parts = append(parts, string(utf16.Decode(u[m[0]:m[1]])))
		}
		if strings.Join(parts, "|") != strings.Join(tc.marks, "|") {
			t.Errorf("Snippet(%q) highlights %q, want %q", tc.text, parts, tc.marks)
		}
	}
}

func TestSearchTerms(t *testing.T) {
	for _, tc := range []struct {
		q   string
		n   int
		err string
	}{
		{"北京", 1, ""},
		{"京", 1, ""},
		{`"quick brown" fox`, 2, ""},
		{"", 0, "missing q"},
		{`  "" `, 0, "missing q"},
		{"a", 0, "too short"},
		{"a 1", 0, "too short"},
		{"a bc", 2, ""},
		{strings.Repeat("x ", 9), 0, "at most 8 terms"},
		{strings.Repeat("x", 101), 0, "at most 100 characters"},
	} {
		terms, err := searchTerms(tc.q)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("searchTerms(%q) = %v, want an error with %q", tc.q, err, tc.err)
			}
			continue
		}
		if err != nil || len(terms) != tc.n {
			t.Errorf("searchTerms(%q) = %q, %v; want %d terms", tc.q, terms, err, tc.n)
		}
	}
}

// broadStore is a store whose every search runs out of time.
type broadStore struct{ store.Store }

func (broadStore) Search(context.Context, store.SearchQuery) (store.SearchPage, error) {
	return store.SearchPage{}, store.ErrSearchTooBroad
}

// TestSearchTooBroad: a search the store cannot answer in time is a clear
// client error, not an internal one.
func TestSearchTooBroad(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := New(broadStore{st}, Options{})
	app, _ := svc.CreateApp(ctx, "a", "")
	_, err = svc.Search(ctx, app.ID, "u", SearchInput{Q: "meeting"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "too broad") {
		t.Fatalf("err = %v, want ErrInvalid: q is too broad", err)
	}
}
