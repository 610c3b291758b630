package inventory_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/store"
)

// TestDecideClient: a refusal records the status and revokes the client's
// live tokens; an unknown client and a status that is no decision are
// errors that change nothing.
func TestDecideClient(t *testing.T) {
	ctx := context.Background()
	ids := store.NewMemory()
	now := time.Now()
	if err := ids.PutClient(ctx, &store.Client{ID: "c1", Kind: store.ClientDynamic, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := ids.RecordAccessToken(ctx, &store.AccessToken{ID: "t1", FamilyID: "f1", ClientID: "c1", Subject: "alice", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := inventory.DecideClient(ctx, ids, nil, "c1", store.ClientRefused, "admin", "unknown vendor", nil)
	if err != nil || d.Err != nil {
		t.Fatalf("refuse: %v %v", err, d)
	}
	if !strings.Contains(d.Detail, "dynamic client refused (was undecided); 1 live tokens revoked") || !strings.Contains(d.Detail, `reason "unknown vendor"`) {
		t.Errorf("detail %q", d.Detail)
	}
	if c, _ := ids.GetClient(ctx, "c1"); c.Status != store.ClientRefused || c.StatusBy != "admin" {
		t.Errorf("client after refusal: %+v", c)
	}
	if revoked, _ := ids.IsAccessTokenRevoked(ctx, "t1"); !revoked {
		t.Error("the refused client's token is still live")
	}
	if _, err := inventory.DecideClient(ctx, ids, nil, "nobody", store.ClientApproved, "admin", "", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown client: %v", err)
	}
	if _, err := inventory.DecideClient(ctx, ids, nil, "c1", store.ClientPending, "admin", "", nil); err == nil {
		t.Error("a pending status was accepted as a decision")
	}
	if c, _ := ids.GetClient(ctx, "c1"); c.Status != store.ClientRefused {
		t.Errorf("a refused decision changed the status to %q", c.Status)
	}
}
