package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/store"
)

var searchTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"SearchMatching", testSearchMatching},
	{"SearchVisibility", testSearchVisibility},
	{"SearchPaging", testSearchPaging},
	{"SearchFilters", testSearchFilters},
	{"MessagesAround", testMessagesAround},
	{"SearchBounds", testSearchBounds},
}

// RunSearch runs the search tests only: for a backend with more than one
// way to search, each way in turn.
func RunSearch(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tt := range searchTests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// searchCorpus is one conversation's messages: seq i+1 is searchCorpus[i].
var searchCorpus = []struct {
	typ     int
	content string
}{
	{1, `{"content":"我在北京工作"}`},                            // 1
	{1, `{"content":"Meeting in Zürich tomorrow"}`},        // 2
	{1, `{"content":"北京烤鸭 and Shanghai dumplings 🥟"}`},     // 3
	{4, `{"name":"Quarterly-Report.pdf","size":10}`},       // 4
	{5, `{"name":"天安门广场","address":"Beijing","lat":39.9}`}, // 5
	{6, `{"searchText":"invoice paid","data":{"x":1}}`},    // 6
	{6, `{"data":{"content":"北京"}}`},                       // 7: no searchText
	{1, `{"content":"the quick brown fox"}`},               // 8
	{1, `{"content":"brown quick fox"}`},                   // 9
	{3, `{"url":"https://example.com/北京.png"}`},            // 10: images have no text
	{1, `{"content":"100% sure_thing"}`},                   // 11
	{1, `{"content":"京"}`},                                 // 12
	{1, `{"content":"Working from home"}`},                 // 13
	{1, `{"content":"homework done, work later"}`},         // 14
	{1, `{"content":"Crème brûlée à Paris"}`},              // 15
	{1, `{"content":"上海work坊"}`},                           // 16
}

func searchSeed(t *testing.T, s store.Store) (app string, c store.Conversation) {
	t.Helper()
	app = newApp(t, s)
	c = upsertGroup(t, s, app, "g", "alice", "bob")
	for i, m := range searchCorpus {
		sendWith(t, s, store.NewMessage{ConversationID: c.ID, SenderID: "alice", Type: m.typ,
			Content: json.RawMessage(m.content), At: at(i + 1)})
	}
	return app, c
}

func search(t *testing.T, s store.Store, q store.SearchQuery) []int64 {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 100
	}
	page, err := s.Search(ctx, q)
	if err != nil {
		t.Fatalf("Search(%q): %v", q.Terms, err)
	}
	return seqs(page.Messages)
}

func testSearchMatching(t *testing.T, s store.Store) {
	app, _ := searchSeed(t, s)
	for _, tt := range []struct {
		q    string
		want []int64
	}{
		{"北京", []int64{3, 1}},         // 2 CJK characters, substring
		{"京", []int64{12, 3, 1}},      // 1 character
		{"在北京工", []int64{1}},          // 4 characters: the trigram index
		{"天安门", []int64{5}},           // location name
		{"beijing", []int64{5}},       // location address, case folded
		{"ZÜRICH", []int64{2}},        // case folded
		{"zurich", []int64{2}},        // diacritics folded
		{"report.PDF", []int64{4}},    // file name
		{"invoice", []int64{6}},       // custom searchText
		{"quick fox", []int64{9, 8}},  // all terms, any order
		{`"quick brown"`, []int64{8}}, // a phrase keeps its order
		{`"fox quick"`, []int64{}},
		{`"the quick"`, []int64{8}},
		{`"brown quick"`, []int64{9}},
		{"北京 dumplings", []int64{3}}, // mixed scripts
		{"🥟", []int64{3}},            // emoji
		{"100%", []int64{11}},        // LIKE wildcards are literal
		{"_", []int64{11}},
		{"%", []int64{11}},
		{"nothing-like-this", []int64{}},
		{"png", []int64{}},
		{"work", []int64{16, 14, 13}}, // a word's prefix, not inside homework
		{"working", []int64{13}},
		{"homework", []int64{14}},
		{"mework", []int64{}},
		{"ork", []int64{}},
		{"work done", []int64{14}}, // terms in any order, each at a word start
		{"work later", []int64{14}},
		{`"work later"`, []int64{14}},
		{`"done work"`, []int64{}},
		{"creme brulee", []int64{15}}, // diacritics folded, every term
		{"CRÈME paris", []int64{15}},
		{"creme london", []int64{}},
		{"bru", []int64{15}},
		{"rulee", []int64{}},
		{"上海 work", []int64{16}},
		{"work坊", []int64{16}},
		{"uick", []int64{}},
		{"quic", []int64{9, 8}},
	} {
		got := search(t, s, store.SearchQuery{AppID: app, UserID: "bob", Terms: store.ParseSearchTerms(tt.q)})
		if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("search %q = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func testSearchVisibility(t *testing.T, s store.Store) {
	app, c := searchSeed(t, s)
	q := func(user string, app string) []int64 {
		return search(t, s, store.SearchQuery{AppID: app, UserID: user, Terms: []string{"北京"}})
	}
	if got := q("stranger", app); len(got) != 0 {
		t.Fatalf("a non-member finds %v", got)
	}
	if got := q("bob", newApp(t, s)); len(got) != 0 {
		t.Fatalf("bob of another app finds %v", got)
	}
	// A member added later sees only what came after their join.
	if err := s.AddMembers(ctx, app, "g", []string{"late"}); err != nil {
		t.Fatal(err)
	}
	m := sendWith(t, s, store.NewMessage{ConversationID: c.ID, SenderID: "alice",
		Content: json.RawMessage(`{"content":"北京见"}`), At: at(20)})
	if got := q("late", app); !slices.Equal(got, []int64{m.Seq}) {
		t.Fatalf("late finds %v, want [%d]", got, m.Seq)
	}
	// Removed, nothing.
	if err := s.RemoveMembers(ctx, app, "g", []string{"late"}); err != nil {
		t.Fatal(err)
	}
	if got := q("late", app); len(got) != 0 {
		t.Fatalf("a removed member finds %v", got)
	}
	// Deleted for me: hidden from bob only.
	if _, err := s.Hide(ctx, c.ID, "bob", 3, 3); err != nil {
		t.Fatal(err)
	}
	if got := q("bob", app); !slices.Equal(got, []int64{m.Seq, 1}) {
		t.Fatalf("bob after hiding 3 finds %v", got)
	}
	if got := q("alice", app); !slices.Equal(got, []int64{m.Seq, 3, 1}) {
		t.Fatalf("alice finds %v", got)
	}
	// Recalled: gone for everyone; edited: found by the new text only.
	msgs, _ := s.History(ctx, c.ID, "alice", 2, 1)
	if _, err := s.UpdateMessage(ctx, c.ID, msgs[0].ID, func(_ store.MessageTx, m *store.Message) error {
		m.Content = store.RecalledContent
		m.Meta.RecalledBy = "alice"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := q("alice", app); !slices.Equal(got, []int64{m.Seq, 3}) {
		t.Fatalf("after recalling 1 alice finds %v", got)
	}
	if _, err := s.UpdateMessage(ctx, c.ID, m.ID, edit("上海见")); err != nil {
		t.Fatal(err)
	}
	if got := q("alice", app); !slices.Equal(got, []int64{3}) {
		t.Fatalf("after editing %d alice finds %v", m.Seq, got)
	}
	if got := search(t, s, store.SearchQuery{AppID: app, UserID: "alice", Terms: []string{"上海见"}}); !slices.Equal(got, []int64{m.Seq}) {
		t.Fatalf("the edited text finds %v", got)
	}
}

func testSearchPaging(t *testing.T, s store.Store) {
	app := newApp(t, s)
	a := upsertGroup(t, s, app, "a", "u", "v")
	b := openPrivate(t, s, app, "u", "w")
	// Alternate conversations, and two messages at one time to page on
	// the tie-breakers.
	var sent []store.Message
	for i := 1; i <= 9; i++ {
		conv := a.ID
		if i%2 == 0 {
			conv = b.ID
		}
		m := sendWith(t, s, store.NewMessage{ConversationID: conv, SenderID: "u",
			Content: json.RawMessage(fmt.Sprintf(`{"content":"note %d 笔记"}`, i)), At: at(i / 2)})
		sent = append(sent, m)
	}
	// Newest first: by time, then conversation and seq, descending.
	slices.SortFunc(sent, func(x, y store.Message) int {
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		if x.ConversationID != y.ConversationID {
			return strings.Compare(y.ConversationID, x.ConversationID)
		}
		return int(y.Seq - x.Seq)
	})
	var want []string
	for _, m := range sent {
		want = append(want, fmt.Sprintf("%s/%d", m.ConversationID, m.Seq))
	}
	for _, terms := range [][]string{{"note"}, {"笔记"}} {
		var got []string
		var before *store.SearchCursor
		for range 10 {
			page, err := s.Search(ctx, store.SearchQuery{AppID: app, UserID: "u", Terms: terms, Before: before, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			msgs := page.Messages
			if len(msgs) == 0 {
				break
			}
			for _, m := range msgs {
				got = append(got, fmt.Sprintf("%s/%d", m.ConversationID, m.Seq))
			}
			c := store.Cursor(msgs[len(msgs)-1])
			before = &c
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%v: paged %v, want %v", terms, got, want)
		}
	}
}

func testSearchFilters(t *testing.T, s store.Store) {
	app := newApp(t, s)
	g := upsertGroup(t, s, app, "g", "alice", "bob")
	p := openPrivate(t, s, app, "alice", "bob")
	m1 := sendWith(t, s, store.NewMessage{ConversationID: g.ID, SenderID: "alice", Content: json.RawMessage(`{"content":"hello 世界"}`), At: at(1)})
	m2 := sendWith(t, s, store.NewMessage{ConversationID: g.ID, SenderID: "bob", Content: json.RawMessage(`{"content":"hello again"}`), At: at(2)})
	m3 := sendWith(t, s, store.NewMessage{ConversationID: p.ID, SenderID: "bob", Type: 4, Content: json.RawMessage(`{"name":"hello.txt"}`), At: at(3)})
	for _, tt := range []struct {
		q    store.SearchQuery
		want []int64
	}{
		{store.SearchQuery{}, []int64{m3.Seq, m2.Seq, m1.Seq}},
		{store.SearchQuery{ConversationID: g.ID}, []int64{m2.Seq, m1.Seq}},
		{store.SearchQuery{ConversationID: p.ID}, []int64{m3.Seq}},
		{store.SearchQuery{SenderID: "alice"}, []int64{m1.Seq}},
		{store.SearchQuery{Type: 4}, []int64{m3.Seq}},
		{store.SearchQuery{SenderID: "bob", Type: 1}, []int64{m2.Seq}},
		{store.SearchQuery{Limit: 1}, []int64{m3.Seq}},
	} {
		q := tt.q
		q.AppID, q.UserID, q.Terms = app, "alice", []string{"hello"}
		if got := search(t, s, q); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: %v, want %v", tt.q, got, tt.want)
		}
	}
}

func testMessagesAround(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "alice", "bob")
	for i := 1; i <= 10; i++ {
		send(t, s, c.ID, "alice", i)
	}
	around := func(user string, seq int64, before, after int) []int64 {
		t.Helper()
		msgs, err := s.MessagesAround(ctx, c.ID, user, seq, before, after)
		if err != nil {
			t.Fatal(err)
		}
		return seqs(msgs)
	}
	for _, tt := range []struct {
		seq           int64
		before, after int
		want          []int64
	}{
		{5, 3, 2, []int64{3, 4, 5, 6, 7}},
		{10, 3, 2, []int64{8, 9, 10}},
		{1, 3, 2, []int64{1, 2, 3}},
		{5, 0, 2, []int64{6, 7}},
		{5, 1, 0, []int64{5}},
	} {
		if got := around("bob", tt.seq, tt.before, tt.after); !slices.Equal(got, tt.want) {
			t.Errorf("around %d (%d, %d) = %v, want %v", tt.seq, tt.before, tt.after, got, tt.want)
		}
	}
	if got := around("stranger", 5, 3, 2); len(got) != 0 {
		t.Fatalf("a non-member sees %v", got)
	}
	// A later member sees nothing before their join.
	if err := s.AddMembers(ctx, app, "g", []string{"late"}); err != nil {
		t.Fatal(err)
	}
	send(t, s, c.ID, "alice", 11)
	if got := around("late", 10, 5, 5); !slices.Equal(got, []int64{11}) {
		t.Fatalf("late sees %v, want [11]", got)
	}
	// Hidden ranges are left out for the one who hid them.
	if _, err := s.Hide(ctx, c.ID, "bob", 4, 6); err != nil {
		t.Fatal(err)
	}
	if got := around("bob", 5, 3, 2); !slices.Equal(got, []int64{1, 2, 3, 7, 8}) {
		t.Fatalf("bob after hiding 4-6 sees %v", got)
	}
	if got := around("alice", 5, 1, 1); !slices.Equal(got, []int64{5, 6}) {
		t.Fatalf("alice sees %v", got)
	}
}

// testSearchBounds: a search examines a bounded number of candidates and
// says where to go on (Partial, Next), and one that cannot answer in time
// is ErrSearchTooBroad; paging through partial pages finds every hit.
func testSearchBounds(t *testing.T, s store.Store) {
	app := newApp(t, s)
	c := upsertGroup(t, s, app, "g", "u", "v")
	for i := 1; i <= 30; i++ {
		text := "homework" // a candidate (substring) that is no hit
		if i%10 == 0 {
			text = "work"
		}
		sendWith(t, s, store.NewMessage{ConversationID: c.ID, SenderID: "u",
			Content: json.RawMessage(`{"content":"` + text + `"}`), At: at(i)})
	}
	var got []int64
	var before *store.SearchCursor
	partials := 0
	for range 20 {
		page, err := s.Search(ctx, store.SearchQuery{AppID: app, UserID: "v", Terms: []string{"work"},
			Before: before, Limit: 10, MaxScan: 7})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, seqs(page.Messages)...)
		if page.Partial {
			partials++
		}
		if page.Next == nil {
			break
		}
		before = page.Next
	}
	if !slices.Equal(got, []int64{30, 20, 10}) || partials < 4 {
		t.Fatalf("paged %v with %d partial pages, want [30 20 10] over >= 4", got, partials)
	}
	_, err := s.Search(ctx, store.SearchQuery{AppID: app, UserID: "v", Terms: []string{"work"}, Limit: 10, Timeout: time.Nanosecond})
	if !errors.Is(err, store.ErrSearchTooBroad) {
		t.Fatalf("a search out of time: %v, want ErrSearchTooBroad", err)
	}
}
