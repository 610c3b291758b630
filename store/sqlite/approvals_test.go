package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/approvaltest"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

func TestApprovalsConformance(t *testing.T) {
	approvaltest.Run(t, func(t *testing.T) store.Approvals {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "approvals.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

func TestApprovalsConformanceInMemoryDB(t *testing.T) {
	approvaltest.Run(t, func(t *testing.T) store.Approvals {
		st, err := sqlite.Open(context.Background(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

// TestApprovalsSurviveReopen checks that approvals are durable: a decision
// made before a restart is seen after it.
func TestApprovalsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "approvals.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 9, 0, 0, 1, time.UTC)
	a := &store.ApprovalRecord{ID: "a1", Binding: "b1", Principal: "alice", Tool: "t", Arguments: []byte(`{"x":1}`),
		Status: store.ApprovalPending, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	if _, _, err := st.CreateApproval(ctx, a, now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DecideApproval(ctx, "a1", store.ApprovalApproved, "carol", "ok", now); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.ConsumeApproval(ctx, "a1", now)
	if err != nil || got.Status != store.ApprovalConsumed || string(got.Arguments) != `{"x":1}` {
		t.Fatalf("after reopen: ConsumeApproval = %+v, %v", got, err)
	}
}
