package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/chatd/chatd/internal/broker"
	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/socketio"
)

// groupGateway is a gateway with group "g" owned by o, admin ad, member m.
func groupGateway(t *testing.T, opts GroupOptions) (*Gateway, func(user string) caller) {
	t.Helper()
	ctx := context.Background()
	br := broker.NewMemory()
	svc := newService(t, br)
	g, err := New(svc, socketio.NewServer(socketio.Options{}), br, Options{Groups: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	app, _ := svc.CreateApp(ctx, "groups", "")
	for _, u := range []string{"o", "ad", "m", "x"} {
		if _, err := svc.GetToken(ctx, app, u, u, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.CreateGroupWithOwner(ctx, chat.CreateGroupInput{AppID: app.ID, GroupID: "g", Name: "G", UserIDs: []string{"o", "ad", "m"}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetAdmins(ctx, chat.Actor{AppID: app.ID}, "g", []string{"ad"}, nil); err != nil {
		t.Fatal(err)
	}
	return g, func(user string) caller {
		return caller{identity: identity{AppID: app.ID, UserID: user}, origin: "s-" + user}
	}
}

func callGroup(g *Gateway, c caller, event, arg string) (any, error) {
	return events[event](g, context.Background(), c, json.RawMessage(arg))
}

func status(err error) int {
	_, s, _ := chat.Describe(err)
	return s
}

func TestGroupEventsAuthorization(t *testing.T) {
	for _, manage := range []bool{false, true} {
		opts := GroupOptions{}
		if manage {
			opts.Manage = ManageApps("*")
		}
		g, as := groupGateway(t, opts)
		other := as("o")
		other.AppID = "ffffffffffffffffffffffff"
		for _, c := range []struct {
			who    caller
			event  string
			arg    string
			status int // 200: allowed
		}{
			{as("m"), evGroupInfo, `{"groupId":"g"}`, 200},
			{as("m"), evGroupMembers, `{"groupId":"g","limit":2}`, 200},
			{as("m"), evMyGroups, `null`, 200},
			{as("x"), evGroupInfo, `{"groupId":"g"}`, 403},
			{as("x"), evGroupMembers, `{"groupId":"g"}`, 403},
			{other, evGroupInfo, `{"groupId":"g"}`, 404},
			{other, evGroupMembers, `{"groupId":"g"}`, 404},
			{as("m"), evGroupInfo, `{}`, 422},
			{as("m"), evGroupAdd, `{"groupId":"g","userIds":["x"]}`, 403},
			{as("m"), evGroupUpdate, `{"groupId":"g","name":"N"}`, 403},
			{as("ad"), evGroupRemove, `{"groupId":"g","userIds":["o"]}`, 403},
			{as("x"), evGroupRemove, `{"groupId":"g","userIds":["m"]}`, 403},
			{as("ad"), evGroupAdd, `{"groupId":"g","userIds":["x"]}`, map[bool]int{false: 403, true: 200}[manage]},
			{as("ad"), evGroupUpdate, `{"groupId":"g","notice":"hi"}`, map[bool]int{false: 403, true: 200}[manage]},
			{as("o"), evGroupRemove, `{"groupId":"g","userIds":["ad"]}`, map[bool]int{false: 403, true: 200}[manage]},
			{as("x"), evUserInfo, `{"userIds":["o"]}`, 200},
			{as("m"), evGroupLeave, `{"groupId":"g"}`, 200},
			{as("m"), evGroupInfo, `{"groupId":"g"}`, 403}, // a removed member
			{as("m"), evGroupLeave, `{"groupId":"g"}`, 403},
			{as("o"), evGroupLeave, `{"groupId":"g"}`, 403}, // the owner must transfer first
		} {
			_, err := callGroup(g, c.who, c.event, c.arg)
			got := 200
			if err != nil {
				got = status(err)
			}
			if got != c.status {
				t.Fatalf("manage=%v %s %s(%s): %d (%v), want %d", manage, c.who.UserID, c.event, c.arg, got, err, c.status)
			}
		}
	}
}

func TestUserInfoOnlyContacts(t *testing.T) {
	g, as := groupGateway(t, GroupOptions{})
	got, err := callGroup(g, as("x"), evUserInfo, `{"userIds":["o","x"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if ps := got.([]chat.Profile); len(ps) != 1 || ps[0].UserID != "x" {
		t.Fatalf("x sees %+v; want only themselves", ps)
	}
	got, _ = callGroup(g, as("m"), evUserInfo, `{"userIds":["o","x"]}`)
	if ps := got.([]chat.Profile); len(ps) != 1 || ps[0].UserID != "o" {
		t.Fatalf("m sees %+v; want o (same group) only", ps)
	}
}

func TestGroupEventsRateLimit(t *testing.T) {
	g, as := groupGateway(t, GroupOptions{Rate: 0.001, Burst: 3})
	for i := 0; i < 3; i++ {
		if _, err := callGroup(g, as("m"), evMyGroups, `null`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := callGroup(g, as("m"), evMyGroups, `null`); !errors.Is(err, chat.ErrRateLimited) {
		t.Fatalf("4th event: %v", err)
	}
	// The limit is per user.
	if _, err := callGroup(g, as("o"), evMyGroups, `null`); err != nil {
		t.Fatalf("another user: %v", err)
	}
}

func TestManageApps(t *testing.T) {
	if ManageApps("") != nil || ManageApps(" , ") != nil {
		t.Fatal("empty list allows something")
	}
	m := ManageApps("a, b")
	if !m("a") || !m("b") || m("c") {
		t.Fatal("list")
	}
	if !ManageApps("*")("anything") {
		t.Fatal("*")
	}
}
