package store_test

import (
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/upstreamtokenstest"
)

func TestUpstreamTokensMemory(t *testing.T) {
	upstreamtokenstest.Run(t, func(t *testing.T) store.UpstreamTokenStore { return store.NewUpstreamTokensMemory() })
}
