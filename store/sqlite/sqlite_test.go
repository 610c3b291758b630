package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "odd name?#%.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &store.User{Username: "kept"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	if want := latestMigration(t); err != nil || v != want {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, want)
	}
	if _, err := s.GetUser(ctx, "kept"); err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
}

// latestMigration returns the number of the newest migration file.
func latestMigration(t *testing.T) int {
	t.Helper()
	names, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	latest := 0
	for _, n := range names {
		base := filepath.Base(n)
		num, err := strconv.Atoi(base[:strings.IndexByte(base, '_')])
		if err != nil {
			t.Fatalf("migration %s: %v", base, err)
		}
		latest = max(latest, num)
	}
	return latest
}

func TestMemoryDatabase(t *testing.T) {
	s, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(context.Background(), &store.User{Username: "x"}); err != nil {
		t.Fatal(err)
	}
}

func TestFileIsCreatedWhereAsked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "with space.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
}
