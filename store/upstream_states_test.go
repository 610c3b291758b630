package store_test

import (
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/storetest"
)

func TestMemoryUpstreamStates(t *testing.T) {
	storetest.RunUpstreamStates(t, func(t *testing.T) store.UpstreamStates { return &store.UpstreamStatesMemory{} })
}
