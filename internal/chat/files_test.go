package chat

import (
	"context"
	"errors"
	"testing"

	"github.com/chatd/chatd/internal/store"
)

func TestFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ctx := context.Background()
	rec := fileRecord(f.app.ID, "0123456789abcdef0123456789abcdef")
	if err := f.svc.RecordFile(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.File(ctx, f.app.ID, rec.ID)
	if err != nil || got.Key != rec.Key || got.Size != rec.Size || got.ContentType != rec.ContentType {
		t.Fatalf("File = %+v, %v; want %+v", got, err, rec)
	}
	other, err := f.svc.CreateApp(ctx, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, app, fid string }{
		{"unknown id", f.app.ID, "ffffffffffffffffffffffffffffffff"},
		{"another app's file", other.ID, rec.ID},
	} {
		if _, err := f.svc.File(ctx, tc.app, tc.fid); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", tc.name, err)
		}
	}
}

func TestEnsureApp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	ctx := context.Background()
	const id = "de0de0de0de0de0de0de0de0"
	if err := f.svc.EnsureApp(ctx, id, "demo", "d"); err != nil {
		t.Fatal(err)
	}
	first, err := f.svc.App(ctx, id)
	if err != nil || first.Name != "demo" || len(first.Secret) != 2*appSecretBytes {
		t.Fatalf("App = %+v, %v", first, err)
	}
	if err := f.svc.EnsureApp(ctx, id, "renamed", ""); err != nil {
		t.Fatal(err)
	}
	again, err := f.svc.App(ctx, id)
	if err != nil || again.Secret != first.Secret || again.Name != "demo" {
		t.Fatalf("a second EnsureApp changed the app: %+v, %v", again, err)
	}
	if err := f.svc.EnsureApp(ctx, "not an id", "x", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad id: err = %v, want ErrInvalid", err)
	}
}

func fileRecord(appID, fid string) store.File {
	return store.File{ID: fid, AppID: appID, UserID: "alice", Key: appID + "-" + fid + ".png", Name: "a.png", Size: 3, ContentType: "image/png"}
}
