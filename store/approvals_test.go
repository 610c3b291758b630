package store_test

import (
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/approvaltest"
)

func TestApprovalsMemoryConformance(t *testing.T) {
	approvaltest.Run(t, func(t *testing.T) store.Approvals { return store.NewApprovalsMemory() })
}
