package store_test

import (
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/inventorytest"
)

func TestInventoryMemoryConformance(t *testing.T) {
	inventorytest.Run(t, func(t *testing.T) inventorytest.Stores {
		return inventorytest.Stores{Identity: store.NewMemory(), Inventory: store.NewInventoryMemory()}
	})
}
