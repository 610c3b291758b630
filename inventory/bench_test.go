package inventory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/store"
)

func BenchmarkIsToolBlocked(b *testing.B) {
	ctx := context.Background()
	inv, _ := inventory.New(store.NewMemory(), store.NewInventoryMemory(), &inventory.Options{BlockChangedTools: true})
	if _, err := inv.RecordTools(ctx, "fs", []jsontext.Value{tool("read", "Read")}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if inv.IsToolBlocked(ctx, "fs", "read") {
			b.Fatal("blocked")
		}
	}
}

func BenchmarkIsRevoked(b *testing.B) {
	ctx := context.Background()
	rv, _ := inventory.NewRevoker(ctx, store.NewInventoryMemory(), nil)
	for i := range 100 {
		rv.Revoke(ctx, "user", fmt.Sprintf("user-%d", i), "admin")
	}
	m := inventory.Match{User: "alice", Client: "c1", Grant: "fam"}
	b.ReportAllocs()
	for b.Loop() {
		if rv.IsRevoked(ctx, m) {
			b.Fatal("revoked")
		}
	}
}

func BenchmarkRecordToolsUnchanged(b *testing.B) {
	ctx := context.Background()
	inv, _ := inventory.New(store.NewMemory(), store.NewInventoryMemory(), nil)
	var tools []jsontext.Value
	for i := range 50 {
		tools = append(tools, tool(fmt.Sprintf("tool%d", i), "A tool that does something useful with files"))
	}
	if _, err := inv.RecordTools(ctx, "fs", tools); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := inv.RecordTools(ctx, "fs", tools); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTouchClient(b *testing.B) {
	ctx := context.Background()
	inv, _ := inventory.New(store.NewMemory(), store.NewInventoryMemory(), nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := inv.TouchClient(ctx, "https://app.example/client.json"); err != nil {
			b.Fatal(err)
		}
	}
}
