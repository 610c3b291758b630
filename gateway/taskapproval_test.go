package gateway

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
)

const approvalTaskPolicies = `
@id("all") permit(principal, action, resource);
@id("echo-needs-approval") @approval("required")
permit(principal, action == Action::"tools/call", resource == Tool::"up/echo");
`

// approvalGateway serves controlledUpstream under policies that send
// up/echo to approval.
func approvalGateway(t *testing.T, ttl time.Duration) (*Gateway, string, *approval.Service, *store.AuditMemory) {
	return approvalGatewayWith(t, ttl, config.Upstream{Name: "up", URL: controlledUpstream(t), Prefix: ptr("")}, approvalTaskPolicies)
}

// approvalGatewayWith serves up under the policies pol, with an approval
// service whose approvals expire after ttl (0: the default).
func approvalGatewayWith(t *testing.T, ttl time.Duration, up config.Upstream, pol string) (*Gateway, string, *approval.Service, *store.AuditMemory) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(&policy.Options{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewAuditMemory()
	alog, err := audit.New(st, &audit.Options{KeyPath: filepath.Join(dir, "audit.key")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	var g *Gateway
	approvals := approval.New(store.NewApprovalsMemory(), &approval.Options{
		BaseURL:    "http://gateway.test/approvals",
		TTL:        ttl,
		OnDecision: func(a *approval.Approval) { g.ApprovalDecided(a) },
	})
	g, err = New(&config.Config{Upstreams: []config.Upstream{up}}, &Options{
		Principal: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		Policy:    eng, Audit: alog, Approvals: approvals,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, userHeaderGateway(t, g), approvals, st
}

// heldApproval returns the approval id a held task waits for.
func heldApproval(t *testing.T, g *Gateway, id string) string {
	t.Helper()
	rec, err := g.taskStore.GetGatewayTask(context.Background(), id)
	if err != nil || rec.ApprovalID == "" || !rec.Held() {
		t.Fatalf("held task record: %+v %v", rec, err)
	}
	return rec.ApprovalID
}

// TestApprovalInsideTask: a task-augmented call that needs approval
// becomes a task waiting in input_required; approved, it runs and
// completes with the call's result; denied, it fails with the reason;
// cancelled by its owner, it ends as cancelled. Every change is audited.
func TestApprovalInsideTask(t *testing.T) {
	g, url, approvals, st := approvalGateway(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var res *mcp.CallToolResult
	notes := make(chan string, 64)
	alice, err := mcp.NewClient(&mcp.Implementation{Name: "alice", Version: "1"}, &mcp.ClientOptions{
		TaskStatusHandler: func(_ context.Context, _ *mcp.ClientSession, p *mcp.TaskStatusNotificationParams) {
			select {
			case notes <- p.TaskID + " " + string(p.Status):
			default:
			}
		},
	}).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: userTransport{"alice"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob := connectAs(t, url, "bob")

	start := func(path string) *mcp.Task {
		t.Helper()
		created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "echo", Arguments: jsontext.Value(`{"path":"` + path + `"}`)},
			&mcp.TaskMetadata{TTL: ms(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		task := created.Task
		if task.Status != mcp.TaskStatusInputRequired || !strings.Contains(task.StatusMessage, "http://gateway.test/approvals/") {
			t.Fatalf("created task: %+v", task)
		}
		return &task
	}

	// Approved: the call runs, the task completes with its result.
	task := start("/a")
	aid := heldApproval(t, g, task.TaskID)
	if !strings.Contains(task.StatusMessage, aid) {
		t.Errorf("status message %q does not name approval %s", task.StatusMessage, aid)
	}
	if got, err := alice.GetTask(ctx, &mcp.GetTaskParams{TaskID: task.TaskID}); err != nil || got.Status != mcp.TaskStatusInputRequired {
		t.Fatalf("get while waiting: %+v %v", got, err)
	}
	if l, err := alice.ListTasks(ctx, nil); err != nil || len(l.Tasks) != 1 || l.Tasks[0].Status != mcp.TaskStatusInputRequired {
		t.Fatalf("list while waiting: %+v %v", l, err)
	}
	if _, err := bob.GetTask(ctx, &mcp.GetTaskParams{TaskID: task.TaskID}); err == nil {
		t.Error("bob sees alice's held task")
	}
	if err := approvals.Decide(ctx, aid, "carol", true, "ok"); err != nil {
		t.Fatal(err)
	}
	res, err = alice.GetTaskResult(ctx, &mcp.GetTaskPayloadParams{TaskID: task.TaskID})
	if err != nil || res.IsError || len(res.Content) != 1 || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, `"/a"`) {
		t.Fatalf("result of the approved task: %+v %v", res, err)
	}
	if got, err := alice.GetTask(ctx, &mcp.GetTaskParams{TaskID: task.TaskID}); err != nil || got.Status != mcp.TaskStatusCompleted {
		t.Fatalf("get after approval: %+v %v", got, err)
	}
	// The owner's session was told of each change.
	for _, want := range []string{task.TaskID + " working", task.TaskID + " completed"} {
		for got := ""; got != want; {
			select {
			case got = <-notes:
			case <-ctx.Done():
				t.Fatalf("no notifications/tasks/status %q", want)
			}
		}
	}

	// Denied: the task fails with the reason.
	task = start("/b")
	if err := approvals.Decide(ctx, heldApproval(t, g, task.TaskID), "carol", false, "not today"); err != nil {
		t.Fatal(err)
	}
	_, err = alice.GetTaskResult(ctx, &mcp.GetTaskPayloadParams{TaskID: task.TaskID})
	if jsonrpc.ErrorCode(err) != CodePolicyDenied || !strings.Contains(err.Error(), "not today") {
		t.Fatalf("result of the denied task: %v", err)
	}
	got, err := alice.GetTask(ctx, &mcp.GetTaskParams{TaskID: task.TaskID})
	if err != nil || got.Status != mcp.TaskStatusFailed || !strings.Contains(got.StatusMessage, `denied by approver "carol"`) || !strings.Contains(got.StatusMessage, "not today") {
		t.Fatalf("get after denial: %+v %v", got, err)
	}

	// The same call again is refused at once while the denial stands.
	_, err = alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "echo", Arguments: jsontext.Value(`{"path":"/b"}`)}, &mcp.TaskMetadata{})
	if jsonrpc.ErrorCode(err) != CodePolicyDenied || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("the denied call again: %v", err)
	}

	// Cancelled by its owner while waiting.
	task = start("/c")
	if c, err := alice.CancelTask(ctx, &mcp.CancelTaskParams{TaskID: task.TaskID}); err != nil || c.Status != mcp.TaskStatusCancelled {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if _, err := alice.CancelTask(ctx, &mcp.CancelTaskParams{TaskID: task.TaskID}); err == nil {
		t.Error("cancelling a cancelled task succeeded")
	}

	var trail []string
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(r.Action, "task.") || r.Action == mcp.MethodToolsCall {
			trail = append(trail, r.Action+" "+r.Outcome+" "+r.Phase)
		}
	}
	joined := strings.Join(trail, "\n")
	for _, want := range []string{"tools/call approval_requested decided", "task.created input_required", "task.status working",
		"tools/call approved decided", "tools/call ok completed", "task.status completed", "task.status failed", "task.status cancelled"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no audit record %q in:\n%s", want, joined)
		}
	}
}

// startHeld starts a call of echo as a task, which waits for approval.
func startHeld(t *testing.T, ctx context.Context, cs *mcp.ClientSession, path string) string {
	t.Helper()
	created, err := cs.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "echo", Arguments: jsontext.Value(`{"path":"` + path + `"}`)}, &mcp.TaskMetadata{})
	if err != nil || created.Task.Status != mcp.TaskStatusInputRequired {
		t.Fatalf("created: %+v %v", created, err)
	}
	return created.Task.TaskID
}

// TestApprovalTaskExpires: an approval that expires before anyone
// decides fails its task with the reason.
func TestApprovalTaskExpires(t *testing.T) {
	_, url, _, _ := approvalGateway(t, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := connectAs(t, url, "alice")
	id := startHeld(t, ctx, alice, "/x")
	_, err := alice.GetTaskResult(ctx, &mcp.GetTaskPayloadParams{TaskID: id})
	if jsonrpc.ErrorCode(err) != CodePolicyDenied || !strings.Contains(err.Error(), "expired before an approver approved it") {
		t.Fatalf("result of a task whose approval expired: %v", err)
	}
	got, err := alice.GetTask(ctx, &mcp.GetTaskParams{TaskID: id})
	if err != nil || got.Status != mcp.TaskStatusFailed || !strings.Contains(got.StatusMessage, "expired") {
		t.Fatalf("get: %+v %v", got, err)
	}
}

// TestHeldTaskStoppedByOperators: revoking the owner and a cancel request
// from the command line both cancel a task held for approval.
func TestHeldTaskStoppedByOperators(t *testing.T) {
	g, url, _, _ := approvalGateway(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := connectAs(t, url, "alice")
	bob := connectAs(t, url, "bob")

	id := startHeld(t, ctx, alice, "/r")
	if n, err := g.CancelTasks(ctx, "alice"); err != nil || n != 1 {
		t.Fatalf("revocation cancelled %d tasks: %v", n, err)
	}
	if rec, err := g.taskStore.GetGatewayTask(ctx, id); err != nil || rec.Status != string(mcp.TaskStatusCancelled) || rec.StatusMessage != "cancelled by revocation" {
		t.Fatalf("after revocation: %+v %v", rec, err)
	}

	id = startHeld(t, ctx, bob, "/c")
	rec, err := g.taskStore.GetGatewayTask(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	rec.Status, rec.StatusMessage = string(mcp.TaskStatusCancelled), store.TaskCancelRequested
	if err := g.taskStore.PutGatewayTask(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// tasks/result ends when the gateway carries out the request.
	if _, err := bob.GetTaskResult(ctx, &mcp.GetTaskPayloadParams{TaskID: id}); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("result of a task cancelled by an operator: %v", err)
	}
	if rec, err := g.taskStore.GetGatewayTask(ctx, id); err != nil || rec.StatusMessage != operatorCancelMessage {
		t.Fatalf("after the cancel request: %+v %v", rec, err)
	}
}

// TestApprovedTaskHandedOver: when the upstream runs the tool as a task,
// the approved call is sent task-augmented and the upstream takes the
// task over: the record names the upstream task, the watcher follows it,
// and a tasks/result that was waiting since before the approval gets the
// upstream's result.
func TestApprovedTaskHandedOver(t *testing.T) {
	release := make(chan struct{})
	upURL, _ := quietTaskUpstream(t, release)
	g, url, approvals, _ := approvalGatewayWith(t, 0, config.Upstream{Name: "q", URL: upURL}, `
@id("all") permit(principal, action, resource);
@id("job-needs-approval") @approval("required")
permit(principal, action == Action::"tools/call", resource == Tool::"q/job");
`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := connectAs(t, url, "alice")
	created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{TTL: ms(time.Minute)})
	if err != nil || created.Task.Status != mcp.TaskStatusInputRequired {
		t.Fatalf("created: %+v %v", created, err)
	}
	id := created.Task.TaskID
	type outcome struct {
		res *mcp.CallToolResult
		err error
	}
	waited := make(chan outcome, 1)
	go func() {
		res, err := alice.GetTaskResult(ctx, &mcp.GetTaskPayloadParams{TaskID: id})
		waited <- outcome{res, err}
	}()
	if err := approvals.Decide(ctx, heldApproval(t, g, id), "carol", true, ""); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, err := g.taskStore.GetGatewayTask(ctx, id)
		if err == nil && !rec.Held() {
			if rec.Status != string(mcp.TaskStatusWorking) {
				t.Errorf("handed over in status %q", rec.Status)
			}
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the task was not handed over: %+v %v", rec, err)
		}
	}
	if n := g.watchedCount(); n != 1 {
		t.Errorf("watched tasks = %d, want 1", n)
	}
	close(release)
	select {
	case o := <-waited:
		if o.err != nil || len(o.res.Content) != 1 || o.res.Content[0].(*mcp.TextContent).Text != "done" {
			t.Fatalf("result: %+v %v", o.res, o.err)
		}
	case <-ctx.Done():
		t.Fatal("tasks/result did not return")
	}
	got, err := alice.GetTask(ctx, &mcp.GetTaskParams{TaskID: id})
	if err != nil || got.Status != mcp.TaskStatusCompleted {
		t.Fatalf("get: %+v %v", got, err)
	}
}
