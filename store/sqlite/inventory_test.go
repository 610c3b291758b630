package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/inventorytest"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

func TestInventoryConformance(t *testing.T) {
	inventorytest.Run(t, func(t *testing.T) inventorytest.Stores {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "inv.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return inventorytest.Stores{Identity: s, Inventory: s}
	})
}

func TestRevocationSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "inv.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutRevocation(ctx, &store.Revocation{Kind: store.RevokeClient, ID: "c1", By: "admin"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	list, err := s.ListRevocations(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "c1" || list[0].By != "admin" {
		t.Fatalf("after reopen: %+v, %v", list, err)
	}
}
