package policy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/policy"
)

// taskPolicies is the contractors example of docs/policy.md.
const taskPolicies = `
@id("staff")
permit (principal, action, resource);

@id("contractor-tasks")
@max_task_ttl("10m")
@max_concurrent_tasks("3")
permit (principal, action == Action::"tools/call", resource)
when { principal.groups.contains("contractors") };

@id("staff-task-cap")
@max_task_ttl("1h")
permit (principal, action == Action::"tools/call", resource)
when { context has task };

@id("no-shell-tasks")
forbid (principal, action == Action::"tools/call", resource == Tool::"sh/exec")
when { context has task };

@id("at-most-ten")
forbid (principal, action == Action::"tools/call", resource)
when { context has task && context.task.running >= 10 };
`

func taskEngine(t *testing.T, text string) *policy.Engine {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tasks.cedar"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return newEngine(t, &policy.Options{Paths: []string{dir}})
}

func TestTaskPolicy(t *testing.T) {
	e := taskEngine(t, taskPolicies)
	contractor := alice
	contractor.Groups = []string{"contractors"}
	for _, tc := range []struct {
		name          string
		p             policy.Principal
		res           policy.Resource
		task          *policy.TaskContext
		allow         bool
		ttl           time.Duration
		ttlPolicy     string
		concurrent    int
		concurrentPol string
	}{
		{name: "plain call, no task limits", p: alice, res: tool("fs", "read"), allow: true},
		{name: "staff task", p: alice, res: tool("fs", "read"), task: &policy.TaskContext{TTL: time.Hour}, allow: true, ttl: time.Hour, ttlPolicy: "staff-task-cap"},
		{name: "contractor task: smallest limits", p: contractor, res: tool("fs", "read"), task: &policy.TaskContext{TTL: time.Minute, Running: 2},
			allow: true, ttl: 10 * time.Minute, ttlPolicy: "contractor-tasks", concurrent: 3, concurrentPol: "contractor-tasks"},
		{name: "shell as a task refused", p: alice, res: tool("sh", "exec"), task: &policy.TaskContext{}},
		{name: "shell without a task", p: alice, res: tool("sh", "exec"), allow: true},
		{name: "too many running", p: alice, res: tool("fs", "read"), task: &policy.TaskContext{Running: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Decide(&policy.Request{Principal: tc.p, Action: "tools/call", Resource: tc.res, Task: tc.task})
			if d.Allow != tc.allow {
				t.Fatalf("allow = %v (%s, %v), want %v", d.Allow, d.Reason, d.Errors, tc.allow)
			}
			if !tc.allow {
				return
			}
			if d.Task.MaxTTL != tc.ttl || d.Task.MaxTTLPolicy != tc.ttlPolicy || d.Task.MaxConcurrent != tc.concurrent || d.Task.MaxConcurrentPolicy != tc.concurrentPol {
				t.Fatalf("limits = %+v", d.Task)
			}
		})
	}
}

func TestTaskAnnotationsValidated(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{`@max_task_ttl("soon") permit (principal, action, resource);`, "must be a duration"},
		{`@max_task_ttl("10ms") permit (principal, action, resource);`, "at least 1s"},
		{`@max_concurrent_tasks("0") permit (principal, action, resource);`, "positive integer"},
		{`@max_concurrent_tasks("3") forbid (principal, action, resource);`, "put it on a permit"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := policy.NewEngine(&policy.Options{Paths: []string{dir}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.text, err, tc.want)
		}
	}
}
