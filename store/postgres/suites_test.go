package postgres_test

import (
	"context"
	"testing"

	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/approvaltest"
	"github.com/mcpgate/mcpgate/store/audittest"
	"github.com/mcpgate/mcpgate/store/inventorytest"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/store/storetest"
	"github.com/mcpgate/mcpgate/store/upstreamtokenstest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openURL opens a Store on url, closed when t ends.
func openURL(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// open opens a Store on a new database.
func open(t *testing.T) *postgres.Store {
	t.Helper()
	return openURL(t, pgtest.URL(t))
}

// The behaviour suites, run as store/sqlite runs them.

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestAuditConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) store.AuditLog { return open(t) })
}

func TestApprovalsConformance(t *testing.T) {
	approvaltest.Run(t, func(t *testing.T) store.Approvals { return open(t) })
}

func TestInventoryConformance(t *testing.T) {
	inventorytest.Run(t, func(t *testing.T) inventorytest.Stores {
		s := open(t)
		return inventorytest.Stores{Identity: s, Inventory: s}
	})
}

func TestUpstreamTokens(t *testing.T) {
	upstreamtokenstest.Run(t, func(t *testing.T) store.UpstreamTokenStore { return open(t) })
}

func TestPostgresGatewaySessions(t *testing.T) {
	storetest.RunGatewaySessions(t, func(t *testing.T) store.GatewaySessions { return open(t) })
}

func TestPostgresUpstreamRecords(t *testing.T) {
	storetest.RunUpstreamRecords(t, func(t *testing.T) store.UpstreamRecords { return open(t) })
}

func TestPostgresUpstreamStates(t *testing.T) {
	storetest.RunUpstreamStates(t, func(t *testing.T) store.UpstreamStates { return open(t) })
}

func TestPostgresGatewayTaskCounts(t *testing.T) {
	storetest.RunGatewayTaskCounts(t, func(t *testing.T) storetest.TaskCountingStore { return open(t) })
}
