package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/store/upstreamtokenstest"
)

func TestUpstreamTokens(t *testing.T) {
	upstreamtokenstest.Run(t, func(t *testing.T) store.UpstreamTokenStore {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
