package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/mcpgate/internal/tasktest"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// TestWatcherRetriesResult: when the fetch of a finished task's result
// fails without an answer (here the upstream's HTTP endpoint answers 503
// twice), the watcher tries again with back-off and keeps the result; the
// owner gets it from the gateway.
func TestWatcherRetriesResult(t *testing.T) {
	up := tasktest.New(0)
	up.Gate = make(chan struct{})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up.MCP }, nil)
	var failed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(`"method":"tasks/result"`)) && failed.Load() < 2 {
				failed.Add(1)
				http.Error(w, "upstream busy", http.StatusServiceUnavailable)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer h.Close()

	ctx := context.Background()
	g, gurl := newResumeGateway(t, t.TempDir(), srv.URL)
	defer g.Close()
	alice := connectAs(t, gurl, "alice")
	created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "up_steps", Arguments: []byte(`{"steps":1}`)}, &mcp.TaskMetadata{TTL: 600000})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	alice.Close() // only the watcher follows the task from here
	up.Gate <- struct{}{}
	up.Gate <- struct{}{}
	rec := waitTask(t, g.taskStore, id, func(r *store.GatewayTask) bool { return r.Status == "completed" && r.ResultDigest != "" })
	if n := failed.Load(); n != 2 {
		t.Errorf("%d fetches of the result failed, want 2 before the one that worked", n)
	}
	raw, err := connectAs(t, gurl, "alice").GetTaskPayload(ctx, &mcp.GetTaskPayloadParams{TaskID: id})
	if err != nil || !bytes.Contains(raw, []byte("done after 1 steps")) {
		t.Errorf("the owner's result: %s %v (record %+v)", raw, err, rec.Status)
	}
}
