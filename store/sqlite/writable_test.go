package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

func TestCheckWritable(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWritable(ctx); err != nil {
		t.Fatalf("open database: %v", err)
	}
	s.Close()
	if err := s.CheckWritable(ctx); err == nil {
		t.Fatal("closed database reported writable")
	}
}
