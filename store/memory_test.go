package store_test

import (
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}

func TestMemoryGatewaySessions(t *testing.T) {
	storetest.RunGatewaySessions(t, func(t *testing.T) store.GatewaySessions { return store.NewMemoryGatewaySessions() })
}

func TestInventoryMemoryUpstreamRecords(t *testing.T) {
	storetest.RunUpstreamRecords(t, func(t *testing.T) store.UpstreamRecords { return store.NewInventoryMemory() })
}
