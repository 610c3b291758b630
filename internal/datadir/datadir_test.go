package datadir_test

import (
	"context"
	"os"
	"testing"

	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestOpenDB checks the store selection: SQLite in the data directory
// without a URL, PostgreSQL with one, and a clear error for a URL of
// another kind.
func TestOpenDB(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := datadir.OpenDB(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := db.(*sqlite.Store); !ok {
		t.Errorf("without a URL: %T, want SQLite", db)
	}
	db.Close()
	if _, err := os.Stat(datadir.Database(dir)); err != nil {
		t.Errorf("no SQLite database in the data directory: %v", err)
	}

	db, err = datadir.OpenDB(ctx, t.TempDir(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := db.(*postgres.Store); !ok {
		t.Errorf("with a URL: %T, want PostgreSQL", db)
	}
	db.Close()

	if db, err := datadir.OpenDB(ctx, dir, "mysql://h/db"); err == nil || db != nil {
		t.Errorf("mysql URL: %v, %v", db, err)
	}
	if db, err := datadir.OpenDB(ctx, "", ""); err == nil || db != nil {
		t.Errorf("no data directory: %v, %v", db, err)
	}
}
