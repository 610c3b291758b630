package app

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/store"
)

// announcingStore is a changeWatcher whose announcements the test makes.
type announcingStore struct {
	fn  func(kind, id string)
	err error
}

func (s *announcingStore) WatchChanges(_ context.Context, fn func(kind, id string)) error {
	s.fn = fn
	return s.err
}

// TestChangeFeedRevocations checks that an announced revocation, recorded
// by another process, is applied at once (its hooks run), although the
// revoker's own poll would not look for an hour; and that a store that
// cannot listen is an error.
func TestChangeFeedRevocations(t *testing.T) {
	ctx := context.Background()
	a := &App{logger: slog.New(slog.DiscardHandler)}
	defer a.Close()
	st := &announcingStore{}
	feed, err := a.watchChanges(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	inv := store.NewInventoryMemory()
	closed := make(chan inventory.Match, 1)
	rv, err := inventory.NewRevoker(ctx, inv, &inventory.RevokerOptions{
		RefreshInterval: time.Hour,
		Hooks: inventory.RevocationHooks{CloseSessions: func(_ context.Context, m inventory.Match) (int, error) {
			closed <- m
			return 1, nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The feed applies what was recorded before it had the revoker:
	// once "early" is applied, that first pass is over.
	if err := inv.PutRevocation(ctx, &store.Revocation{Kind: store.RevokeUser, ID: "early", By: "cli", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	feed.setTargets(rv, nil)
	select {
	case m := <-closed:
		if m.User != "early" {
			t.Fatalf("sessions closed for %+v, want early's", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the revocation recorded before the revoker was given was not applied within 30 s")
	}
	// Recorded by another process: this revoker does not know it.
	if err := inv.PutRevocation(ctx, &store.Revocation{Kind: store.RevokeUser, ID: "mallory", By: "cli", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if rv.IsRevoked(ctx, inventory.Match{User: "mallory"}) {
		t.Fatal("the revoker saw the revocation before it was announced (the test proves nothing)")
	}
	st.fn(changeRevocations, "")
	select {
	case m := <-closed:
		if m.User != "mallory" {
			t.Errorf("sessions closed for %+v, want mallory's", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the announced revocation was not applied within 30 s")
	}
	if !rv.IsRevoked(ctx, inventory.Match{User: "mallory"}) {
		t.Error("the revoker does not count the announced revocation")
	}

	broken := &announcingStore{err: errors.New("no connection")}
	if _, err := a.watchChanges(ctx, broken); err == nil {
		t.Error("watchChanges on a store that cannot listen: no error")
	}
}
