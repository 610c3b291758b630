package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// quietTaskUpstream serves a tool "job" that runs as a task until release
// is closed. It offers no standalone SSE stream (GET answers 405), so the
// status notifications of its tasks reach no one: only polling tells the
// gateway how a task ended. gets counts the tasks/get requests it got.
func quietTaskUpstream(t *testing.T, release <-chan struct{}) (string, *atomic.Int64) {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "quiet", Version: "1"}, &mcp.ServerOptions{
		TaskStore: mcp.NewMemoryTaskStore(&mcp.MemoryTaskStoreOptions{PollInterval: 100 * time.Millisecond}),
	})
	s.AddTool(&mcp.Tool{Name: "job", InputSchema: jsontext.Value(`{"type":"object"}`), Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			http.Error(w, "no SSE stream", http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"tasks/get"`)) {
			gets.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &gets
}

// TestTaskWatcherFollowsQuietTask: a task whose upstream sends no status
// notifications and whose client never asks about it still reaches
// completed in the task store and in the audit log (task.status, with the
// time since creation), because the gateway polls the upstream itself.
func TestTaskWatcherFollowsQuietTask(t *testing.T) {
	release := make(chan struct{})
	upURL, gets := quietTaskUpstream(t, release)
	g, url, st := governedGatewayG(t, config.Upstream{Name: "q", URL: upURL}, `@id("all") permit(principal, action, resource);`)
	cs := connectAs(t, url, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := cs.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{TTL: int64(time.Minute / time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	if n := g.watchedCount(); n != 1 {
		t.Fatalf("watched tasks = %d, want 1", n)
	}
	close(release)

	// Wait for the audit record, up to a deadline; the client never polls.
	var rec *store.AuditRecord
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for rec == nil {
		for _, r := range records(t, st, "task.status") {
			if r.Target == id && r.Outcome == string(mcp.TaskStatusCompleted) {
				rec = r
			}
		}
		if rec != nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no task.status completed record for %s before the deadline (upstream tasks/get: %d)", id, gets.Load())
		case <-tick.C:
		}
	}
	if rec.User != "alice" || rec.Upstream != "q" || rec.LatencyMicros <= 0 {
		t.Errorf("audit record: user %q upstream %q latency %dµs", rec.User, rec.Upstream, rec.LatencyMicros)
	}
	got, err := g.taskStore.GetGatewayTask(ctx, id)
	if err != nil || got.Status != string(mcp.TaskStatusCompleted) {
		t.Fatalf("stored task: %+v %v", got, err)
	}
	if gets.Load() == 0 {
		t.Error("the upstream got no tasks/get: the status came from elsewhere")
	}
	for g.watchedCount() != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("the task is still watched after it completed")
		case <-tick.C:
		}
	}
}

// TestTaskWatcherBound: beyond the bound, new tasks are not watched.
func TestTaskWatcherBound(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	upURL, _ := quietTaskUpstream(t, release)
	g, url, _ := governedGatewayG(t, config.Upstream{Name: "q", URL: upURL}, `@id("all") permit(principal, action, resource);`)
	g.watcher.mu.Lock()
	g.watcher.max = 1
	g.watcher.mu.Unlock()
	cs := connectAs(t, url, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 {
		if _, err := cs.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.watchedCount(); n != 1 {
		t.Errorf("watched tasks = %d, want 1 (the bound)", n)
	}
}

// TestPollInterval: the upstream's suggestion is bounded.
func TestPollInterval(t *testing.T) {
	for _, c := range []struct {
		ms   float64
		want time.Duration
	}{{0, defaultWatchPoll}, {10, minWatchPoll}, {2000, 2 * time.Second}, {1e9, maxWatchPoll}} {
		if got := pollIntervalOf(c.ms); got != c.want {
			t.Errorf("pollIntervalOf(%v) = %v, want %v", c.ms, got, c.want)
		}
	}
}

// TestTaskWatcherCarriesOutCancelRequest: a cancel request recorded in the
// store (as `mcpgate tasks cancel` does) is carried out by the running
// gateway: the upstream task is cancelled and the outcome recorded.
func TestTaskWatcherCarriesOutCancelRequest(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	upURL, _ := quietTaskUpstream(t, release)
	g, url, st := governedGatewayG(t, config.Upstream{Name: "q", URL: upURL}, `@id("all") permit(principal, action, resource);`)
	cs := connectAs(t, url, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := cs.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "q_job"}, &mcp.TaskMetadata{})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	rec, err := g.taskStore.GetGatewayTask(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	rec.Status, rec.StatusMessage = string(mcp.TaskStatusCancelled), store.TaskCancelRequested
	if err := g.taskStore.PutGatewayTask(ctx, rec); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := g.taskStore.GetGatewayTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.StatusMessage == operatorCancelMessage {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the cancel request was not carried out: %+v", got)
		case <-tick.C:
		}
	}
	if rs := records(t, st, "task.status"); len(rs) == 0 || rs[len(rs)-1].Target != id || rs[len(rs)-1].Outcome != string(mcp.TaskStatusCancelled) {
		t.Errorf("no task.status cancelled record: %+v", rs)
	}
	// The upstream's task is cancelled: asking it through the gateway
	// (which forwards tasks/get) says so.
	got, err := cs.GetTask(ctx, &mcp.GetTaskParams{TaskID: id})
	if err != nil || got.Status != mcp.TaskStatusCancelled {
		t.Errorf("upstream task after the cancel request: %+v %v", got, err)
	}
}
