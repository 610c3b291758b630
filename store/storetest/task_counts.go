package storetest

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// TaskCountingStore is a GatewayTasks store that counts its records.
type TaskCountingStore interface {
	store.GatewayTasks
	store.GatewayTaskCounter
}

// RunGatewayTaskCounts runs the behaviour suite of
// store.GatewayTaskCounter on the stores open returns (a new, empty one
// per call): records are counted by status, expired ones are not.
func RunGatewayTaskCounts(t *testing.T, open func(t *testing.T) TaskCountingStore) {
	ctx := context.Background()
	s := open(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	if got, err := s.CountGatewayTasks(ctx, now); err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v, %v", got, err)
	}
	for i, tc := range []struct {
		status  string
		expires time.Time
	}{
		{"working", time.Time{}},
		{"working", now.Add(time.Hour)},
		{"completed", now.Add(time.Hour)},
		{"failed", now.Add(-time.Second)}, // expired: not counted
		{"input_required", now},           // expires at now: still counted
	} {
		rec := &store.GatewayTask{ID: "t" + string(rune('a'+i)), Principal: "alice", Upstream: "up", Status: tc.status,
			CreatedAt: now.Add(-time.Minute), UpdatedAt: now, ExpiresAt: tc.expires}
		if err := s.PutGatewayTask(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.CountGatewayTasks(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"working": 2, "completed": 1, "input_required": 1}
	if !maps.Equal(got, want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}
