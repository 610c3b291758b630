package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

// TestUpstreamTaskInputRequired: an upstream task that needs input (its
// tool elicits while running as a task) reaches its owner: the task is
// input_required through the gateway, the owner's tasks/result is
// forwarded, the upstream's elicitation travels on it to the owner's
// session (with the gateway's task id as related task), the answer goes
// back and the task completes. The watcher never calls tasks/result.
func TestUpstreamTaskInputRequired(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "asker", Version: "1"}, &mcp.ServerOptions{
		TaskStore: mcp.NewMemoryTaskStore(&mcp.MemoryTaskStoreOptions{PollInterval: 50 * time.Millisecond}),
	})
	s.AddTool(&mcp.Tool{Name: "ask", InputSchema: jsontext.Value(`{"type":"object"}`), Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "name?", RequestedSchema: &mcp.ElicitationSchema{
				Type: "object", Properties: map[string]mcp.PrimitiveSchemaDefinition{"name": {Type: "string"}}}})
			if err != nil {
				return nil, err
			}
			name, _ := res.Content["name"].(string)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello " + name}}}, nil
		})
	// What the upstream got: tasks/result and tasks/get requests.
	var results, gets atomic.Int64
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"tasks/result"`)) {
			results.Add(1)
		}
		if bytes.Contains(body, []byte(`"tasks/get"`)) {
			gets.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	_, url, _ := governedGatewayG(t, config.Upstream{Name: "a", URL: srv.URL}, `@id("all") permit(principal, action, resource);`)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	elicited := make(chan *mcp.ElicitRequest, 1)
	c := mcp.NewClient(&mcp.Implementation{Name: "alice", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			select {
			case elicited <- req:
			default:
			}
			return &mcp.ElicitResult{Action: mcp.ElicitActionAccept, Content: map[string]any{"name": "Ada"}}, nil
		},
	})
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: userTransport{"alice"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	created, err := cs.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "a_ask"}, &mcp.TaskMetadata{TTL: ms(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Task.TaskID
	// The task reaches input_required (the owner polls, as the spec says).
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var own int64 // the client's own tasks/get
	for {
		got, err := cs.GetTask(ctx, &mcp.GetTaskParams{TaskID: id})
		if err != nil {
			t.Fatal(err)
		}
		own++
		if got.Status == mcp.TaskStatusInputRequired {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the task never reached input_required: %+v", got)
		}
	}
	// The watcher polls the task (tasks/get) while it waits for input,
	// and never fetches its result itself.
	for gets.Load() <= own {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the watcher never polled the task (upstream tasks/get %d, the client's %d)", gets.Load(), own)
		}
	}
	if n := results.Load(); n != 0 {
		t.Fatalf("the upstream got %d tasks/result before the owner asked", n)
	}
	var res mcp.CallToolResult
	if err := cs.WaitTask(ctx, id, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "hello Ada" {
		t.Fatalf("result: %+v", res)
	}
	req := <-elicited
	if rt, ok := req.Params.Meta.RelatedTask(); !ok || rt != id {
		t.Errorf("the elicitation names task %q, want the gateway's %q", rt, id)
	}
	if !strings.Contains(req.Params.Message, "name?") {
		t.Errorf("elicitation: %+v", req.Params)
	}
}
