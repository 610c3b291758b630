package taskscmd_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/cli/taskscmd"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

func run(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "mcpgate", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(taskscmd.Commands(func() string { return dir })...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// populate records two tasks as a gateway would: t-run (working, alice)
// and t-done (completed, bob).
func populate(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	st, err := datadir.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	for _, r := range []*store.GatewayTask{
		{ID: "t-run", Principal: "alice", ClientID: "app", Upstream: "fs", UpstreamTaskID: "u1", Tool: "fs_index", Status: "working",
			CreatedAt: now.Add(-time.Minute), UpdatedAt: now.Add(-30 * time.Second), ExpiresAt: now.Add(time.Hour - time.Minute)},
		{ID: "t-done", Principal: "bob", Upstream: "fs", UpstreamTaskID: "u2", Status: "completed", CreatedAt: now, UpdatedAt: now},
	} {
		if err := st.PutGatewayTask(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
}

func stored(t *testing.T, dir, id string) *store.GatewayTask {
	t.Helper()
	st, err := datadir.OpenExisting(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := st.GetGatewayTask(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, dir, "tasks", "list"); err == nil || !strings.Contains(err.Error(), "no mcpgate database") {
		t.Errorf("list without a database: %v", err)
	}
	populate(t, dir)
	out, err := run(t, dir, "tasks", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ID", "OWNER", "CLIENT", "UPSTREAM", "TOOL", "fs_index", "STATUS", "AGE", "TTL", "LAST CHANGE", "t-run", "alice", "app", "fs", "working", "1h0m0s", "t-done", "bob", "completed"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	out, err = run(t, dir, "tasks", "--json", "--owner", "alice")
	if err != nil {
		t.Fatal(err)
	}
	var tasks []taskscmd.Task
	if err := json.Unmarshal([]byte(out), &tasks); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(tasks) != 1 || tasks[0].ID != "t-run" || tasks[0].Owner != "alice" || tasks[0].Client != "app" || tasks[0].Status != "working" ||
		tasks[0].TTLSeconds != 3600 || tasks[0].AgeSeconds < 60 || tasks[0].LastChange.IsZero() {
		t.Errorf("json: %+v", tasks)
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	out, err := run(t, dir, "tasks", "cancel", "t-run", "--reason", "runaway")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "recorded as cancelled") || !strings.Contains(out, "running gateway") {
		t.Errorf("cancel output: %s", out)
	}
	if r := stored(t, dir, "t-run"); r.Status != "cancelled" || r.StatusMessage != store.TaskCancelRequested {
		t.Errorf("stored after cancel: %+v", r)
	}
	out, err = run(t, dir, "tasks", "list")
	if err != nil || !strings.Contains(out, "cancelled (cancel requested)") {
		t.Errorf("list after cancel: %v\n%s", err, out)
	}
	// Again: nothing more to do, nothing more recorded.
	if out, err := run(t, dir, "tasks", "cancel", "t-run"); err != nil || !strings.Contains(out, "already requested") {
		t.Errorf("second cancel: %v %s", err, out)
	}
	if _, err := run(t, dir, "tasks", "cancel", "t-done"); err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Errorf("cancel of a completed task: %v", err)
	}
	if _, err := run(t, dir, "tasks", "cancel", "nope"); err == nil || !strings.Contains(err.Error(), "no task") {
		t.Errorf("cancel of an unknown task: %v", err)
	}
	if r := stored(t, dir, "t-done"); r.Status != "completed" {
		t.Errorf("completed task changed: %+v", r)
	}

	// One audit record, in a verified chain.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, datadir.Database(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pub, err := audit.LoadPublicKey(filepath.Join(dir, audit.DefaultKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(ctx, st, pub); err != nil || !rep.OK {
		t.Fatalf("audit chain: %+v %v", rep, err)
	}
	var recs []*store.AuditRecord
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Action == cliaudit.ActionTaskCancelled {
			recs = append(recs, r)
		}
	}
	if len(recs) != 1 {
		t.Fatalf("%d %s records, want 1", len(recs), cliaudit.ActionTaskCancelled)
	}
	r := recs[0]
	if r.Target != "t-run" || r.User != cliaudit.Actor() || r.Client != cliaudit.Client || r.Upstream != "fs" ||
		!strings.Contains(r.Error, "alice") || !strings.Contains(r.Error, "runaway") {
		t.Errorf("audit record: %+v", r)
	}
}

func TestShow(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	out, err := run(t, dir, "tasks", "show", "t-run")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"owner:", "alice", "client:", "app", "upstream:", "fs", "tool:", "fs_index", "status:", "working",
		"status message:", "created:", "last change:", "age:", "ttl:", "1h0m0s", "expires:"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out, err = run(t, dir, "tasks", "show", "t-run", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var task taskscmd.Task
	if err := json.Unmarshal([]byte(out), &task); err != nil || task.Tool != "fs_index" || task.Owner != "alice" || task.TTLSeconds != 3600 {
		t.Errorf("show --json: %+v %v\n%s", task, err, out)
	}
	if _, err := run(t, dir, "tasks", "show", "nope"); err == nil || !strings.Contains(err.Error(), "no task") {
		t.Errorf("show of an unknown task: %v", err)
	}
}
