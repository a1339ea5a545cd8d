package web

import (
	"net/http"
	"time"

	"github.com/chatd/chatd/internal/chat"
)

// The demo's group panel reads and manages groups through the SDK's socket
// events (the demo app allows socket management); mutes and dismissal have
// no socket event, nor have admin changes, so the demo asks for them here,
// as the caller and with the caller's role, like an app backend that checks
// roles first.

func (w *Web) registerGroups(mux *http.ServeMux) {
	mux.HandleFunc("POST /demo/group-action", w.demoGroupAction)
}

// demoGroupAction: {token, groupId, action, userIds?, minutes?} where action
// is mute, unmute, muteAll, unmuteAll, admin, unadmin or dismiss.
func (w *Web) demoGroupAction(rw http.ResponseWriter, r *http.Request) {
	var in struct {
		Token   string   `json:"token"`
		GroupID string   `json:"groupId"`
		Action  string   `json:"action"`
		UserIDs []string `json:"userIds"`
		Minutes int      `json:"minutes"`
	}
	if err := decode(r, &in); err != nil {
		w.fail(rw, err)
		return
	}
	ctx := r.Context()
	me, err := w.caller(ctx, in.Token)
	if err != nil {
		w.fail(rw, err)
		return
	}
	a := chat.Actor{AppID: DemoAppID, UserID: me.UserID}
	switch in.Action {
	case "mute":
		err = w.chat.Mute(ctx, a, in.GroupID, in.UserIDs, time.Now().Add(time.Duration(min(max(in.Minutes, 1), 24*60))*time.Minute))
	case "unmute":
		err = w.chat.Mute(ctx, a, in.GroupID, in.UserIDs, time.Time{})
	case "muteAll", "unmuteAll":
		err = w.chat.MuteAll(ctx, a, in.GroupID, in.Action == "muteAll")
	case "admin":
		err = w.chat.SetAdmins(ctx, a, in.GroupID, in.UserIDs, nil)
	case "unadmin":
		err = w.chat.SetAdmins(ctx, a, in.GroupID, nil, in.UserIDs)
	case "dismiss":
		err = w.chat.Dismiss(ctx, a, in.GroupID)
	default:
		err = chat.ErrInvalid
	}
	if err != nil {
		w.fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, envelope{Status: chat.CodeOK})
}
