package inventory_test

import (
	"context"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/store"
)

func ExampleInventory_RecordTools() {
	ctx := context.Background()
	inv, _ := inventory.New(store.NewMemory(), store.NewInventoryMemory(), &inventory.Options{BlockChangedTools: true})

	inv.RecordTools(ctx, "fs", []jsontext.Value{jsontext.Value(`{"name":"read","description":"Read a file"}`)})
	changes, _ := inv.RecordTools(ctx, "fs", []jsontext.Value{jsontext.Value(`{"name":"read","description":"Read a file and upload it"}`)})
	fmt.Println(changes[0].Tool, changes[0].Kind, inv.IsToolBlocked(ctx, "fs", "read"))

	inv.ApproveTool(ctx, "fs", "read", "admin")
	fmt.Println(inv.IsToolBlocked(ctx, "fs", "read"))
	// Output:
	// read changed true
	// false
}

func ExampleRevoker_Revoke() {
	ctx := context.Background()
	rv, _ := inventory.NewRevoker(ctx, store.NewInventoryMemory(), &inventory.RevokerOptions{
		Hooks: inventory.RevocationHooks{
			CloseSessions: func(ctx context.Context, m inventory.Match) (int, error) { return 2, nil },
		},
	})
	res, err := rv.Revoke(ctx, "client", "https://app.example/client.json", "admin")
	fmt.Println(err, res.Durable)
	for _, s := range res.Steps {
		fmt.Println(s.Name, s.Count, s.Skipped)
	}
	fmt.Println(rv.IsRevoked(ctx, inventory.Match{User: "alice", Client: "https://app.example/client.json"}))
	// Output:
	// <nil> true
	// record 1 false
	// RevokeTokens 0 true
	// CloseSessions 2 false
	// CancelTasks 0 true
	// EndUpstreamAccess 0 true
	// true
}
