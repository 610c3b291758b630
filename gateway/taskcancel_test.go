package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/cli/taskscmd"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// cancelSeenUpstream serves a tool "job" that runs as a task until it is
// cancelled, and sends the time of every tasks/cancel it receives on the
// returned channel.
func cancelSeenUpstream(t *testing.T) (string, <-chan time.Time) {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "slow", Version: "1"}, &mcp.ServerOptions{
		// A long poll interval: the watcher would not see a cancel
		// request by polling before 30 s.
		TaskStore: mcp.NewMemoryTaskStore(&mcp.MemoryTaskStoreOptions{PollInterval: 30_000}),
	})
	s.AddTool(&mcp.Tool{Name: "job", InputSchema: jsontext.Value(`{"type":"object"}`), Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	seen := make(chan time.Time, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"tasks/cancel"`)) {
			select {
			case seen <- time.Now():
			default:
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, seen
}

// TestCancelLatency measures how long after (a) `mcpgate revoke user`
// and (b) `mcpgate tasks cancel`, both recorded by another process in the
// shared database, the upstream gets tasks/cancel. Both must be well under
// a second; the test logs the figures and asserts a generous bound (5 s)
// to stay deterministic on a loaded machine.
func TestCancelLatency(t *testing.T) {
	dataDir := t.TempDir()
	db := openDataDir(t, dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The gateway picks up revocations as internal/app configures it.
	rv, err := inventory.NewRevoker(ctx, db, &inventory.RevokerOptions{RefreshInterval: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	gwAudit := store.NewAuditMemory()
	alog, err := audit.New(gwAudit, &audit.Options{KeyPath: filepath.Join(t.TempDir(), "audit.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer alog.Close()
	upURL, seen := cancelSeenUpstream(t)
	g, err := New(&config.Config{DataDir: dataDir, Upstreams: []config.Upstream{{Name: "q", URL: upURL}}}, &Options{
		Principal: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		Tasks:     db, Revoker: rv, Audit: alog,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	url := userHeaderGateway(t, g)
	start := func(user string) string {
		t.Helper()
		cs := connectAs(t, url, user)
		created, err := cs.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{TTL: ms(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return created.Task.TaskID
	}
	waitCancel := func(what string, t0 time.Time) time.Duration {
		t.Helper()
		select {
		case t1 := <-seen:
			d := t1.Sub(t0)
			t.Logf("%s: the upstream got tasks/cancel %v after the command recorded it", what, d.Round(time.Millisecond))
			if d > 5*time.Second {
				t.Errorf("%s: tasks/cancel reached the upstream after %v", what, d)
			}
			return d
		case <-ctx.Done():
			t.Fatalf("%s: the upstream never got tasks/cancel", what)
		}
		return 0
	}
	waitStatus := func(id, msg string) {
		t.Helper()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			rec, err := db.GetGatewayTask(ctx, id)
			if err == nil && rec.Status == string(mcp.TaskStatusCancelled) && strings.HasPrefix(rec.StatusMessage, msg) {
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				t.Fatalf("task %s: %+v %v", id, rec, err)
			}
		}
	}

	// (a) Revoking the owner from the command line (another revoker on
	// the same database, as `mcpgate revoke user alice` is).
	id := start("alice")
	cli, err := inventory.NewRevoker(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := cli.Revoke(ctx, store.RevokeUser, "alice", "admin"); err != nil {
		t.Fatal(err)
	}
	waitCancel("revoke user", t0)
	waitStatus(id, "cancelled by revocation")
	revoked := id

	// (b) `mcpgate tasks cancel ID`, with its own audit record.
	id = start("bob")
	rec, err := cliaudit.Open(ctx, db, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	t0 = time.Now()
	if err := taskscmd.Cancel(ctx, db, rec, io.Discard, id, "runaway"); err != nil {
		t.Fatal(err)
	}
	waitCancel("tasks cancel", t0)
	waitStatus(id, operatorCancelMessage)
	found := false
	for r, err := range db.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Action == cliaudit.ActionTaskCancelled && r.Target == id && strings.Contains(r.Error, "runaway") && r.User != "" {
			found = true
		}
	}
	if !found {
		t.Error("no admin.task.cancelled record naming who cancelled")
	}
	// The gateway recorded both cancellations.
	want := map[string]string{revoked: "cancelled by revocation", id: operatorCancelMessage}
	for _, r := range records(t, gwAudit, "task.status") {
		if r.Outcome == string(mcp.TaskStatusCancelled) && strings.HasPrefix(r.Error, want[r.Target]) {
			delete(want, r.Target)
		}
	}
	if len(want) != 0 {
		t.Errorf("no task.status cancelled records for %v", want)
	}
}
