package gateway

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
)

// TestHeldTaskSurvivesRestart: a task waiting for its approval when the
// gateway stops is held again by the next gateway on the same stores;
// approved then, its call runs and the task completes; its result is kept
// (sealed) and answered by a third gateway, which never held it. A held
// task that was running its approved call when the gateway stopped ends
// as failed with the reason, and is not run twice.
func TestHeldTaskSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(approvalTaskPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(&policy.Options{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	tasks, approvalStore := store.NewMemoryGatewayTasks(), store.NewApprovalsMemory()
	up := config.Upstream{Name: "up", URL: controlledUpstream(t), Prefix: ptr("")}
	// start starts a gateway on the shared stores and key.
	start := func() (*Gateway, string, *approval.Service) {
		t.Helper()
		var g *Gateway
		approvals := approval.New(approvalStore, &approval.Options{
			BaseURL:    "http://gateway.test/approvals",
			OnDecision: func(a *approval.Approval) { g.ApprovalDecided(a) },
		})
		g, err := New(&config.Config{Upstreams: []config.Upstream{up}}, &Options{
			Principal: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
			Policy:    eng, Approvals: approvals, Tasks: tasks,
			TaskResultKey: filepath.Join(dir, "task-results.key"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return g, userHeaderGateway(t, g), approvals
	}

	g1, url1, _ := start()
	alice := connectAs(t, url1, "alice")
	created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "echo", Arguments: jsontext.Value(`{"path":"/kept"}`)},
		&mcp.TaskMetadata{TTL: ms(time.Hour)})
	if err != nil || created.Task.Status != mcp.TaskStatusInputRequired {
		t.Fatalf("created: %+v %v", created, err)
	}
	id := created.Task.TaskID
	aid := heldApproval(t, g1, id)
	if rec, _ := tasks.GetGatewayTask(ctx, id); rec.HeldCall == nil || strings.Contains(string(rec.HeldCall), "/kept") {
		t.Fatalf("held call not kept sealed: %q", rec.HeldCall)
	}
	alice.Close()
	g1.Close()

	g2, url2, approvals2 := start()
	defer g2.Close()
	if g2.heldOf(id) == nil {
		t.Fatal("the restarted gateway does not hold the task again")
	}
	if err := approvals2.Decide(ctx, aid, "carol", true, "ok"); err != nil {
		t.Fatal(err)
	}
	alice2 := connectAs(t, url2, "alice")
	res, err := alice2.GetTaskResult(ctx, &mcp.GetTaskPayloadParams{TaskID: id})
	if err != nil || res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, `"/kept"`) {
		t.Fatalf("result after restart and approval: %+v %v", res, err)
	}
	rec, _ := tasks.GetGatewayTask(ctx, id)
	if rec.Status != string(mcp.TaskStatusCompleted) || rec.HeldCall != nil || rec.ResultSealed == nil || rec.ResultDigest == "" {
		t.Fatalf("record after completion: status %s, held call %v, sealed result %v, digest %q", rec.Status, rec.HeldCall != nil, rec.ResultSealed != nil, rec.ResultDigest)
	}
	alice2.Close()
	g2.Close()

	// A third gateway never held it: the kept result answers.
	g3, url3, _ := start()
	defer g3.Close()
	alice3 := connectAs(t, url3, "alice")
	res, err = alice3.GetTaskResult(ctx, &mcp.GetTaskPayloadParams{TaskID: id})
	if err != nil || res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, `"/kept"`) {
		t.Fatalf("kept result from a third gateway: %+v %v", res, err)
	}
	if _, err := connectAs(t, url3, "bob").GetTaskResult(ctx, &mcp.GetTaskPayloadParams{TaskID: id}); err == nil {
		t.Fatal("bob fetched alice's kept result")
	}

	// A held task recorded as running its approved call when the gateway
	// stopped ends as failed, with why.
	running := &store.GatewayTask{ID: "running-1", Principal: "alice", Upstream: "up", Tool: "echo", ApprovalID: "a-x",
		Status: string(mcp.TaskStatusWorking), CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(), HeldCall: []byte("x")}
	if err := tasks.PutGatewayTask(ctx, running); err != nil {
		t.Fatal(err)
	}
	g4, _, _ := start()
	defer g4.Close()
	rec, _ = tasks.GetGatewayTask(ctx, "running-1")
	if rec.Status != string(mcp.TaskStatusFailed) || rec.StatusMessage != restartRunningHeldMessage || rec.HeldCall != nil {
		t.Fatalf("running held task after restart: %s %q (held call kept: %v)", rec.Status, rec.StatusMessage, rec.HeldCall != nil)
	}
}
