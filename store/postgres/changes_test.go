package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
)

// TestChangesPushed checks that revocations, client decisions and ended
// sessions written through one store are announced to a watch on another
// (another process, in production), and that writes that are none of
// these announce nothing.
func TestChangesPushed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.URL(t)
	a, b := openURL(t, url), openURL(t, url)
	type change struct{ kind, id string }
	ch := make(chan change, 64)
	if err := a.WatchChanges(ctx, func(kind, id string) { ch <- change{kind, id} }); err != nil {
		t.Fatal(err)
	}
	want := func(kind, id string) {
		t.Helper()
		select {
		case c := <-ch:
			if c.kind != kind || c.id != id {
				t.Fatalf("change %+v, want %s %q", c, kind, id)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s change within 30 s", kind)
		}
	}
	now := time.Now()
	if err := b.PutRevocation(ctx, &store.Revocation{Kind: store.RevokeUser, ID: "alice", By: "test", At: now}); err != nil {
		t.Fatal(err)
	}
	want(postgres.ChangeRevocations, "")
	// Marking a revocation applied is no new revocation.
	if err := b.MarkRevocationApplied(ctx, store.RevokeUser, "alice", now, "applied"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteRevocation(ctx, store.RevokeUser, "alice"); err != nil {
		t.Fatal(err)
	}
	want(postgres.ChangeRevocations, "")
	if err := b.CreateClient(ctx, &store.Client{ID: "c1", Kind: store.ClientPreRegistered, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	want(postgres.ChangeClients, "")
	if err := b.SetClientStatus(ctx, "c1", store.ClientApproved, "admin", now); err != nil {
		t.Fatal(err)
	}
	want(postgres.ChangeClients, "")
	if err := b.PutGatewaySession(ctx, &store.GatewaySession{ID: "s1", Principal: "alice", CreatedAt: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	if err := b.TouchGatewaySession(ctx, "s1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.EndGatewaySession(ctx, "s1", now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	want(postgres.ChangeSessionEnded, "s1")
	// Ending it again changes nothing and announces nothing; the next
	// announcement is the next change.
	if err := b.EndGatewaySession(ctx, "s1", now.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutRevocation(ctx, &store.Revocation{Kind: store.RevokeClient, ID: "c1", By: "test", At: now}); err != nil {
		t.Fatal(err)
	}
	want(postgres.ChangeRevocations, "")
}
