package inventory_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// Flags survive a restart: a tool and a client changed before the
// gateway stopped are still blocked when it starts again.
func TestFlagsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	opts := &inventory.Options{BlockChangedClients: true, BlockChangedTools: true}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := inventory.New(db, db, opts)
	k := jwk(t)
	if _, err := inv.RecordClientMetadata(ctx, cimdID, clientDoc("App", []string{"https://app.example/cb"}, k)); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.RecordClientMetadata(ctx, cimdID, clientDoc("App", []string{"https://app.example/cb"}, jwk(t))); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.RecordTools(ctx, "fs", []jsontext.Value{tool("read", "v1"), tool("write", "v1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.RecordTools(ctx, "fs", []jsontext.Value{tool("read", "v2"), tool("write", "v1")}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inv, _ = inventory.New(db, db, opts)
	if !inv.IsClientBlocked(ctx, cimdID) || !inv.IsToolBlocked(ctx, "fs", "read") || inv.IsToolBlocked(ctx, "fs", "write") {
		t.Fatal("flags lost across restart")
	}
	// The same definition seen again after restart stays blocked.
	ch, err := inv.RecordTools(ctx, "fs", []jsontext.Value{tool("read", "v2"), tool("write", "v1")})
	if err != nil || len(ch) != 0 || !inv.IsToolBlocked(ctx, "fs", "read") {
		t.Fatalf("after restart: %+v, %v", ch, err)
	}
	if err := inv.ApproveTool(ctx, "fs", "read", "admin"); err != nil {
		t.Fatal(err)
	}
	if inv.IsToolBlocked(ctx, "fs", "read") {
		t.Error("still blocked after approval")
	}
}

// brokenToolStore fails every tool write.
type brokenToolStore struct{ store.InventoryStore }

func (brokenToolStore) PutToolRecords(context.Context, []*store.ToolRecord) error {
	return errors.New("database is locked")
}

func TestRecordToolsStoreFailure(t *testing.T) {
	ctx := context.Background()
	var ev events
	inv, _ := inventory.New(store.NewMemory(), brokenToolStore{store.NewInventoryMemory()}, &inventory.Options{OnEvent: ev.add, BlockChangedTools: true})
	ch, err := inv.RecordTools(ctx, "fs", []jsontext.Value{tool("read", "v1")})
	if err == nil || len(ch) != 0 {
		t.Fatalf("RecordTools = %+v, %v; want the store error", ch, err)
	}
	if len(ev.kinds()) != 0 {
		t.Errorf("events emitted for changes that were not recorded: %v", ev.kinds())
	}
}
