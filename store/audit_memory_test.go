package store_test

import (
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/audittest"
)

func TestAuditMemoryConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) store.AuditLog { return store.NewAuditMemory() })
}
