package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/store/storetest"
)

func openSQLite(t *testing.T) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteGatewaySessions(t *testing.T) {
	storetest.RunGatewaySessions(t, func(t *testing.T) store.GatewaySessions { return openSQLite(t) })
}

func TestSQLiteUpstreamRecords(t *testing.T) {
	storetest.RunUpstreamRecords(t, func(t *testing.T) store.UpstreamRecords { return openSQLite(t) })
}

func TestSQLiteUpstreamStates(t *testing.T) {
	storetest.RunUpstreamStates(t, func(t *testing.T) store.UpstreamStates { return openSQLite(t) })
}

func TestSQLiteGatewayTaskCounts(t *testing.T) {
	storetest.RunGatewayTaskCounts(t, func(t *testing.T) storetest.TaskCountingStore { return openSQLite(t) })
}
