package api

import (
	"fmt"
	"net/http"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/params"
	"github.com/chatd/chatd/internal/store"
)

// registerSearch adds the message search route (docs/socket-protocol.md,
// "Search"), signed like every server route: userId is whose messages are
// searched, and targetId with conversationType narrows to one conversation.
func (s *Server) registerSearch(route func(pattern string, h http.HandlerFunc)) {
	route("GET /message/search", s.signed(s.search))
	route("POST /message/search", s.signed(s.search))
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, app store.App, p *params.Params) {
	userID, _ := p.String("userId")
	in := chat.SearchInput{}
	in.Q, _ = p.String("q")
	in.TargetID, _ = p.String("targetId")
	in.SenderUserID, _ = p.String("senderUserId")
	in.Before, _ = p.String("before")
	for _, f := range []struct {
		name string
		dst  *int
		max  int64
	}{{"conversationType", &in.ConvType, maxEnumParam}, {"messageType", &in.MessageType, maxEnumParam}, {"limit", &in.Limit, maxLimitParam}} {
		n, present, err := p.Int(f.name)
		if err != nil || (present && n <= 0) {
			s.fail(w, r, fmt.Errorf("%w: %s must be a positive integer", chat.ErrInvalid, f.name))
			return
		}
		*f.dst = int(min(n, f.max))
	}
	if (in.TargetID == "") != (in.ConvType == 0) {
		s.fail(w, r, fmt.Errorf("%w: targetId and conversationType go together", chat.ErrInvalid))
		return
	}
	res, err := s.chat.Search(r.Context(), app.ID, userID, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ok(w, "搜索成功", res)
}
