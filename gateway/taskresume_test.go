package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/tasktest"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// stepsUpstream serves a tasktest server over Streamable HTTP; restart
// makes it forget its sessions (a new handler), as an upstream process
// that restarted would.
func stepsUpstream(t *testing.T) (up *tasktest.Server, url string, restart func()) {
	t.Helper()
	up = tasktest.New(500 * time.Millisecond)
	up.Gate = make(chan struct{})
	var h atomic.Pointer[mcp.StreamableHTTPHandler]
	restart = func() { h.Store(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up.MCP }, nil)) }
	restart()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.Load().ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	return up, srv.URL, restart
}

// newResumeGateway starts a gateway on dataDir in front of the upstream
// at url, with the caller named by the X-Test-User header.
func newResumeGateway(t *testing.T, dataDir, url string) (*Gateway, string) {
	t.Helper()
	db := openDataDir(t, dataDir)
	g, err := New(&config.Config{DataDir: dataDir, Upstreams: []config.Upstream{{Name: "up", URL: url}}}, &Options{
		Principal:     func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
		Tasks:         db,
		TaskResultKey: dataDir + "/" + TaskResultKeyFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return g, userHeaderGateway(t, g)
}

// waitTask polls the store until cond holds for the task's record.
func waitTask(t *testing.T, st store.GatewayTasks, id string, cond func(*store.GatewayTask) bool) *store.GatewayTask {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, err := st.GetGatewayTask(context.Background(), id)
		if err == nil && cond(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: condition not met within 30s; record %+v (%v)", id, rec, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTaskSurvivesRestart: a task running on an HTTP upstream when the
// gateway stops is re-attached by the next gateway (its upstream session,
// which the first gateway detached rather than ended, resumed), followed
// to its end with no client polling, and its result is kept for its owner
// (from a new session) and no one else.
func TestTaskSurvivesRestart(t *testing.T) {
	up, url, _ := stepsUpstream(t)
	dataDir := t.TempDir()
	ctx := context.Background()
	g1, url1 := newResumeGateway(t, dataDir, url)
	alice := connectAs(t, url1, "alice")
	created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "up_steps", Arguments: []byte(`{"steps":2}`)}, &mcp.TaskMetadata{TTL: 600000})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	rec := waitTask(t, g1.taskStore, id, func(r *store.GatewayTask) bool { return r.UpstreamSession != "" })
	up.Gate <- struct{}{} // step 1, seen by the first gateway's watcher
	waitTask(t, g1.taskStore, id, func(r *store.GatewayTask) bool { return r.StatusMessage == "step 1 of 2" })
	g1.Close()

	g2, url2 := newResumeGateway(t, dataDir, url)
	defer g2.Close()
	up.Gate <- struct{}{} // step 2
	waitTask(t, g2.taskStore, id, func(r *store.GatewayTask) bool { return r.StatusMessage == "step 2 of 2" })
	up.Gate <- struct{}{} // completed
	rec = waitTask(t, g2.taskStore, id, func(r *store.GatewayTask) bool { return r.Status == "completed" && r.ResultDigest != "" })
	if rec.ResultSealed == nil || strings.Contains(string(rec.ResultSealed), "done after") {
		t.Errorf("stored result not sealed: %q", rec.ResultSealed)
	}

	alice2, bob := connectAs(t, url2, "alice"), connectAs(t, url2, "bob")
	got, err := alice2.GetTask(ctx, &mcp.GetTaskParams{TaskID: id})
	if err != nil || got.Status != mcp.TaskStatusCompleted {
		t.Fatalf("alice get after restart: %+v %v", got, err)
	}
	raw, err := alice2.GetTaskPayload(ctx, &mcp.GetTaskPayloadParams{TaskID: id})
	if err != nil || !strings.Contains(string(raw), "done after 2 steps") {
		t.Fatalf("alice result after restart: %s %v", raw, err)
	}
	_, errUnknown := bob.GetTaskPayload(ctx, &mcp.GetTaskPayloadParams{TaskID: "no-such-task"})
	_, errOther := bob.GetTaskPayload(ctx, &mcp.GetTaskPayloadParams{TaskID: id})
	if errOther == nil || jsonrpc.ErrorCode(errOther) != jsonrpc.ErrorCode(errUnknown) {
		t.Errorf("bob result: %v (unknown task: %v)", errOther, errUnknown)
	}
	if _, err := bob.GetTask(ctx, &mcp.GetTaskParams{TaskID: id}); err == nil {
		t.Error("bob sees alice's task")
	}
}

// TestTaskSessionGoneAtRestart: a task whose upstream session the
// upstream no longer knows when the gateway starts ends as failed, with a
// message that says so.
func TestTaskSessionGoneAtRestart(t *testing.T) {
	_, url, restart := stepsUpstream(t)
	dataDir := t.TempDir()
	ctx := context.Background()
	g1, url1 := newResumeGateway(t, dataDir, url)
	alice := connectAs(t, url1, "alice")
	created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "up_steps", Arguments: []byte(`{"steps":2}`)}, &mcp.TaskMetadata{TTL: 600000})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	waitTask(t, g1.taskStore, id, func(r *store.GatewayTask) bool { return r.UpstreamSession != "" })
	g1.Close()
	restart() // the upstream forgets the session

	g2, url2 := newResumeGateway(t, dataDir, url)
	defer g2.Close()
	rec := waitTask(t, g2.taskStore, id, func(r *store.GatewayTask) bool { return isTerminal(r.Status) })
	if rec.Status != "failed" || rec.StatusMessage != restartLostMessage {
		t.Errorf("after restart: %s %q, want failed %q", rec.Status, rec.StatusMessage, restartLostMessage)
	}
	got, err := connectAs(t, url2, "alice").GetTask(ctx, &mcp.GetTaskParams{TaskID: id})
	if err != nil || got.Status != mcp.TaskStatusFailed || !strings.Contains(got.StatusMessage, "gateway restarted") {
		t.Errorf("alice get: %+v %v", got, err)
	}
}

// TestWatcherSharesPolling: several tasks on one upstream session are
// polled with one tasks/list per interval, not one tasks/get each.
func TestWatcherSharesPolling(t *testing.T) {
	up, url, _ := stepsUpstream(t)
	dataDir := t.TempDir()
	ctx := context.Background()
	g, gurl := newResumeGateway(t, dataDir, url)
	defer g.Close()
	alice := connectAs(t, gurl, "alice")
	const n = 5
	var ids []string
	for range n {
		created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "up_steps", Arguments: []byte(`{"steps":1}`)}, &mcp.TaskMetadata{TTL: 600000})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, created.Task.TaskID)
	}
	for range n {
		up.Gate <- struct{}{} // step 1 of each
	}
	for _, id := range ids {
		waitTask(t, g.taskStore, id, func(r *store.GatewayTask) bool { return r.StatusMessage == "step 1 of 1" })
	}
	gets, lists := g.watcher.gets.Load(), g.watcher.lists.Load()
	t.Logf("watcher requests: %d tasks/get, %d tasks/list for %d tasks", gets, lists, n)
	if lists == 0 || gets > lists {
		t.Errorf("watcher sent %d tasks/get and %d tasks/list: want the tasks/list to serve the tasks", gets, lists)
	}
	for range n {
		up.Gate <- struct{}{} // completed
	}
	for _, id := range ids {
		waitTask(t, g.taskStore, id, func(r *store.GatewayTask) bool { return r.Status == "completed" && r.ResultDigest != "" })
	}
}
