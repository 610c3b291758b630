package gateway

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

// taskLimitPolicies: carol is a contractor (tasks of at most 10 minutes,
// three at a time), dave may run one task at a time, erin may not run
// q/job as a task at all.
const taskLimitPolicies = `
@id("all") permit(principal, action, resource);

@id("contractors")
@max_task_ttl("10m")
@max_concurrent_tasks("3")
permit(principal == User::"carol", action == Action::"tools/call", resource);

@id("one-at-a-time")
@max_concurrent_tasks("1")
permit(principal == User::"dave", action == Action::"tools/call", resource);

@id("no-job-tasks")
forbid(principal == User::"erin", action == Action::"tools/call", resource == Tool::"q/job")
when { context has task };
`

func ms(d time.Duration) int64 { return d.Milliseconds() }

// TestTaskPolicyLimits: the maximum ttl and the number of running tasks
// set by policy are enforced with clear errors, audited as denials; a
// task without ttl gets the policy's maximum; two concurrent creations
// cannot both pass a limit of one; context.task lets policy refuse tasks.
func TestTaskPolicyLimits(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	upURL, _ := quietTaskUpstream(t, release)
	_, url, st := governedGatewayG(t, config.Upstream{Name: "q", URL: upURL}, taskLimitPolicies)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	carol := connectAs(t, url, "carol")
	_, err := carol.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{TTL: ms(time.Hour)})
	if jsonrpc.ErrorCode(err) != CodePolicyDenied || !strings.Contains(err.Error(), `tasks of tool "q_job" are limited to 10m for you (policy "contractors"): requested 1h`) {
		t.Fatalf("ttl over the limit: %v", err)
	}
	created, err := carol.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Task.TTL == nil || *created.Task.TTL != ms(10*time.Minute) {
		t.Errorf("ttl of a task that asked for none = %v, want 10m", created.Task.TTL)
	}
	for range 2 {
		if _, err := carol.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{TTL: ms(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = carol.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{TTL: ms(time.Minute)})
	if jsonrpc.ErrorCode(err) != CodePolicyDenied || !strings.Contains(err.Error(), `you have 3 running tasks, the limit is 3 (policy "contractors")`) {
		t.Fatalf("fourth task: %v", err)
	}
	// Once one is cancelled, a slot is free again.
	if _, err := carol.CancelTask(ctx, &mcp.CancelTaskParams{TaskID: created.Task.TaskID}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{TTL: ms(time.Minute)}); err != nil {
		t.Fatalf("a task after one was cancelled: %v", err)
	}

	// Two concurrent creations against a limit of one: exactly one passes.
	dave := connectAs(t, url, "dave")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = dave.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{TTL: ms(time.Minute)})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("concurrent creations with a limit of one: %v, %v", errs[0], errs[1])
	}

	// A forbid on context.task refuses tasks only.
	erin := connectAs(t, url, "erin")
	if _, err := erin.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{}); jsonrpc.ErrorCode(err) != CodePolicyDenied || !strings.Contains(err.Error(), "no-job-tasks") {
		t.Errorf("erin's task: %v", err)
	}

	var limited []string
	for _, r := range records(t, st, mcp.MethodToolsCall) {
		if r.Outcome == outcomeTaskLimited {
			if r.Decision != "deny" {
				t.Errorf("task limit record with decision %q", r.Decision)
			}
			limited = append(limited, r.User+": "+r.Error)
		}
	}
	if len(limited) != 3 {
		t.Errorf("task_limited records: %q, want carol's two and one of dave's", limited)
	}
}

func TestRequestedTTL(t *testing.T) {
	for _, tc := range []struct {
		params string
		want   time.Duration
		bad    bool
	}{
		{`{"task":{}}`, 0, false},
		{`{"task":{"ttl":null}}`, 0, false},
		{`{"task":{"ttl":60000}}`, time.Minute, false},
		{`{"task":{"ttl":"x"}}`, 0, true},
		{`{"task":{"ttl":-1}}`, 0, true},
		{`{"task":1}`, 0, true},
	} {
		got, err := requestedTTL([]byte(tc.params))
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%s: %v %v", tc.params, got, err)
		}
	}
	if s := fmtDuration(10 * time.Minute); s != "10m" {
		t.Errorf("fmtDuration(10m) = %q", s)
	}
	if s := fmtDuration(time.Hour); s != "1h" {
		t.Errorf("fmtDuration(1h) = %q", s)
	}
}
