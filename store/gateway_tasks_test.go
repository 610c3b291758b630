package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/store/storetest"
)

// TestGatewayTasks runs the same checks against both implementations.
func TestGatewayTasks(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, st := range map[string]store.GatewayTasks{"memory": store.NewMemoryGatewayTasks(), "sqlite": db} {
		t.Run(name, func(t *testing.T) {
			now := time.Now().UTC().Truncate(time.Millisecond)
			a := &store.GatewayTask{ID: "g1", Principal: "alice", ClientID: "app", Upstream: "up", UpstreamTaskID: "u1", Status: "working", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
			b := &store.GatewayTask{ID: "g2", Principal: "bob", Upstream: "up", UpstreamTaskID: "u2", Status: "working", CreatedAt: now.Add(time.Second), UpdatedAt: now, ExpiresAt: now.Add(-time.Second)}
			for _, x := range []*store.GatewayTask{a, b} {
				if err := st.PutGatewayTask(ctx, x); err != nil {
					t.Fatal(err)
				}
			}
			got, err := st.GetGatewayTask(ctx, "g1")
			if err != nil || got.Principal != "alice" || got.ClientID != "app" || got.UpstreamTaskID != "u1" || !got.CreatedAt.Equal(now) {
				t.Fatalf("get: %+v %v", got, err)
			}
			a.Status, a.StatusMessage = "completed", "done"
			if err := st.PutGatewayTask(ctx, a); err != nil {
				t.Fatal(err)
			}
			if got, err := st.FindGatewayTask(ctx, "up", "u1"); err != nil || got.ID != "g1" || got.Status != "completed" {
				t.Fatalf("find: %+v %v", got, err)
			}
			a.Profile, a.UpstreamSession, a.UpstreamProtocol, a.UpstreamInit = "ef", "sess-1", "2025-11-25", []byte(`{"capabilities":{}}`)
			a.ResultSealed, a.ResultDigest, a.ResultSize = []byte{1, 2, 3}, "sha256:00", 3
			a.HeldCall = []byte{7, 8}
			if err := st.PutGatewayTask(ctx, a); err != nil {
				t.Fatal(err)
			}
			a.ResultSealed[0] = 9 // the store kept its own copy
			got, err = st.GetGatewayTask(ctx, "g1")
			if err != nil || got.Profile != "ef" || got.UpstreamSession != "sess-1" || got.UpstreamProtocol != "2025-11-25" ||
				string(got.UpstreamInit) != `{"capabilities":{}}` || string(got.ResultSealed) != "\x01\x02\x03" || got.ResultDigest != "sha256:00" || got.ResultSize != 3 ||
				string(got.HeldCall) != "\x07\x08" {
				t.Fatalf("get with session state and result: %+v %v", got, err)
			}
			if _, err := st.GetGatewayTask(ctx, "nope"); err == nil {
				t.Fatal("unknown task found")
			}
			if l, _ := st.ListGatewayTasks(ctx, "alice"); len(l) != 1 || l[0].ID != "g1" {
				t.Fatalf("list alice: %+v", l)
			}
			if l, _ := st.ListGatewayTasks(ctx, ""); len(l) != 2 || l[0].ID != "g1" {
				t.Fatalf("list all: %+v", l)
			}
			if n, err := st.DeleteExpiredGatewayTasks(ctx, now); err != nil || n != 1 {
				t.Fatalf("delete expired: %d %v", n, err)
			}
			if _, err := st.GetGatewayTask(ctx, "g2"); err == nil {
				t.Fatal("expired task kept")
			}
		})
	}
}

// TestGatewayTaskGovernance checks the task governance fields: the tool,
// the approval of a held task, held tasks without upstream task ids, and
// the cancel requests.
func TestGatewayTaskGovernance(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, st := range map[string]store.GatewayTasks{"memory": store.NewMemoryGatewayTasks(), "sqlite": db} {
		t.Run(name, func(t *testing.T) {
			now := time.Now().UTC()
			// Two held tasks of one upstream: neither has an upstream task id.
			for _, id := range []string{"h1", "h2"} {
				h := &store.GatewayTask{ID: id, Principal: "alice", Upstream: "up", Tool: "up_deploy", ApprovalID: "ap-" + id,
					Status: "input_required", CreatedAt: now, UpdatedAt: now}
				if err := st.PutGatewayTask(ctx, h); err != nil {
					t.Fatalf("put held %s: %v", id, err)
				}
			}
			got, err := st.GetGatewayTask(ctx, "h2")
			if err != nil || got.Tool != "up_deploy" || got.ApprovalID != "ap-h2" || !got.Held() {
				t.Fatalf("get held: %+v %v", got, err)
			}
			if _, err := st.FindGatewayTask(ctx, "up", ""); err == nil {
				t.Fatal("a held task was found by an empty upstream task id")
			}
			got.Status, got.StatusMessage = "cancelled", store.TaskCancelRequested
			if err := st.PutGatewayTask(ctx, got); err != nil {
				t.Fatal(err)
			}
			l, err := st.ListCancelRequestedGatewayTasks(ctx)
			if err != nil || len(l) != 1 || l[0].ID != "h2" {
				t.Fatalf("cancel requested: %+v %v", l, err)
			}
		})
	}
}

func TestMemoryGatewayTaskCounts(t *testing.T) {
	storetest.RunGatewayTaskCounts(t, func(t *testing.T) storetest.TaskCountingStore { return store.NewMemoryGatewayTasks() })
}
