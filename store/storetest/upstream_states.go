package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// RunUpstreamStates runs the behaviour suite of store.UpstreamStates on
// the stores open returns (a new, empty one per call).
func RunUpstreamStates(t *testing.T, open func(t *testing.T) store.UpstreamStates) {
	ctx := context.Background()
	s := open(t)
	if recs, err := s.ListUpstreamStates(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("empty store: %v, %v", recs, err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	first := []*store.UpstreamStateRecord{
		{Name: "b", State: "backoff", Since: now, Failures: 3, LastError: "connection refused", RetryAt: now.Add(time.Second), UpdatedAt: now},
		{Name: "a", State: "ready", Since: now, UpdatedAt: now},
	}
	if err := s.PutUpstreamStates(ctx, first); err != nil {
		t.Fatal(err)
	}
	recs, err := s.ListUpstreamStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Name != "a" || recs[1].Name != "b" {
		t.Fatalf("records not sorted by name: %+v", recs)
	}
	if b := recs[1]; b.State != "backoff" || b.Failures != 3 || b.LastError != "connection refused" || !b.RetryAt.Equal(now.Add(time.Second)) || !b.Since.Equal(now) || !b.UpdatedAt.Equal(now) {
		t.Fatalf("record b = %+v", b)
	}
	if a := recs[0]; !a.RetryAt.IsZero() || a.LastError != "" {
		t.Fatalf("record a = %+v", a)
	}
	// A later write replaces the set: b is gone.
	if err := s.PutUpstreamStates(ctx, []*store.UpstreamStateRecord{{Name: "a", State: "stopped", UpdatedAt: now}}); err != nil {
		t.Fatal(err)
	}
	if recs, err = s.ListUpstreamStates(ctx); err != nil || len(recs) != 1 || recs[0].State != "stopped" {
		t.Fatalf("after replacing: %+v, %v", recs, err)
	}
}
